"""averager.py: merging models, what is merged and why, the saved model, the report.

Refusals, output paths and --audio are in test_averager_io.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch

import averager
from conftest import REAL_MODELS, real_models, run_cli
from ravekit.merging.math import linear_merge, slerp_merge, slerp_pair


def jit_load(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(path), map_location="cpu")


def state(path) -> dict:
    return {k: v.detach().clone() for k, v in jit_load(path).state_dict().items()}


def perturbed(src: Path, dst: Path, seed: int, scale: float = 0.1, codebooks: bool = True) -> Path:
    """A copy of ``src`` whose every non-empty float entry (buffers too) is scaled elementwise.

    Scaling by factors in ``1 +- scale`` keeps signs, so the demo model's
    band masks stay non-negative and the copy still plays.  ``codebooks``
    False keeps a discrete model's codebook, which the averager refuses to
    merge with another.
    """
    from ravekit.merging.plan import quantiser_entries

    m = jit_load(src)
    gen = torch.Generator().manual_seed(seed)
    keep = set() if codebooks else set(quantiser_entries(m.state_dict()))
    with torch.no_grad():
        for name, t in m.state_dict().items():
            if t.is_floating_point() and t.numel() and name not in keep:
                t.mul_(1.0 + scale * (2 * torch.rand(t.shape, generator=gen) - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(m, str(dst))
    return dst


def weighted(tensors, weights) -> torch.Tensor:
    """The reference weighted average: float64 sum of normalised weights, back to float32."""
    total = sum(weights)
    acc = sum(t.double() * (w / total) for t, w in zip(tensors, weights) if w)
    return acc.float()


def report_of(path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False)


PROTECTED = re.compile(r"(_params|^latent_pca|^latent_mean|^fidelity|\.pad|\.cache)$")


def mergeable(sd_a: dict, sd_b: dict) -> set[str]:
    """Entries the issue says can be merged: present in both, same shape, float, non-empty, not protected."""
    return {k for k, a in sd_a.items()
            if k in sd_b and sd_b[k].shape == a.shape and a.is_floating_point() and a.numel()
            and not PROTECTED.search(k)}


@pytest.fixture(scope="module")
def demo_c(fixture_models, tmp_path_factory) -> Path:
    """The demo architecture with every float entry changed, latent PCA buffers included."""
    return perturbed(fixture_models["demo"], tmp_path_factory.mktemp("avg") / "demo_c.ts", seed=3)


@pytest.fixture(scope="module")
def real_pair() -> tuple[Path, Path]:
    """Two real exports with identical entry names and shapes, if the folder has them."""
    shapes = {p: {k: tuple(v.shape) for k, v in jit_load(p).state_dict().items()} for p in REAL_MODELS}
    for i, a in enumerate(REAL_MODELS):
        for b in REAL_MODELS[i + 1:]:
            if shapes[a] == shapes[b]:
                return a, b
    pytest.skip("RAVE_TEST_MODELS has no two exports of one architecture")


def test_linear_merge_of_one_architecture(fixture_models, demo_c, tmp_path, capsys):
    a_path = fixture_models["demo"]
    out = tmp_path / "m.ts"
    code, stdout, err = run_cli(capsys, averager, "--models", a_path, demo_c, "--weights", 3, 1, "-o", out)
    assert code == 0, err
    report = tmp_path / "m.csv"
    assert stdout.split() == [str(out), str(report), str(tmp_path / "m.json")]
    recipe = json.loads((tmp_path / "m.json").read_text())
    assert [m["weight"] for m in recipe["models"]] == [0.75, 0.25]
    assert recipe["models"][1]["path"] == str(demo_c) and recipe["method"] == "linear"
    assert recipe["models"][0]["sha256"] == hashlib.sha256(a_path.read_bytes()).hexdigest()
    a, b, merged = state(a_path), state(demo_c), state(out)
    expected = mergeable(a, b)
    assert expected == {"encoder.bands", "encoder.smooth", "decoder.gain", "decoder.edges"}
    for name, value in merged.items():
        if name in expected:
            assert torch.equal(value, weighted([a[name], b[name]], [3, 1])), name
        else:
            assert torch.equal(value, a[name]), name
    # The protected latent buffers differ between the parents yet stay A's.
    assert not torch.equal(a["latent_pca"], b["latent_pca"])
    rows = report_of(report)
    assert list(rows["entry"]) == list(a)
    assert set(rows.loc[rows["merged"] == "yes", "entry"]) == expected
    reasons = dict(zip(rows["entry"], rows["reason"]))
    assert reasons["encode_params"] == "nn~ metadata buffer"
    assert reasons["latent_pca"].startswith("latent PCA")
    assert f"merged {len(expected)} of {len(a)} entries" in err
    assert (recipe["merged_entries"], recipe["entries"]) == (len(expected), len(a))


def test_saved_model_loads_and_plays_like_its_first_parent(fixture_models, tmp_path, capsys):
    out = tmp_path / "m.ts"
    assert run_cli(capsys, averager, "--models", fixture_models["demo"], fixture_models["demo_b"], "-o", out)[0] == 0
    a, b = state(fixture_models["demo"]), state(fixture_models["demo_b"])
    assert not torch.equal(a["decoder.gain"], b["decoder.gain"])
    assert torch.equal(state(out)["decoder.gain"], weighted([a["decoder.gain"], b["decoder.gain"]], [1, 1]))
    parent, m = jit_load(fixture_models["demo"]), jit_load(out)
    assert m.get_methods() == parent.get_methods()
    for buf in ("encode_params", "decode_params", "forward_params"):
        assert torch.equal(getattr(m, buf), getattr(parent, buf))
    assert (m.sr, m.latent_size, m.n_channels) == (parent.sr, parent.latent_size, parent.n_channels)
    z = m.encode(torch.randn(1, 1, 3 * 2048))
    assert z.shape == (1, 8, 3)
    y = m.decode(z)
    assert y.shape == (1, 1, 3 * 2048) and torch.isfinite(y).all()


def test_weights_one_zero_reproduce_first_model_bit_for_bit(fixture_models, demo_c, tmp_path, capsys):
    out = tmp_path / "m.ts"
    for method in ("linear", "slerp"):
        code, _, err = run_cli(capsys, averager, "--models", fixture_models["demo"], demo_c, "--weights", 1, 0,
                               "--method", method, "-o", out, "--force")
        assert code == 0, err
        a, merged = state(fixture_models["demo"]), state(out)
        assert all(torch.equal(merged[k], a[k]) for k in a), method


@real_models
def test_real_export_weights_one_zero_and_plays(real_model, tmp_path, capsys):
    partner = perturbed(real_model, tmp_path / "partner.ts", seed=5, codebooks=False)
    out = tmp_path / "m.ts"
    code, _, err = run_cli(capsys, averager, "--models", real_model, partner, "--weights", 1, 0, "-o", out)
    assert code == 0, err
    a, merged = state(real_model), state(out)
    assert all(torch.equal(merged[k], a[k]) for k in a)
    m, parent = jit_load(out), jit_load(real_model)
    assert m.get_methods() == parent.get_methods()
    ratio = int(parent.encode_params[3])
    x = 0.1 * torch.randn(1, int(parent.n_channels), 2 * ratio, generator=torch.Generator().manual_seed(0))
    outs = []
    for model in (parent, m):
        torch.manual_seed(7)
        outs.append(model.decode(model.encode(x)))
    assert torch.equal(outs[0], outs[1])


def test_real_pair_weighted_average(real_pair, tmp_path, capsys):
    a_path, b_path = real_pair
    out = tmp_path / "m.ts"
    code, _, err = run_cli(capsys, averager, "--models", a_path, b_path, "--weights", 0.3, 0.7, "-o", out)
    assert code == 0, err
    assert "warning: the latent PCA buffers" in err and "stay A's" in err
    a, b, merged = state(a_path), state(b_path), state(out)
    expected = mergeable(a, b)
    assert any(k.startswith("encoder.") for k in expected) and any(k.startswith("decoder.") for k in expected)
    for name, value in merged.items():
        if name in expected:
            assert torch.equal(value, weighted([a[name], b[name]], [0.3, 0.7])), name
        else:
            assert torch.equal(value, a[name]), name
    rows = report_of(out.with_suffix(".csv"))
    assert set(rows.loc[rows["merged"] == "yes", "entry"]) == expected
    zero = rows[rows["numel"] == 0]
    assert len(zero) and (zero["reason"] == "zero elements").all()
    assert (rows.loc[rows["entry"] == "encoder.warmed_up", "reason"] == "integer or boolean tensor").all()
    m = jit_load(out)
    z = m.encode(torch.zeros(1, 1, 2048))
    assert m.decode(z).shape[-1] == 2048


def test_scope_decoder_gives_encoder_of_a_and_decoder_of_b(real_pair, tmp_path, capsys):
    a_path, b_path = real_pair
    out = tmp_path / "m.ts"
    code, _, err = run_cli(capsys, averager, "--models", a_path, b_path, "--scope", "decoder", "--weights", 0, 1,
                           "-o", out)
    assert code == 0, err
    assert "latent PCA buffers" not in err  # A's encoder goes with A's PCA: nothing to warn about
    a, b, merged = state(a_path), state(b_path), state(out)
    chosen = {k for k in mergeable(a, b) if k.startswith("decoder.")}
    assert chosen
    for name, value in merged.items():
        assert torch.equal(value, b[name] if name in chosen else a[name]), name
    rows = report_of(out.with_suffix(".csv"))
    assert set(rows.loc[rows["merged"] == "yes", "entry"]) == chosen
    assert (rows.loc[rows["entry"].str.startswith("encoder.encoder"), "reason"] == "outside --scope decoder").all()


def test_include_exclude_and_scope_select_exactly(fixture_models, demo_c, tmp_path, capsys):
    a_path = fixture_models["demo"]
    cases = [
        (["--scope", "encoder"], {"encoder.bands", "encoder.smooth"}),
        (["--include", "^decoder"], {"decoder.gain", "decoder.edges"}),
        (["--include", "gain", "bands", "--exclude", "ban"], {"decoder.gain"}),
        (["--scope", "decoder", "--include", "bands|gain"], {"decoder.gain"}),
        (["--exclude", "^encoder", "--exclude", "edges"], {"decoder.gain"}),
        # --include cannot force a protected entry in.
        (["--include", "latent_pca|gain"], {"decoder.gain"}),
    ]
    a, b = state(a_path), state(demo_c)
    for i, (flags, chosen) in enumerate(cases):
        out = tmp_path / f"m{i}.ts"
        code, _, err = run_cli(capsys, averager, "--models", a_path, demo_c, "-o", out, *flags)
        assert code == 0, (flags, err)
        rows = report_of(out.with_suffix(".csv"))
        assert set(rows.loc[rows["merged"] == "yes", "entry"]) == chosen, flags
        merged = state(out)
        for name in a:
            want = weighted([a[name], b[name]], [1, 1]) if name in chosen else a[name]
            assert torch.equal(merged[name], want), (flags, name)


def test_slerp_on_parallel_tensors_equals_linear():
    a = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
    for b in (2.5 * a, a.clone()):
        for w in ([0.5, 0.5], [0.2, 0.8], [0.9, 0.1]):
            s, fell_back = slerp_merge([a, b], w)
            assert fell_back
            assert torch.equal(s, linear_merge([a, b], w))


def test_slerp_follows_the_arc_between_orthogonal_tensors():
    a = torch.tensor([3.0, 0.0])
    b = torch.tensor([0.0, 3.0])
    s, fell_back = slerp_merge([a, b], [0.5, 0.5])
    assert not fell_back
    # Halfway along the arc keeps the norm (linear would shrink it to 3 / sqrt 2).
    assert torch.allclose(s, torch.tensor([3.0, 3.0]) / 2**0.5, atol=1e-6)
    assert torch.equal(slerp_merge([a, b], [0.0, 1.0])[0], b)
    r, _ = slerp_pair(a.double(), b.double(), 2.0, 1.0)  # t = 1/3: 30 degrees from a
    assert torch.allclose(r, torch.tensor([3 * 3**0.5 / 2, 1.5], dtype=torch.float64))


def test_slerp_cli_three_models_and_report_columns(fixture_models, demo_c, tmp_path, capsys):
    d = perturbed(fixture_models["demo"], tmp_path / "demo_d.ts", seed=9)
    out = tmp_path / "m.ts"
    code, _, err = run_cli(capsys, averager, "--models", fixture_models["demo"], demo_c, d, "--method", "slerp",
                           "-o", out)
    assert code == 0, err
    rows = report_of(out.with_suffix(".csv"))
    for col in ("shape_A", "shape_B", "shape_C", "rel_dist", "rel_dist_B", "rel_dist_C", "merged", "reason"):
        assert col in rows.columns
    gain = rows[rows["entry"] == "decoder.gain"].iloc[0]
    assert gain["reason"].startswith("merged (slerp")
    assert float(gain["rel_dist"]) == max(float(gain["rel_dist_B"]), float(gain["rel_dist_C"])) > 0
    a, b, c = state(fixture_models["demo"]), state(demo_c), state(d)
    dist = torch.linalg.vector_norm((a["decoder.gain"] - b["decoder.gain"]).double()) / torch.linalg.vector_norm(
        a["decoder.gain"].double())
    assert float(gain["rel_dist_B"]) == pytest.approx(float(dist), rel=1e-5)
    merged = state(out)["decoder.gain"]
    lin = weighted([a["decoder.gain"], b["decoder.gain"], c["decoder.gain"]], [1, 1, 1])
    assert not torch.equal(merged, lin)  # slerp is not the average of non-parallel tensors
    assert "A = " in err and "C = " in err


def test_streaming_caches_stay_first_models(fixture_models, tmp_path, capsys):
    a = fixture_models["streaming"]
    b = perturbed(a, tmp_path / "streaming_b.ts", seed=11)
    out = tmp_path / "m.ts"
    assert run_cli(capsys, averager, "--models", a, b, "-o", out)[0] == 0
    sa, sb, merged = state(a), state(b), state(out)
    cache = "encoder.smooth_cache.cache"
    assert not torch.equal(sa[cache], sb[cache]) and torch.equal(merged[cache], sa[cache])
    assert torch.equal(merged["encoder.smooth"], weighted([sa["encoder.smooth"], sb["encoder.smooth"]], [1, 1]))
    # A streaming model merged with a non-streaming one: the cache exists only in A.
    out2 = tmp_path / "m2.ts"
    assert run_cli(capsys, averager, "--models", a, fixture_models["demo"], "-o", out2)[0] == 0
    row = report_of(out2.with_suffix(".csv")).set_index("entry").loc[cache]
    assert (row["shape_B"], row["merged"]) == ("missing", "no") and row["reason"].startswith("streaming cache")


def test_entries_missing_from_a_model_are_reported():
    from ravekit.merging.plan import plan_merge

    t = torch.ones(3)
    plans = plan_merge([{"w": t, "only_a": t}, {"w": 2 * t, "only_b": t}], {"w"})
    by_name = {p.name: p for p in plans}
    assert [p.name for p in plans] == ["w", "only_a", "only_b"]
    assert by_name["w"].merged and by_name["w"].kind == "parameter"
    assert by_name["only_a"].reason == "missing from B" and not by_name["only_a"].merged
    assert by_name["only_b"].reason == "missing from A" and by_name["only_b"].shapes == [None, (3,)]
