"""The demo model's layers: a band-energy encoder and a noise-vocoder decoder.

:mod:`ravekit.demo.model` assembles them into a model with RAVE's export
interface; the streaming variants carry state from call to call in cache
buffers, as streaming exports do.
"""

# No ``from __future__ import annotations`` here: TorchScript needs the buffers' class-level
# annotations (``cache: torch.Tensor``) as objects, not strings.
import torch
from torch import nn

STREAM_BATCH = 64
LEVEL = 0.5**0.5  # a sine's RMS over its peak


def band_edges(sr: int, n_bands: int) -> torch.Tensor:
    """``n_bands + 1`` edges in Hz: 0, then octaves up to Nyquist."""
    nyquist = sr / 2
    low = nyquist / 2 ** (n_bands - 1)
    return torch.tensor([0.0] + [low * 2**i for i in range(n_bands)], dtype=torch.float32)


class Cache(nn.Module):
    """Holds the last latent frame of the previous call (streaming exports only)."""

    cache: torch.Tensor  # a buffer (STREAM_BATCH, latent_dims, 1)

    def __init__(self, latent_dims: int):
        super().__init__()
        self.register_buffer("cache", torch.full((STREAM_BATCH, latent_dims, 1), -3.0))


class SpectralEncoder(nn.Module):
    def __init__(self, sr: int, ratio: int, latent_dims: int, streaming: bool):
        super().__init__()
        self.ratio = ratio
        freqs = torch.arange(ratio // 2 + 1, dtype=torch.float32) * sr / ratio
        edges = band_edges(sr, latent_dims)
        masks = ((freqs[:, None] >= edges[None, :-1]) & (freqs[:, None] < edges[None, 1:])).float()
        masks[-1, -1] = 1.0  # Nyquist belongs to the top band
        self.bands = nn.Parameter(masks / masks.sum(0, keepdim=True).clamp(min=1.0))
        # Non-causal smoothing (previous, current, next frame); causal when streaming.
        kernel = torch.tensor([0.25, 0.5, 0.25]) if not streaming else torch.tensor([0.5, 0.5, 0.0])
        self.smooth = nn.Parameter(kernel.view(1, 1, 3).repeat(latent_dims, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, samples = x.shape[0], x.shape[-1]
        mono = x.mean(1)
        frames = (samples + self.ratio - 1) // self.ratio
        mono = nn.functional.pad(mono, [0, frames * self.ratio - samples])
        spec = torch.fft.rfft(mono.reshape(batch, frames, self.ratio), dim=-1)
        power = spec.real**2 + spec.imag**2
        power = power * (2.0 / self.ratio)
        energy = torch.matmul(power, self.bands)  # (batch, frames, latent_dims)
        z = torch.log(energy + 1e-6).transpose(1, 2)
        return nn.functional.conv1d(self.pad_frames(z), self.smooth, groups=z.shape[1])

    def pad_frames(self, z: torch.Tensor) -> torch.Tensor:
        # Replicate edges so a constant signal gives constant latents.
        return torch.cat([z[:, :, :1], z, z[:, :, -1:]], -1)


class StreamingSpectralEncoder(SpectralEncoder):
    """Causal smoothing whose previous frame comes from a cache buffer."""

    def __init__(self, sr: int, ratio: int, latent_dims: int):
        super().__init__(sr, ratio, latent_dims, streaming=True)
        self.smooth_cache = Cache(latent_dims)

    def pad_frames(self, z: torch.Tensor) -> torch.Tensor:
        batch = z.shape[0]
        prev = self.smooth_cache.cache[:batch].clone()
        with torch.no_grad():
            self.smooth_cache.cache[:batch] = z[:, :, -1:]
        return torch.cat([prev, z, torch.zeros_like(prev)], -1)


class NoiseDecoder(nn.Module):
    edges: torch.Tensor  # a buffer: band edges in Hz, (latent_dims + 1,)

    def __init__(self, sr: int, ratio: int, latent_dims: int):
        super().__init__()
        self.sr = sr
        self.ratio = ratio
        self.register_buffer("edges", band_edges(sr, latent_dims))
        self.gain = nn.Parameter(torch.ones(latent_dims))
        self.level = LEVEL
        # 1 keeps the output within +-1; an edited model (as users make) may turn it up.
        # A plain attribute, not a buffer, so the state_dict stays that of the plain vocoder.
        self.out_gain = 1.0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        batch, latent_dims, frames = z.shape
        samples = frames * self.ratio
        amp = torch.exp(0.5 * z.clamp(max=20.0)) * self.gain.view(1, -1, 1)
        amp = nn.functional.interpolate(amp, size=samples, mode="linear", align_corners=False)
        freqs = torch.arange(samples // 2 + 1, device=z.device, dtype=torch.float32) * self.sr / samples
        masks = (freqs[None, :] >= self.edges[:-1, None]) & (freqs[None, :] < self.edges[1:, None])
        spec = torch.fft.rfft(torch.randn(batch, 1, samples, device=z.device), dim=-1)
        bands = torch.fft.irfft(spec * masks.float()[None], n=samples, dim=-1)
        # Band noise with a sine's energy has the sine's peak as its standard
        # deviation, so peaks would reach 4x the input: scale to the input's RMS,
        # then limit softly so output within +-1 follows input within +-1 (nn~
        # plays it straight into the DAC).
        return self.finish(self.out_gain * torch.tanh(self.level * (bands * amp).sum(1, keepdim=True)))

    def finish(self, y: torch.Tensor) -> torch.Tensor:
        return y


class Delay(nn.Module):
    """Delays audio by ``samples`` through a cache that carries over from call to call."""

    cache: torch.Tensor  # a buffer (STREAM_BATCH, 1, samples)

    def __init__(self, samples: int):
        super().__init__()
        self.samples = samples
        self.register_buffer("cache", torch.full((STREAM_BATCH, 1, samples), 0.01))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        batch, n = y.shape[0], y.shape[-1]
        joined = torch.cat([self.cache[:batch], y], -1)
        with torch.no_grad():
            self.cache[:batch] = joined[..., joined.shape[-1] - self.samples:]
        return joined[..., :n]


class StreamingNoiseDecoder(NoiseDecoder):
    """The noise vocoder, ``latency`` samples late."""

    def __init__(self, sr: int, ratio: int, latent_dims: int, latency: int):
        super().__init__(sr, ratio, latent_dims)
        self.delay = Delay(latency)

    def finish(self, y: torch.Tensor) -> torch.Tensor:
        return self.delay(y)
