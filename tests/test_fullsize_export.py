"""tools/make_fullsize_export.py: the benchmark's full-size-shaped v2 runs like any v2 export, 4x wider inside."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

import encoder
from conftest import run_cli, write_audio
from tools.make_fullsize_export import make_fullsize

SOURCE = Path(os.environ.get("RAVE_TEST_MODELS") or "/nonexistent") / "v2cap16_mono_44k_seed0.ts"


@pytest.mark.skipif(not SOURCE.is_file(), reason="RAVE_TEST_MODELS not set")
def test_fullsize_shaped_export_runs_with_full_size_widths(tmp_path, capsys):
    import torch

    dest = make_fullsize(SOURCE, tmp_path / "full.ts")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        small, full = torch.jit.load(str(SOURCE)).eval(), torch.jit.load(str(dest)).eval()
    widths = {k: v.shape for k, v in small.state_dict().items()}
    wide = full.state_dict()
    # Hidden convolutions 4x wider; bands in, latents in and out, audio out as they were.
    assert wide["encoder.encoder.net.5.weight"].shape == (128, 64, 8)
    assert wide["encoder.encoder.net.0.weight"].shape == (64, 16, 7)
    assert wide["encoder.encoder.net.21.weight"].shape == (256, 1024, 3)
    assert wide["decoder.net.0.weight"].shape == (1024, 128, 3)
    assert wide["decoder.net.21.weight"].shape == (32, 64, 7)
    assert {k: v.shape for k, v in wide.items() if k.startswith(("pqmf", "latent"))} == \
        {k: v for k, v in widths.items() if k.startswith(("pqmf", "latent"))}
    x = 0.1 * torch.randn(1, 1, 3 * 2048 + 5)
    with torch.inference_mode():
        z = full.encode(x)
        y = full.decode(z)
    assert z.shape == (1, 8, 4) and y.shape == (1, 1, 4 * 2048) and bool(torch.isfinite(y).all())
    # The toolkit takes it as it takes the export it was made from.
    wav = write_audio(tmp_path / "a.wav", seconds=1.0)
    code, _, err = run_cli(capsys, encoder, "-m", dest, "-i", wav, "-o", tmp_path / "lat", "-q", "--jobs", "1")
    assert code == 0, err
    assert np.load(tmp_path / "lat" / "a.npy", allow_pickle=False).shape == (1, 8, 22)
