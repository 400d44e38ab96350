"""averager.py --repair on RAVE v1: BatchNorm's weight and bias take a scale and a shift.

There is one v1 export and it is untrained, so the pair is made from it: A is
the export with BatchNorm tensors drawn at random (``test_align_v1``), B is A
with every tensor of its networks moved by 0.7 of its spread.  A plain merge of
the two loses spread (what REPAIR is for); calibration audio is synthesized.
"""

from __future__ import annotations

import json

import pytest
import torch
from test_align import apply, jit_load, jit_save
from test_align_v1 import needs_v1, v1_with_trained_like_batchnorm
from test_repair import assert_folded_equals_hooks

import averager
from conftest import run_cli, write_audio
from ravekit.merging.plan import merge_models
from ravekit.merging.repair import TOLERANCE, load_calibration, parent_moments, repair

NORMS = {f"encoder.encoder.net.{i}.weight" for i in (1, 4, 7, 10)}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("v1pair")
    a, _ = v1_with_trained_like_batchnorm()
    a_path = jit_save(a, folder / "a.ts")
    gen = torch.Generator().manual_seed(9)
    apply(a, {n: t + 0.7 * t.std() * torch.randn(t.shape, generator=gen) for n, t in a.state_dict().items()
              if n.startswith(("encoder.", "decoder.")) and t.is_floating_point() and t.numel() > 1
              and not n.endswith("running_var")})  # a variance must stay positive
    return [a_path, jit_save(a, folder / "b.ts")]


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    folder = tmp_path_factory.mktemp("v1calibration")
    return [write_audio(folder / f"c{i}.wav", seconds=1.5, seed=i, freq=110.0 * (i + 2)) for i in range(2)]


def interpolated(targets, w, key):
    return w[0] * targets[0][key] + w[1] * targets[1][key]


@needs_v1
def test_v1_repair_gives_batchnorm_channels_the_interpolated_mean_and_std(pair, calibration):
    w = [0.3, 0.7]
    result = merge_models(pair, w, repair_audio=calibration)
    assert {layer.name for layer in result.repair if layer.shifted} == NORMS
    assert any(not layer.shifted for layer in result.repair)  # v1's convolutions have no bias: scale only
    audio = load_calibration(calibration, 44100, 1, 2048)
    targets = parent_moments([jit_load(p) for p in pair], audio, 0)
    after = parent_moments([result.module], audio, 0)[0]
    plain = parent_moments([merge_models(pair, w).module], audio, 0)[0]
    for layer in result.repair:
        if layer.shifted:
            std = interpolated(targets, w, layer.name + "#std")
            mean = interpolated(targets, w, layer.name + "#mean")
            torch.testing.assert_close(after[layer.name + "#std"], std, rtol=TOLERANCE, atol=0)
            # a mean near 0 is measured against its channel's spread
            assert float(((after[layer.name + "#mean"] - mean).abs() / std).max()) <= TOLERANCE, layer.name
            # Before, the mean was off by more than the tolerance: the shift did something.
            assert float(((plain[layer.name + "#mean"] - mean).abs() / std).max()) > 10 * TOLERANCE
        else:
            torch.testing.assert_close(after[layer.name], interpolated(targets, w, layer.name), rtol=TOLERANCE, atol=0)


@needs_v1
def test_v1_folded_scale_and_shift_equal_the_same_correction_by_hooks(pair, calibration):
    w = [0.5, 0.5]
    merged = merge_models(pair, w).module
    hooked = jit_load(jit_save(merged, pair[0].parent / "hooked.ts"))
    audio = load_calibration(calibration, 44100, 1, 2048)
    scales: dict = {}
    repair(merged, parent_moments([jit_load(p) for p in pair], audio, 0), w, audio, 0, scales=scales)
    shifts = [k for k in scales if k.endswith("#shift")]
    assert len(shifts) == len(NORMS) and all(float(scales[k].abs().max()) > 0 for k in shifts)
    assert_folded_equals_hooks(merged, hooked, audio, scales)


@needs_v1
def test_v1_cli_align_repair_writes_a_plain_export_and_says_what_was_shifted(pair, calibration, tmp_path, capsys):
    out = tmp_path / "m.ts"
    code, _, err = run_cli(capsys, averager, "--models", *pair, "--align", "--repair", *calibration, "-o", out)
    assert code == 0, err
    assert "4 with a bias (v1's BatchNorm) took a scale and a shift" in err
    merged, a = jit_load(out), jit_load(pair[0])
    assert merged.get_methods() == a.get_methods() and merged.get_attributes() == a.get_attributes()
    assert set(merged.state_dict()) == set(a.state_dict())
    layers = json.loads(out.with_suffix(".json").read_text())["repair"]["layers"]
    assert {row["name"] for row in layers if row["shift"]} == NORMS
    with torch.no_grad():
        y = merged.forward(torch.randn(1, 1, 8192, generator=torch.Generator().manual_seed(0)))
    assert torch.isfinite(y).all() and float(y.abs().max()) > 0
