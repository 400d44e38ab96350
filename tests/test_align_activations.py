"""averager.py --align activations: channels matched by the correlation of their outputs on audio."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
import torch

import averager
from conftest import run_cli, write_audio
from ravekit.merging.align_activations import align_by_activations
from ravekit.merging.align_groups import derive_groups, permute_state
from ravekit.merging.repair import load_calibration

V2 = Path(os.environ.get("RAVE_TEST_MODELS", "/nonexistent")) / "v2cap16_mono_44k_seed0.ts"
needs_v2 = pytest.mark.skipif(not V2.exists(), reason="RAVE_TEST_MODELS/v2cap16_mono_44k_seed0.ts not found")


def _load(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(path), map_location="cpu")


@needs_v2
def test_activation_matching_undoes_a_hidden_reordering(tmp_path):
    a, b = _load(V2), _load(V2)
    groups = derive_groups(a)
    gen = torch.Generator().manual_seed(7)
    perms = [torch.randperm(g.size, generator=gen) for g in groups]
    live = b.state_dict()
    with torch.no_grad():
        for name, value in permute_state(a.state_dict(), groups, perms).items():
            live[name].copy_(value)
    assert any(not torch.equal(live[n], a.state_dict()[n]) for n in live)
    audio = load_calibration([write_audio(tmp_path / "c.wav", seconds=2.0)], 44100, 1, 2048)
    states, stats = align_by_activations([a, b], [V2, tmp_path / "b.ts"], audio)
    for name, value in a.state_dict().items():
        assert torch.equal(states[1][name], value), name
    assert all(s.cos_after > 0.999999 for s in stats[0])


@needs_v2
def test_align_activations_needs_the_repair_audio(tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, averager, "--models", V2, V2.with_name("v2cap16_mono_44k_seed1.ts"),
                           "--align", "activations", "-o", out / "m.ts")
    lines = [line for line in err.splitlines() if line]
    assert code == 2 and len(lines) == 1 and "--align activations" in lines[0] and "--repair" in lines[0], err
    assert not out.exists()


@needs_v2
@pytest.mark.parametrize("drop", [None, "latent_pca", "decoder"])
def test_latent_dims_permuted_and_flipped_play_the_same(drop, tmp_path):
    """A model whose pre-PCA latent dims are permuted and sign-flipped (every part that holds them moved
    together) encodes to the same PCA latents and decodes them to the same audio; leaving one part
    out breaks it, so the test sees every part."""
    from ravekit.merging.align_latent import permute_latents
    from ravekit.merging.latent import posterior_means

    a, b = _load(V2), _load(V2)
    gen = torch.Generator().manual_seed(3)
    n = int(a.full_latent_size)
    perm = torch.randperm(n, generator=gen)
    sign = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    moved = permute_latents(a.state_dict(), perm, sign)
    live = b.state_dict()
    with torch.no_grad():
        for name, value in moved.items():
            if not (drop == "decoder" and name.startswith("decoder.")) and name != drop:
                live[name].copy_(value)
    audio = load_calibration([write_audio(tmp_path / "c.wav", seconds=2.0)], 44100, 1, 2048)
    means_a, means_b = posterior_means(a, audio), posterior_means(b, audio)
    torch.testing.assert_close(means_b, means_a[:, perm] * sign.double())
    z = torch.randn(1, n, 6, generator=gen)
    with torch.no_grad():
        same = torch.allclose(a.decode(z), b.decode(z), atol=1e-5)
    assert same == (drop is None)
