"""averager.py --repair: REPAIR folded into the merged export's weights, on the trained pair.

The trained pair (``trained-models/plucks_a.ts``, ``plucks_b.ts`` beside
$RAVE_TEST_MODELS) is used because only trained models have channel
statistics worth matching; calibration audio is synthesized here.
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import averager
from conftest import run_cli, write_audio
from ravekit.merging.activations import NETWORKS, decoder_input, encoder_input, submodule
from ravekit.merging.plan import merge_models
from ravekit.merging.repair import TOLERANCE, apply_scales, load_calibration, parent_moments, repair


def _trained() -> list[Path]:
    folder = os.environ.get("RAVE_TEST_MODELS")
    root = Path(folder).resolve().parent / "trained-models" if folder else None
    pair = [root / "plucks_a.ts", root / "plucks_b.ts"] if root else []
    return pair if pair and all(p.exists() for p in pair) else []


PAIR = _trained()
needs_pair = pytest.mark.skipif(not PAIR, reason="trained-models/ beside RAVE_TEST_MODELS not found")
STEREO = (Path(os.environ.get("RAVE_TEST_MODELS", "/nonexistent")) / "kinds" / "v2cap16_stereo_44k_seed0.ts")


def _load(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(path), map_location="cpu")


def _copy(module):
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(module, buffer)
        buffer.seek(0)
        return torch.jit.load(buffer, map_location="cpu")


@pytest.fixture(scope="module")
def calibration(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("calibration")
    return [write_audio(folder / f"c{i}.wav", seconds=1.5, seed=i, freq=110.0 * (i + 2)) for i in range(2)]


@needs_pair
def test_repaired_channels_have_the_interpolated_parent_rms(calibration):
    w = [0.3, 0.7]
    result = merge_models(PAIR, w, repair_audio=calibration)
    assert result.repair, "no layer was corrected"
    audio = load_calibration(calibration, 44100, 1, 2048)
    parents = [_load(p) for p in PAIR]
    targets = parent_moments(parents, audio, 0)
    after = parent_moments([result.module], audio, 0)[0]
    for layer in result.repair:
        want = w[0] * targets[0][layer.name] + w[1] * targets[1][layer.name]
        live = want > 0
        np.testing.assert_allclose(after[layer.name][live], want[live], rtol=TOLERANCE)
    # Before the repair they were not: the merge had lost spread (what REPAIR is for).
    plain = parent_moments([merge_models(PAIR, w).module], audio, 0)[0]
    name = result.repair[-1].name
    assert not np.allclose(plain[name], w[0] * targets[0][name] + w[1] * targets[1][name], rtol=0.05)


@needs_pair
def test_folded_correction_equals_the_same_correction_applied_by_hooks(calibration):
    w = [0.5, 0.5]
    merged = merge_models(PAIR, w).module
    hooked = _copy(merged)
    audio = load_calibration(calibration, 44100, 1, 2048)
    parents = [_load(p) for p in PAIR]
    scales: dict = {}
    layers = repair(merged, parent_moments(parents, audio, 0), w, audio, 0, scales=scales)
    assert len(scales) == len(layers) > 0 and any(not torch.allclose(s, torch.ones_like(s)) for s in scales.values())
    assert_folded_equals_hooks(merged, hooked, audio, scales)


def assert_folded_equals_hooks(merged, hooked, audio, scales: dict) -> None:
    """Each network of ``merged`` (corrections folded in) computes what ``hooked`` computes with ``scales``
    applied on the fly, on the encoder's bands and the decoder's own latents."""
    for net, x in zip(NETWORKS, (encoder_input(merged, audio), decoder_input(hooked, audio, 1))):
        with torch.no_grad():
            folded = submodule(merged, net).forward(x)
        by_hooks = apply_scales(hooked, net, x, scales)
        torch.testing.assert_close(folded, by_hooks, rtol=1e-4, atol=1e-5 * float(by_hooks.abs().max()))


@needs_pair
def test_cli_repair_writes_a_plain_export_that_keeps_a_s_methods(calibration, tmp_path, capsys):
    out = tmp_path / "m.ts"
    code, _, err = run_cli(capsys, averager, "--models", *PAIR, "--align", "--repair", *calibration, "-o", out)
    assert code == 0, err
    assert "--repair: rescaled the channels of" in err
    assert "channels aligned by activations" not in err  # --align given: no default taken
    merged, a = _load(out), _load(PAIR[0])
    assert merged.get_methods() == a.get_methods() and merged.get_attributes() == a.get_attributes()
    assert set(merged.state_dict()) == set(a.state_dict())
    # The latent PCA is the merged encoder's now, and the report says so instead of "kept from A".
    assert not torch.equal(merged.state_dict()["latent_pca"], a.state_dict()["latent_pca"])
    with open(tmp_path / "m.csv", newline="") as f:
        reasons = {row["entry"]: row["reason"] for row in csv.DictReader(f)}
    assert "recomputed by --repair" in reasons["latent_pca"]


def _bad(tmp_path, kind: str) -> Path:
    path = tmp_path / f"{kind}.wav"
    if kind == "short":
        return write_audio(path, seconds=0.5)
    data = np.zeros((44100 * 2, 1), np.float32)
    if kind == "nan":
        data[:] = 0.1
        data[1000] = np.nan
    sf.write(str(path), data, 44100, subtype="FLOAT")
    return path


@needs_pair
@pytest.mark.parametrize("kind, words", [("short", "too short to measure a channel"), ("nan", "NaN"),
                                         ("silent", "silent")])
def test_bad_calibration_audio_one_line_exit_1_nothing_written(kind, words, tmp_path, capsys):
    bad = _bad(tmp_path, kind)
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, averager, "--models", *PAIR, "--repair", bad, "-o", out / "m.ts")
    assert code == 1
    lines = [line for line in err.splitlines() if line]
    assert len(lines) == 1 and str(bad) in lines[0] and words in lines[0], err
    assert not out.exists() or not any(out.iterdir())


@needs_pair
@pytest.mark.skipif(not STEREO.exists(), reason="kinds/v2cap16_stereo_44k_seed0.ts not found")
def test_repair_refuses_models_with_other_channel_groups(calibration, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, averager, "--models", PAIR[0], STEREO, "--repair", *calibration,
                           "-o", out / "m.ts")
    lines = [line for line in err.splitlines() if line and "has 2->2 channels" not in line]
    assert code == 1 and len(lines) == 1 and str(STEREO) in lines[0] and "--repair" in lines[0], err
    assert not out.exists() or not any(out.iterdir())


@needs_pair
@pytest.mark.parametrize("selection", [("--scope", "decoder"), ("--include", "decoder"), ("--exclude", "encoder")])
def test_repair_refuses_a_partial_selection_which_it_would_overstep(selection, calibration, tmp_path, capsys):
    # It rescales the encoder's convolutions and recomputes the latent PCA: a decoder-only merge would
    # come back with A's encoder changed, while the report said it was kept.
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, averager, "--models", *PAIR, *selection, "--repair", *calibration,
                           "-o", out / "m.ts")
    lines = [line for line in err.splitlines() if line]
    assert code == 2 and len(lines) == 1 and "--repair" in lines[0] and selection[0] in lines[0], err
    assert not out.exists() or not any(out.iterdir())


@needs_pair
def test_repair_with_weights_one_zero_gives_a_bit_for_bit(calibration, tmp_path, capsys):
    out = tmp_path / "m.ts"
    code, _, err = run_cli(capsys, averager, "--models", *PAIR, "--weights", 1, 0, "--repair", *calibration,
                           "-o", out)
    assert code == 0, err
    merged, a = _load(out).state_dict(), _load(PAIR[0]).state_dict()
    assert all(torch.equal(merged[k], a[k]) for k in a)


@needs_pair
def test_repair_alone_aligns_by_activations_and_align_none_opts_out(calibration, tmp_path, capsys):
    import json

    code, _, err = run_cli(capsys, averager, "--models", *PAIR, "--repair", *calibration, "-o", tmp_path / "a.ts")
    assert code == 0 and "--repair without --align: channels aligned by activations" in err, err
    assert json.loads((tmp_path / "a.json").read_text())["alignment"]["method"] == "activations"
    assert (tmp_path / "a.align.csv").exists()
    code, _, err = run_cli(capsys, averager, "--models", *PAIR, "--repair", *calibration, "--align", "none",
                           "-o", tmp_path / "n.ts")
    assert code == 0 and "aligned" not in err, err
    assert not json.loads((tmp_path / "n.json").read_text())["alignment"]["used"]


@needs_pair
def test_a_missing_repair_file_is_a_command_line_error_before_any_model_loads(tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, averager, "--models", *PAIR, "--repair", tmp_path / "missing.wav",
                           "-o", out / "m.ts")
    assert code == 2 and "--repair" in err and "missing.wav" in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()
