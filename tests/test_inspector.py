"""inspector.py: summaries, CSV/JSON, detail modes, --compare.

Bad input, checkpoints and command-line behaviour are in test_inspector_inputs.py.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import inspector
from conftest import DOCUMENTED_EXPORTS, REAL_MODELS, export_facts, real_models, run_cli
from ravekit.engine.model import quiet_jit
from ravekit.merging.keys import align_state_dicts


def run_json(capsys, *argv):
    code, out, err = run_cli(capsys, inspector, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def load(path):
    with quiet_jit():
        return torch.jit.load(str(path))


def assert_one_line_error(err: str, *needles: str):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], err


# ---------------------------------------------------------------- summaries

@pytest.mark.parametrize("name", ["demo", "stereo512", "rave_named"])
def test_summary_reads_facts_from_the_model(fixture_models, capsys, name):
    path = fixture_models[name]
    m = load(path)
    (s,) = run_json(capsys, "-i", path)
    enc = m.encode_params.tolist()
    assert s["sr"] == m.sr
    assert s["ratio"] == enc[3]
    assert s["latent_size"] == enc[2] == m.latent_size
    assert s["n_channels"] == enc[0]
    assert s["latent_rate"] == pytest.approx(m.sr / enc[3])
    assert s["methods"]["encode"] == enc
    assert s["methods"]["decode"] == m.decode_params.tolist()
    assert s["original_name"] == m.original_name
    assert s["state_dict_entries"] == len(m.state_dict())
    assert s["streaming"] is False and s["has_prior"] is False


@real_models
def test_real_export_summary_and_csv(real_model, tmp_path, capsys):
    m = load(real_model)
    code, out, err = run_cli(capsys, inspector, "-i", real_model, "--save", "-o", tmp_path)
    assert code == 0, err
    paths = [Path(line) for line in out.splitlines()]
    assert paths and all(p.is_file() and p.parent == tmp_path for p in paths)
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]  # no temporaries left behind
    # the readable summary went to stderr so that stdout carries only paths
    facts, documented = export_facts(real_model), DOCUMENTED_EXPORTS.get(real_model.stem) or {}
    assert f"{facts['sr']} Hz" in err and facts["original_name"] in err

    state = pd.read_csv(next(p for p in paths if p.name.endswith(".state_dict.csv")))
    assert len(state) == len(m.state_dict())
    if documented.get("state_dict_entries"):  # 79 for v2, plus 156 caches when streaming
        assert len(state) == documented["state_dict_entries"]
    assert (state["kind"] == "parameter").sum() == len(list(m.parameters()))
    row = state.set_index("name").loc["latent_mean"]
    assert row["mean"] == pytest.approx(float(m.latent_mean.double().mean()))
    assert row["max"] == pytest.approx(float(m.latent_mean.max()))

    summary = pd.read_csv(next(p for p in paths if p.name.endswith(".summary.csv"))).iloc[0]
    assert summary["sr"] == facts["sr"] and summary["latent_size"] == facts["latent_size"]
    assert summary["ratio"] == facts["ratio"] == documented.get("ratio", facts["ratio"])
    assert summary["streaming"] == documented.get("streaming", summary["streaming"])
    # How many dims decode takes; said in the text where it is not the full size (spherical: 15 of 16).
    assert summary["decode_dims"] == facts["decode_dims"] == documented.get("decode_dims", facts["decode_dims"])
    said = f"decode takes {facts['decode_dims']} dims"
    assert (said in err) == (facts["decode_dims"] != facts["full_latent_size"])

    comps = pd.read_csv(next(p for p in paths if p.name.endswith(".components.csv")))
    parts, total = comps[comps["component"] != "total"], comps[comps["component"] == "total"].iloc[0]
    assert parts["parameters"].sum() == total["parameters"] == sum(p.numel() for p in m.parameters())
    assert parts["buffers"].sum() == total["buffers"] == sum(b.numel() for b in m.buffers())
    assert {"pqmf", "encoder", "decoder", "(root)"} <= set(parts["component"])
    encoder_params = sum(p.numel() for n, p in m.named_parameters() if n.startswith("encoder."))
    assert parts.set_index("component").loc["encoder", "parameters"] == encoder_params
    assert total["mb"] == pytest.approx(sum(t.numel() * t.element_size() for t in m.state_dict().values()) / 1e6)


@real_models
def test_real_export_fidelity_levels(real_model, capsys):
    (s,) = run_json(capsys, "-i", real_model)
    fid = load(real_model).fidelity.double().numpy()
    facts = export_facts(real_model)
    if facts["discrete"] or facts["spherical"]:
        # Discrete and spherical exports keep no latent PCA: an all-zero buffer, not a curve to read levels from.
        assert not fid.any() and s["fidelity"] is None and s["fidelity_of_dims"] is None
        kind = "discrete" if facts["discrete"] else "spherical"
        assert any(note.startswith(f"{kind} model:") and "no PCA" in note for note in s["notes"])
        return
    for level in (80, 90, 95, 99):
        dims = s["fidelity"][str(level)]
        assert fid[dims - 1] >= level / 100 and (dims == 1 or fid[dims - 2] < level / 100)
    assert s["fidelity_of_dims"] == fid.size


def test_text_summary_is_readable(demo_model, capsys):
    code, out, err = run_cli(capsys, inspector, "-i", demo_model)
    assert code == 0 and err == ""
    m = load(demo_model)
    assert f"sample rate     {m.sr} Hz" in out
    assert f"{int(m.encode_params[3])} samples per latent frame" in out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    total_params = int(lines["total"][1].replace(",", ""))
    assert total_params == sum(p.numel() for p in m.parameters())


def test_streaming_export_detected(fixture_models, capsys):
    stream, plain = run_json(capsys, "-i", fixture_models["streaming"], fixture_models["demo"])
    # The fixture caches its encoder's last frame and its decoder's delayed samples.
    assert stream["streaming"] is True and stream["cache_buffers"] == 2
    assert plain["streaming"] is False and plain["cache_buffers"] == 0


def test_folder_json_lists_every_model(fixture_models, capsys):
    folder = fixture_models["demo"].parent
    records = run_json(capsys, "-i", folder)
    assert [r["file"] for r in records] == sorted(p.name for p in folder.glob("*.ts"))
    for r in records:
        for key in ("sr", "ratio", "latent_size", "n_channels", "methods", "components", "totals", "sha256"):
            assert r[key] is not None, (r["file"], key)


def test_model_without_nn_metadata_prints_unknown(tmp_path, capsys):
    class Bare(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(4, 2)

        @torch.jit.export
        def encode(self, x: torch.Tensor) -> torch.Tensor:
            return self.proj(x)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.encode(x)

    path = tmp_path / "bare.ts"
    with quiet_jit():
        torch.jit.script(Bare()).save(str(path))
    code, out, err = run_cli(capsys, inspector, "-i", path)
    assert code == 0, err
    assert "sample rate     unknown" in out and "ratio           unknown" in out
    (s,) = run_json(capsys, "-i", path)
    assert s["sr"] is None and s["ratio"] is None and s["totals"]["parameters"] == 10


# ---------------------------------------------------------------- detail modes

def test_dict_mode_answers_piped_queries(demo_model, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("fidelity\n\nfidelty\nq\nencode_params\n"))
    code, out, err = run_cli(capsys, inspector, "-i", demo_model, "--dict")
    assert code == 1, err  # a scripted query that names nothing must not pass unnoticed
    m = load(demo_model)
    assert all(name in out for name in m.state_dict())  # the listing
    assert "fidelity  (buffer)" in out
    assert f"shape  ({m.latent_size},)" in out
    assert "did you mean: fidelity?" in err and "did you mean" not in out  # messages go to stderr
    assert "encode_params  (buffer)" not in out  # q ended the session
    assert "entry>" not in out  # no prompt when stdin is a pipe


@real_models
def test_dict_mode_summarises_large_tensors(real_model, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("latent_pca\nencode_params\n"))
    code, out, _ = run_cli(capsys, inspector, "-i", real_model, "--dict")
    assert code == 0
    answer = out.split("latent_pca  (buffer)", 1)[1].split("encode_params  (buffer)")[0]
    assert len(answer.splitlines()) < 20 and "..." in answer and "edges only" in answer
    small = out.split("encode_params  (buffer)", 1)[1].split("values\n", 1)[1].splitlines()[0]
    assert [int(v) for v in small.strip(" []").split()] == load(real_model).encode_params.tolist()


def test_attr_mode_lists_and_details_members(fixture_models, capsys, monkeypatch):
    path = fixture_models["rave_named"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("latent_size\ndecode\nget_sample_rat\nencoder\n"))
    code, out, err = run_cli(capsys, inspector, "-i", path, "--attr")
    assert code == 1, err  # get_sample_rat named nothing
    m = load(path)
    assert f"value  {m.latent_size}" in out
    assert "decode(Tensor z) -> Tensor" in out and "TorchScript code" in out
    assert "did you mean: get_sample_rate" in err
    assert "encoder  (submodule)" in out


def test_detail_mode_takes_one_model(fixture_models, capsys):
    code, _, err = run_cli(capsys, inspector, "-i", fixture_models["demo"], fixture_models["demo_b"], "--dict")
    assert code == 2
    assert_one_line_error(err, "one model")


# ---------------------------------------------------------------- --compare

def test_align_state_dicts_sorts_every_key_once():
    a = {"w": np.zeros((2, 3)), "b": np.zeros(3), "only_a": np.zeros(1)}
    b = {"w": np.zeros((2, 3)), "b": np.zeros(4), "only_bc": np.zeros(1)}
    c = {"w": np.zeros((2, 3)), "b": np.zeros(3), "only_bc": np.zeros(1)}
    al = align_state_dicts({"a": a, "b": b, "c": c})
    assert al.same_shape == ["w"]
    assert al.different_shape == {"b": {"a": (3,), "b": (4,), "c": (3,)}}
    assert al.only_in_some == {"only_a": ["a"], "only_bc": ["b", "c"]}
    assert not al.all_match
    assert align_state_dicts({"a": a, "a2": dict(a)}).all_match


def seeds_of_one_architecture() -> list[Path]:
    """Real exports named alike but for their ``_seedN`` ending (docs/rave-exports.md: one architecture)."""
    groups: dict[str, list[Path]] = {}
    for path in REAL_MODELS:
        base, _, seed = path.stem.rpartition("_seed")
        if base and seed.isdigit():
            groups.setdefault(base, []).append(path)
    return next((g for g in groups.values() if len(g) >= 2), [])


@pytest.mark.skipif(len(seeds_of_one_architecture()) < 2,
                    reason="needs two seeds of one architecture (NAME_seed0.ts, NAME_seed1.ts) in RAVE_TEST_MODELS")
def test_compare_two_seeds_all_keys_match(capsys):
    first, second = seeds_of_one_architecture()[:2]
    result = run_json(capsys, "-i", first, second, "--compare")
    keys = result["keys"]
    assert len(keys["same_shape"]) == len(load(first).state_dict())
    assert keys["different_shape"] == {} and keys["only_in_some"] == {}
    # fixed filter banks are identical across seeds; trained weights are not
    assert "pqmf.forward_conv.weight" in keys["identical"]
    assert "decoder.net.0.weight" not in keys["identical"]
    code, out, _ = run_cli(capsys, inspector, "-i", first, second, "--compare")
    assert code == 0 and "all keys match" in out


def test_compare_fixture_models_same_architecture(fixture_models, capsys):
    result = run_json(capsys, "-i", fixture_models["demo"], fixture_models["demo_b"], "--compare")
    assert result["keys"]["different_shape"] == {} and result["keys"]["only_in_some"] == {}
    assert "decoder.gain" not in result["keys"]["identical"]  # other weights
    assert [s["file"] for s in result["models"]] == ["demo.ts", "demo_b.ts"]


@real_models
def test_compare_demo_with_real_export_differs(real_model, demo_model, tmp_path, capsys):
    code, out, err = run_cli(capsys, inspector, "-i", demo_model, real_model, "--compare", "--save", "-o", tmp_path)
    assert code == 0, err
    assert "different shapes:" in err and "only in some models:" in err
    table = pd.read_csv(tmp_path / "compare.csv")
    real_keys = set(load(real_model).state_dict())
    demo_keys = set(load(demo_model).state_dict())
    assert set(table["key"]) == real_keys | demo_keys
    status = table.set_index("key")["status"]
    assert status["latent_pca"] == "different_shape"  # 8x8 vs 128x128
    assert all(status[k] == "only_in_some" for k in real_keys ^ demo_keys)
    assert str(tmp_path / "compare.csv") in out.splitlines()


def test_compare_needs_two_models(demo_model, capsys):
    code, _, err = run_cli(capsys, inspector, "-i", demo_model, "--compare")
    assert code == 2
    assert_one_line_error(err, "two or more")


def test_suggestions_match_whole_names():
    from ravekit.inspection.detail import suggest

    names = ["decoder.net.0.weight", "encoder.encoder.net.0.weight", "encoder.encoder.net.2.weight", "fidelity"]
    # Left out the wrapper's prefix: the full name that ends with it, not the one two letters away.
    assert suggest("encoder.net.0.weight", names)[0] == "encoder.encoder.net.0.weight"
    assert suggest("fidelty", names) == ["fidelity"]
    assert suggest("net.2", names)[0] == "encoder.encoder.net.2.weight"
    assert suggest("zzz", names) == []


def test_dict_mode_suggests_the_real_entry_of_an_export(capsys, monkeypatch):
    real = [p for p in REAL_MODELS if p.stem.startswith("v2cap16_mono")]
    if not real:
        pytest.skip("RAVE_TEST_MODELS not set")
    monkeypatch.setattr(sys, "stdin", io.StringIO("encoder.net.0.weight\nfidelity\n"))
    code, out, err = run_cli(capsys, inspector, "-i", real[0], "--dict")
    assert code == 1 and "fidelity  (buffer)" in out  # answered the good name, failed for the bad one
    lines = err.strip().splitlines()
    assert "no entry named 'encoder.net.0.weight'; did you mean: encoder.encoder.net.0.weight" in lines[0]
    assert "1 of the names" in lines[-1] and "no entry named" not in out


def test_dict_mode_known_names_only_exits_0(demo_model, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("fidelity\n"))
    code, out, err = run_cli(capsys, inspector, "-i", demo_model, "--dict")
    assert code == 0 and err == "" and "fidelity  (buffer)" in out
