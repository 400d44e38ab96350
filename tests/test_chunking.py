"""Chunked processing equals whole-signal processing (the exactness targets).

Deterministic paths only: the demo encoder, the deterministic part of a real
export's encoder (everything before the posterior sampling), and decoding
with all ``full_latent_size`` dims.  Streaming exports: chunked equals whole
and no state leaks from one file to the next.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import encoder
from conftest import real_models, write_audio
from ravekit.model import load_model
from ravekit.process import decode_latents, encode_blocks, encode_signal, measure_context


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
            return m.encoder(m.pqmf(x.reshape(-1, 1, x.shape[-1])))

    def decode(self, z):
        return self.model.decode(z)


@real_models
def test_real_encoder_chunked_equals_whole(real_model):
    model = DeterministicEncoder(load_model(real_model, "cpu", checksum=False))
    ctx = measure_context(model)
    x = noise(1, 2048 * 60 + 999)
    whole = encode_signal(model, x)
    chunked = encode_blocks(model, blocks(x, 7777), chunk=8, context=ctx.encode)
    assert chunked.shape == whole.shape
    assert np.abs(chunked - whole).max() <= 1e-4 * max(1.0, np.abs(whole).max())


@real_models
def test_real_decoder_chunked_equals_whole(real_model):
    model = load_model(real_model, "cpu", checksum=False)
    ctx = measure_context(model)
    z = np.random.default_rng(1).standard_normal((1, model.info.full_latent_size, 50)).astype(np.float32)
    whole = decode_latents(model, z, seed=0)
    chunked = decode_latents(model, z, seed=0, chunk=7, context=ctx.decode)
    assert chunked.shape == whole.shape == (1, 50 * model.info.ratio)
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
    """Fewer dims than full_latent_size: the fill is drawn once per signal, as one whole call would."""
    model = load_model(real_model, "cpu", checksum=False)
    ctx = measure_context(model)
    z = np.random.default_rng(2).standard_normal((1, model.info.latent_size, 40)).astype(np.float32)
    whole = decode_latents(model, z, seed=3)
    for chunk in (5, 13):
        chunked = decode_latents(model, z, seed=3, chunk=chunk, context=ctx.decode)
        assert np.abs(chunked - whole).max() <= 1e-4 * np.abs(whole).max()
