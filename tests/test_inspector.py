"""inspector.py: summaries, CSV/JSON, detail modes, --compare, checkpoints, bad files."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import ROOT, real_models, REAL_MODELS

import inspector
from ravekit.compare import align_state_dicts
from ravekit.model import quiet_jit


def run(capsys, *argv):
    code = inspector.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv):
    code, out, err = run(capsys, *argv, "--json")
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


class Payload:
    """Pickles as a call that would leave a marker file if it were ever run."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.fixture()
def checkpoint_run(tmp_path):
    """A Lightning-like RAVE run: config.gin at the top, the .ckpt two folders down."""
    run_dir = tmp_path / "runs" / "mymodel"
    ckpt = run_dir / "version_0" / "checkpoints" / "best.ckpt"
    ckpt.parent.mkdir(parents=True)
    (run_dir / "config.gin").write_text("SAMPLING_RATE = 48000\nLATENT_SIZE = 16\nCAPACITY = 32\n")
    gen = torch.Generator().manual_seed(0)
    state = {"encoder.net.0.weight": torch.randn(8, 1, 7, generator=gen),
             "encoder.net.0.bias": torch.randn(8, generator=gen),
             "decoder.net.0.weight": torch.randn(1, 8, 7, generator=gen),
             "pqmf.hk": torch.randn(4, 16, generator=gen),
             "step": torch.tensor(12)}
    torch.save({"epoch": 3, "global_step": 1200, "state_dict": state,
                "hyper_parameters": {"learning_rate": 1e-4, "beta": 0.1}}, ckpt)
    return ckpt, state


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
    code, out, err = run(capsys, "-i", real_model, "--save", "-o", tmp_path)
    assert code == 0, err
    paths = [Path(line) for line in out.splitlines()]
    assert paths and all(p.is_file() and p.parent == tmp_path for p in paths)
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]  # no temporaries left behind
    # the readable summary went to stderr so that stdout carries only paths
    assert "44100 Hz" in err and "VariationalScriptedRAVE" in err

    state = pd.read_csv(next(p for p in paths if p.name.endswith(".state_dict.csv")))
    assert len(state) == len(m.state_dict()) == 79
    assert (state["kind"] == "parameter").sum() == len(list(m.parameters()))
    row = state.set_index("name").loc["latent_mean"]
    assert row["mean"] == pytest.approx(float(m.latent_mean.double().mean()))
    assert row["max"] == pytest.approx(float(m.latent_mean.max()))

    summary = pd.read_csv(next(p for p in paths if p.name.endswith(".summary.csv"))).iloc[0]
    assert summary["sr"] == 44100 and summary["latent_size"] == 8
    assert summary["ratio"] == int(m.encode_params[3]) == 2048

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
    for level in (80, 90, 95, 99):
        dims = s["fidelity"][str(level)]
        assert fid[dims - 1] >= level / 100 and (dims == 1 or fid[dims - 2] < level / 100)
    assert s["fidelity_of_dims"] == fid.size


def test_text_summary_is_readable(demo_model, capsys):
    code, out, err = run(capsys, "-i", demo_model)
    assert code == 0 and err == ""
    m = load(demo_model)
    assert f"sample rate     {m.sr} Hz" in out
    assert f"{int(m.encode_params[3])} samples per latent frame" in out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    total_params = int(lines["total"][1].replace(",", ""))
    assert total_params == sum(p.numel() for p in m.parameters())


def test_streaming_export_detected(fixture_models, capsys):
    stream, plain = run_json(capsys, "-i", fixture_models["streaming"], fixture_models["demo"])
    assert stream["streaming"] is True and stream["cache_buffers"] == 1
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
    code, out, err = run(capsys, "-i", path)
    assert code == 0, err
    assert "sample rate     unknown" in out and "ratio           unknown" in out
    (s,) = run_json(capsys, "-i", path)
    assert s["sr"] is None and s["ratio"] is None and s["totals"]["parameters"] == 10


# ---------------------------------------------------------------- detail modes

def test_dict_mode_answers_piped_queries(demo_model, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("fidelity\n\nfidelty\nq\nencode_params\n"))
    code, out, err = run(capsys, "-i", demo_model, "--dict")
    assert code == 0, err
    m = load(demo_model)
    assert all(name in out for name in m.state_dict())  # the listing
    assert "fidelity  (buffer)" in out
    assert f"shape  ({m.latent_size},)" in out
    assert "did you mean: fidelity?" in out
    assert "encode_params  (buffer)" not in out  # q ended the session
    assert "entry>" not in out  # no prompt when stdin is a pipe


@real_models
def test_dict_mode_summarises_large_tensors(real_model, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("latent_pca\nencode_params\n"))
    code, out, _ = run(capsys, "-i", real_model, "--dict")
    assert code == 0
    answer = out.split("latent_pca  (buffer)", 1)[1].split("encode_params  (buffer)")[0]
    assert len(answer.splitlines()) < 20 and "..." in answer and "edges only" in answer
    small = out.split("encode_params  (buffer)", 1)[1].split("values\n", 1)[1].splitlines()[0]
    assert [int(v) for v in small.strip(" []").split()] == load(real_model).encode_params.tolist()


def test_attr_mode_lists_and_details_members(fixture_models, capsys, monkeypatch):
    path = fixture_models["rave_named"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("latent_size\ndecode\nget_sample_rat\nencoder\n"))
    code, out, err = run(capsys, "-i", path, "--attr")
    assert code == 0, err
    m = load(path)
    assert f"value  {m.latent_size}" in out
    assert "decode(Tensor z) -> Tensor" in out and "TorchScript code" in out
    assert "did you mean: get_sample_rate" in out
    assert "encoder  (submodule)" in out


def test_detail_mode_takes_one_model(fixture_models, capsys):
    code, _, err = run(capsys, "-i", fixture_models["demo"], fixture_models["demo_b"], "--dict")
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


@pytest.mark.skipif(len(REAL_MODELS) < 2, reason="needs two real exports in RAVE_TEST_MODELS")
def test_compare_two_seeds_all_keys_match(capsys):
    first, second = REAL_MODELS[:2]
    result = run_json(capsys, "-i", first, second, "--compare")
    keys = result["keys"]
    assert len(keys["same_shape"]) == len(load(first).state_dict())
    assert keys["different_shape"] == {} and keys["only_in_some"] == {}
    # fixed filter banks are identical across seeds; trained weights are not
    assert "pqmf.forward_conv.weight" in keys["identical"]
    assert "decoder.net.0.weight" not in keys["identical"]
    code, out, _ = run(capsys, "-i", first, second, "--compare")
    assert code == 0 and "all keys match" in out


def test_compare_fixture_models_same_architecture(fixture_models, capsys):
    result = run_json(capsys, "-i", fixture_models["demo"], fixture_models["demo_b"], "--compare")
    assert result["keys"]["different_shape"] == {} and result["keys"]["only_in_some"] == {}
    assert "decoder.gain" not in result["keys"]["identical"]  # other weights
    assert [s["file"] for s in result["models"]] == ["demo.ts", "demo_b.ts"]


@real_models
def test_compare_demo_with_real_export_differs(real_model, demo_model, tmp_path, capsys):
    code, out, err = run(capsys, "-i", demo_model, real_model, "--compare", "--save", "-o", tmp_path)
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
    code, _, err = run(capsys, "-i", demo_model, "--compare")
    assert code == 2
    assert_one_line_error(err, "two or more")


# ---------------------------------------------------------------- bad input

def test_non_model_file_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "notes.ts"
    bad.write_text("these are not weights\n")
    code, out, err = run(capsys, "-i", bad)
    assert code != 0 and out == ""
    assert str(bad) in err and "Traceback" not in err


def test_truncated_model_is_one_line_error(demo_model, tmp_path, capsys):
    data = demo_model.read_bytes()
    cut = tmp_path / "cut.ts"
    cut.write_bytes(data[: len(data) // 2])
    code, out, err = run(capsys, "-i", cut)
    assert code != 0 and out == ""
    assert str(cut) in err and "truncated" in err and "Traceback" not in err


def test_folder_with_a_bad_file_reports_it_and_shows_the_rest(demo_model, tmp_path, capsys):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "good.ts").write_bytes(demo_model.read_bytes())
    (folder / "broken.ts").write_bytes(b"\x00" * 100)
    (folder / "readme.txt").write_text("not picked up: wrong extension")
    code, out, err = run(capsys, "-i", folder)
    assert code == 1
    assert "== good.ts ==" in out and "broken.ts" not in out
    assert "broken.ts" in err and "readme" not in err and "Traceback" not in err


# ---------------------------------------------------------------- checkpoints

@pytest.mark.parametrize("kind", ["open", "system"])
def test_malicious_checkpoint_never_runs_code(tmp_path, capsys, kind):
    marker = tmp_path / "pwned"
    payload = Payload(open, (str(marker), "w")) if kind == "open" else Payload(os.system, (f"touch '{marker}'",))
    ckpt = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(3)}, "hyper_parameters": payload}, ckpt)
    assert not marker.exists()
    for extra in ([], ["--config"], ["--dict"], ["--compare"]):
        inputs = [ckpt, ckpt] if extra == ["--compare"] else [ckpt]
        code, out, err = run(capsys, "-i", *inputs, *extra)
        assert code != 0
        assert "could not be read safely" in err and str(ckpt) in err and "Traceback" not in err
    assert not marker.exists()


def test_checkpoint_summary(checkpoint_run, capsys):
    ckpt, state = checkpoint_run
    (s,) = run_json(capsys, "-i", ckpt)
    assert s["format"] == "checkpoint"
    assert s["state_dict_entries"] == len(state)
    assert s["sr"] == 48000 and s["latent_size"] == 16  # from the run's config.gin
    assert s["ratio"] is None  # a checkpoint does not say; printed as unknown
    assert s["checkpoint"]["epoch"] == 3 and s["checkpoint"]["global_step"] == 1200
    assert s["totals"]["tensors"] == sum(t.numel() for t in state.values())
    enc = next(c for c in s["components"] if c["component"] == "encoder")
    assert enc["tensors"] == state["encoder.net.0.weight"].numel() + state["encoder.net.0.bias"].numel()


def test_checkpoint_config_prints_gin_and_hyper_parameters(checkpoint_run, capsys):
    ckpt, _ = checkpoint_run
    code, out, err = run(capsys, "-i", ckpt, "--config")
    assert code == 0, err
    assert "SAMPLING_RATE = 48000" in out and "learning_rate" in out
    records = run_json(capsys, "-i", ckpt, "--config")
    assert {r["source"] for r in records} == {str(ckpt.parents[2] / "config.gin"), f"{ckpt} [hyper_parameters]"}


def test_checkpoints_found_in_folders_with_extensions(checkpoint_run, demo_model, capsys):
    ckpt, _ = checkpoint_run
    root = ckpt.parents[3]
    (root / "demo.ts").write_bytes(demo_model.read_bytes())
    records = run_json(capsys, "-i", root, "--extensions", ".ts,.ckpt")
    assert sorted(r["format"] for r in records) == ["checkpoint", "torchscript"]
    assert [r["file"] for r in run_json(capsys, "-i", root)] == ["demo.ts"]  # default: .ts only


def test_config_of_export_without_one_is_clear(demo_model, capsys):
    code, _, err = run(capsys, "-i", demo_model, "--config")
    assert code == 1
    assert_one_line_error(err, str(demo_model), "no training configuration")


def test_dict_mode_on_checkpoint(checkpoint_run, capsys, monkeypatch):
    ckpt, state = checkpoint_run
    monkeypatch.setattr(sys, "stdin", io.StringIO("pqmf.hk\n"))
    code, out, _ = run(capsys, "-i", ckpt, "--dict")
    assert code == 0
    assert f"mean {float(state['pqmf.hk'].double().mean()):.6g}" in out


def test_attr_mode_on_checkpoint_shows_its_entries(checkpoint_run, capsys, monkeypatch):
    ckpt, _ = checkpoint_run
    monkeypatch.setattr(sys, "stdin", io.StringIO("hyper_parameters\nstate_dict\n"))
    code, out, _ = run(capsys, "-i", ckpt, "--attr")
    assert code == 0
    assert "'learning_rate': 0.0001" in out
    assert "<tensor float32 (8, 1, 7)>" in out  # tensors described, not dumped


# ---------------------------------------------------------------- command line

def test_json_with_save_keeps_stdout_valid_json(fixture_models, tmp_path, capsys):
    paths = [fixture_models["demo"], fixture_models["stereo512"]]
    code, out, err = run(capsys, "-i", *paths, "--json", "--save", "-o", tmp_path)
    assert code == 0, err
    assert [r["file"] for r in json.loads(out)] == ["demo.ts", "stereo512.ts"]
    summary = pd.read_csv(tmp_path / "summary.csv")  # one row per model when several
    assert list(summary["sr"]) == [load(p).sr for p in paths]
    for p in paths:
        assert (tmp_path / f"{p.stem}.state_dict.csv").is_file()
        assert f"saved {tmp_path / (p.stem + '.state_dict.csv')}" in err


def test_help_does_not_import_torch():
    code = ("import sys, runpy; sys.argv = ['inspector.py', '--help']\n"
            "try:\n    runpy.run_path('inspector.py', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules and 'numpy' not in sys.modules, 'heavy import'\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "--compare" in done.stdout and "./_inspector-output" in done.stdout


def test_detail_mode_prompts_on_a_terminal(demo_model, capsys, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    typed = iter(["latent_mean", "q"])
    prompts = []

    def fake_input(prompt=""):
        prompts.append(prompt)
        return next(typed)

    monkeypatch.setattr(sys, "stdin", Terminal(""))
    monkeypatch.setattr("builtins.input", fake_input)
    code, out, err = run(capsys, "-i", demo_model, "--dict")
    assert code == 0
    assert prompts == ["entry> ", "entry> "]  # asked again after an answer, then q ended it
    assert "latent_mean  (buffer)" in out and "q to quit" in err
