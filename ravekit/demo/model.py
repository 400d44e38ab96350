"""A small model of the project's own with the interface of a RAVE export.

Real RAVE weights cannot be shipped or downloaded, yet the toolkit must run
out of the box and its tests need models of several shapes.  This module
scripts a spectral-envelope coder with TorchScript and saves it exactly as
``rave export`` saves a model: attributes ``sr``, ``n_channels``,
``target_channels``, ``latent_size``, ``full_latent_size``, the nn~ buffers
``encode_params``/``decode_params``/``forward_params``, ``get_methods()``,
``get_attributes()`` (empty: nothing to set), and ``encode``/``decode``/``forward``.

encode: band energies of each block of ``ratio`` samples in ``latent_size``
    log-spaced bands, as natural logs, smoothed over three frames (so a frame
    depends on its neighbours, as in RAVE, and chunking needs context).
decode: noise filtered into the same bands, each band's amplitude following
    its latent (``sqrt(exp(z))``), interpolated between frames, at the source's
    RMS and soft-limited to +-1.  Decoding a modified latent is audibly related
    to the source: a band vocoder.

``streaming=True`` adds a cache buffer (``encoder.smooth_cache.cache``) that
carries the last frame from one call to the next, as streaming exports do,
and initialises it non-zero, as exports ship it.  Its decoder also delays
its output by ``decode_latency`` samples through a cache
(``decoder.delay.cache``), as a streaming export's decoder comes late.

``discrete=True`` makes it behave like RAVE's ``DiscreteScriptedRAVE``: encode
returns integer codebook indices (as floats), the nearest entry of a scalar
codebook of log energies; decode clamps codes into the codebook and looks
them up, and needs all ``latent_size`` code dims.  The codebook size is where
a real export keeps it: a ``codebook_size`` attribute on the quantizer and a
``quantizer._codebook.embed`` buffer of ``(codebook_size, 1)``.
"""

# No ``from __future__ import annotations`` here: TorchScript needs the buffers' class-level
# annotations (``cache: torch.Tensor``) as objects, not strings.
import math
from pathlib import Path

import torch
from torch import nn

from ravekit.demo.layers import NoiseDecoder, SpectralEncoder, StreamingNoiseDecoder, StreamingSpectralEncoder
from ravekit.engine.model import quiet_jit


class DemoRAVE(nn.Module):
    """The scripted model; subclasses only change ``original_name``."""

    def __init__(self, sr: int = 44100, ratio: int = 2048, latent_size: int = 8,
                 channels: int = 1, streaming: bool = False, decode_latency: int = 0):
        super().__init__()
        self.sr = sr
        self.n_channels = channels
        self.target_channels = channels
        self.latent_size = latent_size
        self.full_latent_size = latent_size
        self.stereo_mode = channels == 2
        self.encoder = (StreamingSpectralEncoder(sr, ratio, latent_size) if streaming
                        else SpectralEncoder(sr, ratio, latent_size, False))
        self.decoder = (StreamingNoiseDecoder(sr, ratio, latent_size, decode_latency)
                        if streaming and decode_latency > 0 else NoiseDecoder(sr, ratio, latent_size))
        pca = torch.eye(latent_size)
        self.register_buffer("latent_pca", pca)
        self.register_buffer("latent_mean", torch.zeros(latent_size))
        fidelity = torch.cumsum(torch.linspace(2.0, 0.5, latent_size), 0)
        self.register_buffer("fidelity", fidelity / fidelity[-1])
        self.register_buffer("encode_params", torch.tensor([channels, 1, latent_size, ratio]))
        self.register_buffer("decode_params", torch.tensor([latent_size, ratio, channels, 1]))
        self.register_buffer("forward_params", torch.tensor([channels, 1, channels, 1]))

    @torch.jit.export
    def get_methods(self):
        return ["encode", "decode", "forward"]

    @torch.jit.export
    def get_attributes(self) -> list[str]:
        # nn~ offers each name listed here as settable and calls set_NAME; the
        # demo has nothing to set (sr, n_channels, latent_size are fixed facts).
        return []

    @torch.jit.export
    def get_sample_rate(self) -> int:
        return self.sr

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.n_channels:
            raise ValueError("encode expects (batch, n_channels, samples)")
        return self.encoder(x)

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if z.shape[1] > self.full_latent_size:
            raise ValueError("too many latent dims")
        if z.shape[1] < self.full_latent_size:
            # Standard normal noise, as RAVE's exports fill missing dims.
            noise = torch.randn(z.shape[0], self.full_latent_size - z.shape[1], z.shape[2], device=z.device)
            z = torch.cat([z, noise], 1)
        y = self.decoder(z)
        return y.repeat(1, self.target_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class VariationalScriptedRAVE(DemoRAVE):
    """Same coder, named like a real RAVE v2 export."""


class Codebook(nn.Module):
    embed: torch.Tensor  # a buffer (codebook_size, 1)

    def __init__(self, codebook_size: int):
        super().__init__()
        # Log band energies from silence (log 1e-6) to loud, evenly spaced.
        self.register_buffer("embed", torch.linspace(-14.0, 4.0, codebook_size).view(-1, 1))


class ScalarQuantizer(nn.Module):
    """One codebook shared by every dim; ``codebook_size`` as on RAVE's quantizer layers."""

    def __init__(self, codebook_size: int):
        super().__init__()
        self.codebook_size = codebook_size
        self._codebook = Codebook(codebook_size)

    def encode(self, z: torch.Tensor) -> torch.Tensor:
        dist = (z.unsqueeze(-1) - self._codebook.embed.view(1, 1, 1, -1)).abs()
        return dist.argmin(-1).float()

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        # As RAVE's pre_process_latent: clamp into the codebook, truncate to an index.
        idx = codes.clamp(0, self.codebook_size - 1).long()
        return self._codebook.embed[:, 0][idx]


class DiscreteScriptedRAVE(DemoRAVE):
    """The coder with its latents quantized to codebook indices, like a discrete RAVE export."""

    def __init__(self, sr: int = 44100, ratio: int = 2048, latent_size: int = 8,
                 channels: int = 1, streaming: bool = False, decode_latency: int = 0, codebook_size: int = 64):
        super().__init__(sr=sr, ratio=ratio, latent_size=latent_size, channels=channels, streaming=streaming,
                         decode_latency=decode_latency)
        self.quantizer = ScalarQuantizer(codebook_size)

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.n_channels:
            raise ValueError("encode expects (batch, n_channels, samples)")
        return self.quantizer.encode(self.encoder(x))

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if z.shape[1] < self.latent_size:
            raise ValueError("a discrete model needs latent_size code channels")
        y = self.decoder(self.quantizer.decode(z[:, :self.latent_size]))
        return y.repeat(1, self.target_channels, 1)


def build_demo_model(path: str | Path, *, sr: int = 44100, ratio: int = 2048, latent_size: int = 8,
                     channels: int = 1, streaming: bool = False, rave_name: bool = False,
                     gain_seed: int | None = None, decode_latency: int = 0, discrete: bool = False,
                     codebook_size: int = 64) -> Path:
    """Script and save a demo model.

    Parameters
    ----------
    path : str or pathlib.Path
        Where to save the TorchScript file.
    sr : int > 0
        Sample rate in Hz.
    ratio : int > 0
        Samples per latent frame.
    latent_size : int > 0
        The model's ``latent_size``: ``latent_dims`` of its latents.
    channels : int > 0
        Audio channels in and out.
    streaming : bool
        Add the cache buffers of a streaming export.
    rave_name : bool
        Give it the ``original_name`` of a real export.
    gain_seed : int or None
        Randomises the decoder's band gains, to get two models of one
        architecture with different weights.
    decode_latency : int >= 0
        With ``streaming``, makes decode this many samples late, as a
        streaming export's is.
    discrete : bool
        Make a ``DiscreteScriptedRAVE`` whose latents are codes ``0 .. codebook_size - 1``.
    codebook_size : int > 0

    Returns
    -------
    path : pathlib.Path
    """
    module: DemoRAVE
    if discrete:
        module = DiscreteScriptedRAVE(sr=sr, ratio=ratio, latent_size=latent_size, channels=channels,
                                      streaming=streaming, decode_latency=decode_latency,
                                      codebook_size=codebook_size)
    else:
        cls = VariationalScriptedRAVE if rave_name else DemoRAVE
        module = cls(sr=sr, ratio=ratio, latent_size=latent_size, channels=channels, streaming=streaming,
                     decode_latency=decode_latency)
    if gain_seed is not None:
        gen = torch.Generator().manual_seed(gain_seed)
        with torch.no_grad():
            module.decoder.gain.copy_(0.5 + torch.rand(latent_size, generator=gen))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with quiet_jit():
        scripted = torch.jit.script(module)
        scripted.save(str(path))
    return path


def demo_signal(sr: int, seconds: float, seed: int = 0):
    """A short audible test piece: a melody of decaying tones over filtered noise.

    Parameters
    ----------
    sr : int > 0
        Sample rate in Hz.
    seconds : float > 0
        Length.
    seed : int
        Seeds the noise.

    Returns
    -------
    y : np.ndarray [shape=(samples,), dtype=float32]
        Mono, in about ``[-0.5, 0.5]``.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    notes = [220.0, 277.18, 329.63, 440.0, 329.63, 277.18]
    step = seconds / len(notes)
    y = np.zeros_like(t)
    for i, f in enumerate(notes):
        local = t - i * step
        on = (local >= 0) & (local < step)
        y[on] += np.sin(2 * math.pi * f * t[on]) * np.exp(-3 * local[on])
    y += 0.05 * rng.standard_normal(t.shape)
    return (0.4 * y).astype(np.float32)
