"""The demo model behaves like an export in nn~: settable attributes, output level."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import FIXTURE_SPECS
from ravekit.engine.model import load_module


def test_attributes_offered_to_nn_tilde_all_have_setters(fixture_models):
    """nn~ offers every name of get_attributes() as settable and calls set_NAME / get_NAME."""
    for name, path in fixture_models.items():
        m = load_module(path)
        for attr in m.get_attributes():
            assert m._c._has_method(f"set_{attr}") and m._c._has_method(f"get_{attr}"), (name, attr)


def test_real_exports_list_only_attributes_with_setters(fixture_models):
    """The rule the demo follows is the one real exports follow (docs/rave-exports.md)."""
    import os
    from pathlib import Path

    folder = os.environ.get("RAVE_TEST_MODELS")
    paths = sorted(Path(folder).rglob("*.ts")) if folder else []
    if not paths:
        pytest.skip("RAVE_TEST_MODELS not set")
    m = load_module(paths[0])
    assert all(m._c._has_method(f"set_{a}") for a in m.get_attributes())


def test_signals(sr: int, channels: int, seconds: float = 1.0) -> dict[str, np.ndarray]:
    """Inputs within +-1: sines of several levels and pitches, full-scale noise, a square wave."""
    t = np.arange(int(sr * seconds)) / sr
    rng = np.random.default_rng(0)
    out = {}
    for amp in (0.1, 0.5, 1.0):
        for freq in (55.0, 440.0, 3000.0, 0.4 * sr):
            out[f"sine {amp} {freq:.0f} Hz"] = amp * np.sin(2 * np.pi * freq * t)
    out["uniform noise"] = rng.uniform(-1, 1, t.size)
    out["gaussian noise clipped"] = np.clip(rng.standard_normal(t.size), -1, 1)
    out["square"] = np.sign(np.sin(2 * np.pi * 110 * t))
    return {k: np.repeat(v[None], channels, 0).astype(np.float32) for k, v in out.items()}


test_signals.__test__ = False  # a helper, not a test


@pytest.mark.parametrize("name", sorted(FIXTURE_SPECS))
def test_output_stays_within_one_for_input_within_one(fixture_models, name):
    m = load_module(fixture_models[name])
    sr, ch = int(m.sr), int(m.n_channels)
    for label, x in test_signals(sr, ch).items():
        torch.manual_seed(0)
        with torch.inference_mode():
            y = m.forward(torch.from_numpy(x)[None])
            z = m.encode(torch.from_numpy(x)[None])
            d = m.decode(z)
        assert float(y.abs().max()) <= 1.0 and float(d.abs().max()) <= 1.0, (name, label)


def test_output_level_follows_the_input(demo_model):
    """Still a vocoder of its source: a sine comes out at about its own RMS, silence stays quiet."""
    m = load_module(demo_model)
    sr = int(m.sr)
    t = np.arange(sr) / sr
    for amp in (0.05, 0.2, 0.5):
        x = torch.from_numpy((amp * np.sin(2 * np.pi * 440 * t)).astype(np.float32))[None, None]
        torch.manual_seed(0)
        with torch.inference_mode():
            y = m.forward(x)[..., 4096:-4096]  # away from the edges' smoothing
        ratio = float(y.pow(2).mean().sqrt()) / (amp / np.sqrt(2))
        assert 0.7 < ratio < 1.3, (amp, ratio)
