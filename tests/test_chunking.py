"""Chunked processing equals whole-signal processing (the exactness targets).

Deterministic paths only: the demo encoder, the deterministic part of a real
export's encoder (everything before the posterior sampling), and decoding
with every dim decode takes (``decode_dims``).  Streaming exports: chunked equals whole
and no state leaks from one file to the next.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import encoder
from conftest import export_facts, real_models, write_audio
from ravekit.engine.chunks import decode_latents, encode_blocks, encode_signal, measure_context
from ravekit.engine.model import load_model


def blocks(x, size):
    return [x[:, i:i + size] for i in range(0, x.shape[1], size)]


def noise(channels, samples, seed=0):
    return (0.1 * np.random.default_rng(seed).standard_normal((channels, samples))).astype(np.float32)


@pytest.mark.parametrize("chunk", [1, 3, 16])
def test_demo_encoder_chunked_equals_whole(fixture_models, chunk):
    model = load_model(fixture_models["demo"], "cpu", checksum=False)
    ctx = measure_context(model)
    assert ctx.encode >= 1  # the demo encoder smooths across neighbouring frames
    x = noise(1, 2048 * 40 + 123)
    whole = encode_signal(model, x)
    chunked = encode_blocks(model, blocks(x, 5000), chunk=chunk, context=ctx.encode)
    assert chunked.shape == whole.shape == (1, 8, 41)
    assert np.abs(chunked - whole).max() <= 1e-4
    # Without context the chunk edges are wrong: the measurement matters.
    if chunk < 16:
        assert np.abs(encode_blocks(model, [x], chunk=chunk, context=0) - whole).max() > 1e-3


class DeterministicEncoder:
    """A real export's encoder up to (not including) the random posterior sample."""

    def __init__(self, model):
        self.model, self.info = model, model.info

    def reset_state(self):
        self.model.reset_state()

    def encode(self, x):
        m = self.model.module
        with torch.inference_mode():
            # As the export's encode: every channel through the PQMF, the bands of all
            # channels side by side into the encoder (a stereo export's encoder sees both).
            bands = m.pqmf(x.reshape(-1, 1, x.shape[-1]))
            return m.encoder(bands.reshape(x.shape[0], -1, bands.shape[-1]))

    def decode(self, z):
        return self.model.decode(z)


class FixedNoiseDecoder:
    """A discrete export's decode with its noise drawn once per signal, not once per call.

    Discrete exports concatenate fresh ``randn`` noise (``noise_augmentation``
    dims) to the decoded codes on every call, so no two calls can agree.  This
    wrapper runs the same network on noise taken from one array indexed by
    absolute frame, the frame index riding in the row after the codes; what
    remains is the deterministic path, which chunking must reproduce exactly.
    """

    def __init__(self, model, frames: int, seed: int = 0):
        self.model, self.info = model, model.info
        m = model.module
        self.codes = model.info.latent_size
        self.size = int(getattr(m.encoder.rvq.layers, "0").codebook_size)
        gen = torch.Generator().manual_seed(seed)
        self.noise = torch.randn(1, int(m.encoder.noise_augmentation), frames, generator=gen)

    def reset_state(self):
        self.model.reset_state()

    def encode(self, x):
        return self.model.encode(x)

    def latents(self, z):
        """Codes ``(1, codes, frames)`` plus the frame-index row this wrapper reads."""
        index = np.arange(z.shape[-1], dtype=np.float32)[None, None]
        return np.concatenate([z, index], 1)

    def decode(self, z, noise=None):
        m = self.model.module
        codes, frames = z[:, :self.codes], z[0, self.codes].long()
        noise = self.noise[..., frames] if noise is None else noise
        with torch.inference_mode():
            y = m.decoder(torch.cat([m.encoder.rvq.decode(codes.clamp(0, self.size - 1).long()), noise], 1))
            return m.pqmf.inverse(y)[..., :z.shape[-1] * self.info.ratio]


def own_codes(model, frames: int) -> np.ndarray:
    """Codes a discrete model encoded itself: valid input for its decoder."""
    x = noise(model.info.n_channels, frames * model.info.ratio, seed=5)
    return encode_signal(model, x, seed=0)


def decoding_path(real_model, frames):
    """The model and latents whose decoding must not depend on chunking, for every kind.

    Continuous exports decode all the dims decode takes deterministically (``full_latent_size``,
    or a spherical model's ``latent_size`` angles); discrete ones get codes they made, through
    :class:`FixedNoiseDecoder`.
    """
    model = load_model(real_model, "cpu", checksum=False)
    ctx = measure_context(model)  # measured on the export itself, noise and all
    if not export_facts(real_model)["discrete"]:
        z = np.random.default_rng(1).standard_normal((1, export_facts(real_model)["decode_dims"], frames))
        return model, z.astype(np.float32), ctx
    fixed = FixedNoiseDecoder(model, frames)
    z = own_codes(model, frames)
    # The wrapper is the export's own decode, given the noise the export would draw.
    torch.manual_seed(4)
    ref = model.decode(torch.from_numpy(z)).numpy()
    torch.manual_seed(4)
    drawn = torch.randn(fixed.noise.shape)
    assert np.array_equal(fixed.decode(torch.from_numpy(fixed.latents(z)), drawn).numpy(), ref)
    return fixed, fixed.latents(z), ctx


@real_models
def test_real_encoder_chunked_equals_whole(real_model):
    model = DeterministicEncoder(load_model(real_model, "cpu", checksum=False))
    ctx = measure_context(model)
    x = noise(model.info.n_channels, 2048 * 60 + 999)
    whole = encode_signal(model, x)
    chunked = encode_blocks(model, blocks(x, 7777), chunk=8, context=ctx.encode)
    assert chunked.shape == whole.shape
    assert np.abs(chunked - whole).max() <= 1e-4 * max(1.0, np.abs(whole).max())


@real_models
def test_real_decoder_chunked_equals_whole(real_model):
    model, z, ctx = decoding_path(real_model, 50)
    whole = decode_latents(model, z, seed=0)
    chunked = decode_latents(model, z, seed=0, chunk=7, context=ctx.decode)
    assert chunked.shape == whole.shape == (model.info.target_channels, 50 * model.info.ratio)
    assert np.abs(chunked - whole).max() <= 1e-4 * np.abs(whole).max()


def test_streaming_chunked_equals_whole_and_resets(fixture_models):
    model = load_model(fixture_models["streaming"], "cpu", checksum=False)
    assert model.info.streaming and measure_context(model).encode == 0
    x = noise(1, 2048 * 30 + 5)
    whole = encode_signal(model, x)
    chunked = encode_blocks(model, blocks(x, 3000), chunk=4, context=0)
    assert np.abs(chunked - whole).max() <= 1e-6
    # The state the previous call left must not leak into the next signal:
    # without the reset encode_blocks does, the first frame would differ.
    with torch.no_grad():
        raw = model.module.encode(torch.from_numpy(x)[None]).numpy()
    assert np.abs(raw - whole)[..., 0].max() > 1e-3


def test_streaming_no_state_leak_across_files_in_a_batch(tmp_path, capsys, fixture_models):
    write_audio(tmp_path / "in" / "a.wav", seconds=1.0, freq=300)
    write_audio(tmp_path / "in" / "b.wav", seconds=1.0, freq=300)  # the same file twice
    code = encoder.main(["-m", str(fixture_models["streaming"]), "-i", str(tmp_path / "in"),
                         "-o", str(tmp_path / "o"), "--chunk", "0.2"])
    assert code == 0
    a, b = (np.load(p) for p in sorted((tmp_path / "o").rglob("*.npy")))
    assert np.array_equal(a, b)


@real_models
def test_noise_filled_dims_do_not_depend_on_the_chunk_size(real_model):
    """Fewer dims than decode takes: the fill is drawn once per signal, as one whole call would.

    (A discrete export reads only its codes and ignores the fill rows.  A spherical one takes
    exactly its latent_size angles: one is left out, so that there is a fill.)
    """
    model, z, ctx = decoding_path(real_model, 40)
    facts = export_facts(real_model)
    z = z[:, :min(model.info.latent_size, facts["decode_dims"] - 1) + facts["discrete"]]
    whole = decode_latents(model, z, seed=3)
    for chunk in (5, 13):
        chunked = decode_latents(model, z, seed=3, chunk=chunk, context=ctx.decode)
        assert np.abs(chunked - whole).max() <= 1e-4 * np.abs(whole).max()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the resident size from /proc")
def test_encoding_holds_only_the_latents_not_the_models_wider_output():
    """v2 exports return their 8 dims as a view of all 128: the chunks kept must not keep those alive.

    With views kept, a 60-minute file held 16 times its latents (150 MB more with v2_small).  A
    stub model returns 8 of 4096 rows (8 MB per chunk, 320 MB over the signal): only the latents
    (5 MB) may stay resident.
    """
    from types import SimpleNamespace

    ratio, dims, wide = 64, 8, 4096

    def resident_mb() -> float:
        text = Path("/proc/self/status").read_text()
        return int(text.split("VmRSS:")[1].split()[0]) / 1024

    class Viewing:
        info = SimpleNamespace(ratio=ratio, n_channels=1, streaming=False, sr=44100)

        def reset_state(self):
            pass

        def encode(self, x):
            return torch.ones(1, wide, x.shape[-1] // ratio)[:, :dims]

    x = np.zeros((1, ratio * 20000), np.float32)
    before, during = resident_mb(), []
    z = encode_blocks(Viewing(), (x[:, i:i + 65536] for i in range(0, x.shape[1], 65536)), chunk=500, context=2,
                      progress=lambda seconds: during.append(resident_mb()))
    assert z.shape == (1, dims, 20000) and len(during) == 40
    assert max(during) - before < 100
