"""The fixed delay of a streaming export, measured on the model itself.

A streaming export (cached convolutions) computes what the non-streaming
export of the same weights computes, later: each convolution's look-ahead
becomes a delay.  Decoding with the streaming and the non-streaming export of
one RAVE v2 model gives the same audio shifted by 12,512 samples
(docs/rave-exports.md).  Left alone, the decoded audio starts late and trimming
to the source's length cuts its end off.

The delay is measured, not read: the streaming file is all a user has.  One
input frame is perturbed in a probe signal (as :mod:`ravekit.engine.chunks`
measures the chunk context) and the span of the output that changes is
found.  A non-streaming model's span is centred on the perturbed frame
(centred padding); a streaming model's is the same span, delayed.  So the
latency is how far the span's centre lies after the perturbed frame's centre.
It is exact for models whose receptive field is symmetric.  Real exports'
receptive fields are nearly so: the same measurement on aligned
(non-streaming) exports lands within about 130 samples (3 ms) of the frame
centre.  On the real v2 streaming export it gives 12,524 decode samples
against the 12,512 its non-streaming twin shows, and 7 encode frames against
6.94 (14,208 samples).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import torch

from ravekit.engine.context import _same_draws, latent_probe, widening_probe
from ravekit.engine.model import RaveModel
from ravekit.engine.probes import cached


@dataclass
class Latency:
    """How late a model's output is: ``encode`` in latent frames, ``decode`` in audio samples."""

    encode: int = 0
    decode: int = 0


def _affected(a: torch.Tensor, b: torch.Tensor) -> tuple[int, int] | None:
    """First and last index along the last axis where ``a`` and ``b`` differ at all.

    Lower than the chunk-context threshold: the response's faint tails count,
    or the span's centre moves with the probe's loudness.
    """
    diff = (a - b).abs().amax(dim=tuple(range(a.dim() - 1)))
    idx = torch.nonzero(diff > 1e-9 * max(float(a.abs().max()), 1.0)).flatten()
    return (int(idx[0]), int(idx[-1])) if len(idx) else None


def _round_down_half(x: float) -> int:
    # Exactly half a frame (or sample) of delay is left alone rather than over-compensated.
    return max(0, math.ceil(x - 0.5))


def _encode_latency(model: RaveModel, frames: int) -> int | None:
    r, ch = model.info.ratio, model.info.n_channels
    gen = torch.Generator().manual_seed(0)
    x = 0.1 * torch.randn(1, ch, frames * r, generator=gen)
    f = frames // 4  # early: a streaming model's response lies after the perturbed frame
    y = x.clone()
    y[..., f * r:(f + 1) * r] += 0.1 * torch.randn(1, ch, r, generator=gen)
    span = _affected(*_same_draws(model, model.encode, x, y))
    if span is None:
        return 0
    if span[1] >= frames - 1:
        return None  # the response reaches the probe's end: look wider
    return _round_down_half((span[0] + span[1]) / 2 - f)


def _decode_latency(model: RaveModel, frames: int) -> int | None:
    r = model.info.ratio
    f = frames // 4
    z, w = latent_probe(model, frames, f)
    span = _affected(*_same_draws(model, model.decode, z, w))
    if span is None:
        return 0
    if span[1] >= frames * r - 1:
        return None
    return _round_down_half((span[0] + span[1] + 1) / 2 - (f * r + r / 2))


def measure_latency(model: RaveModel, parts: tuple[str, ...] = ("encode", "decode")) -> Latency:
    """Measure a streaming export's encode and decode latency; ``Latency(0, 0)`` for the others.

    ``parts`` names what to measure (the others stay 0), so a run pays only for its own.

    Non-streaming exports see both sides of every frame and are aligned.  A
    model that refuses the probe, or whose response outruns
    ``MAX_PROBE_FRAMES``, is taken as aligned (the previous behaviour).
    """
    if not model.info.streaming:
        return Latency()

    def measure(probe) -> int:
        found = widening_probe(model, probe) or 0
        model.reset_state()
        return found

    return Latency(*[(cached(model, f"latency.{part}", partial(measure, probe)) or 0) if part in parts else 0
                     for part, probe in (("encode", _encode_latency), ("decode", _decode_latency))])
