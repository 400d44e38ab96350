"""How much context a chunk needs: the model's receptive field, measured on the model itself.

One frame of a probe signal is perturbed and the extent of the output that
changes is the receptive field (:func:`measure_context`); the same probes,
placed early in the signal, give a streaming export's latency
(:mod:`ravekit.engine.latency`).  Answers are kept per model in the probe
cache (:mod:`ravekit.engine.probes`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ravekit.engine.model import RaveModel
from ravekit.engine.probes import cached

PROBE_FRAMES = 32
MAX_PROBE_FRAMES = 1024


@dataclass
class Context:
    """Frames of context each side that make chunked processing exact (``None``: unbounded)."""

    encode: int | None
    decode: int | None


def _affected(a: torch.Tensor, b: torch.Tensor) -> tuple[int, int] | None:
    """First and last index along the last axis where ``a`` and ``b`` differ noticeably."""
    diff = (a - b).abs().amax(dim=tuple(range(a.dim() - 1)))
    # Far below the 1e-4 exactness promised for chunking, far above float noise;
    # relative to the output's own scale, which is ~0.03 for quiet models
    # (an absolute floor missed tails that a discrete export's decoder feels).
    tol = 1e-7 * float(a.abs().max())
    idx = torch.nonzero(diff > tol).flatten()
    if not len(idx):
        return None
    return int(idx[0]), int(idx[-1])


def _same_draws(model: RaveModel, call, *inputs: torch.Tensor) -> list[torch.Tensor]:
    """``call`` on each input from the same state and seed, so only the inputs differ."""
    outs = []
    for x in inputs:
        model.reset_state()
        torch.manual_seed(0)
        outs.append(call(x))
    return outs


def _probe_encode(model: RaveModel, frames: int) -> int | None:
    r, ch = model.info.ratio, model.info.n_channels
    gen = torch.Generator().manual_seed(0)
    x = 0.1 * torch.randn(1, ch, frames * r, generator=gen)
    centre = frames // 2
    y = x.clone()
    y[..., centre * r:(centre + 1) * r] += 0.1 * torch.randn(1, ch, r, generator=gen)
    outs = _same_draws(model, model.encode, x, y)
    span = _affected(*outs)
    if span is None:
        return 0
    lo, hi = span
    if lo == 0 or hi >= outs[0].shape[-1] - 1:
        return None  # reaches the probe's edges: look wider
    return max(centre - lo, hi - centre)


def latent_probe(model: RaveModel, frames: int, at: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents ``(1, latent_dims, frames)`` the model encoded itself, and a copy with frame ``at`` changed.

    Self-made latents are valid codes for discrete models too; the change
    copies an earlier frame's values (a code of the model's own), or adds 1
    where that frame happens to equal it.
    """
    gen = torch.Generator().manual_seed(0)
    model.reset_state()
    torch.manual_seed(0)
    z = model.encode(0.1 * torch.randn(1, model.info.n_channels, frames * model.info.ratio, generator=gen)).cpu()
    w = z.clone()
    w[..., at] = z[..., at // 2]
    if torch.equal(w, z):
        w[..., at] += 1.0
    return z, w


def _probe_decode(model: RaveModel, frames: int) -> int | None:
    r = model.info.ratio
    centre = frames // 2
    z, w = latent_probe(model, frames, centre)
    span = _affected(*_same_draws(model, model.decode, z, w))
    if span is None:
        return 0
    lo, hi = span[0] // r, span[1] // r
    if lo == 0 or hi >= frames - 1:
        return None
    return max(centre - lo, hi - centre)


def widening_probe(model: RaveModel, probe) -> int | None:
    """``probe(model, frames)`` on probe signals of doubling length until it answers.

    ``probe`` returns None when the response reaches the probe's edges (look
    wider); past ``MAX_PROBE_FRAMES``, or when the model refuses the probe, the
    answer is None.
    """
    frames = PROBE_FRAMES
    while frames <= MAX_PROBE_FRAMES:
        try:
            found = probe(model, frames)
        except (RuntimeError, ValueError):
            return None
        if found is not None:
            return found
        frames *= 2
    return None


def measure_context(model: RaveModel, parts: tuple[str, ...] = ("encode", "decode")) -> Context:
    """Measure, on the model itself, how many frames of context chunks need.

    One frame of the input (audio for encode, latents for decode) is perturbed
    in the middle of a probe signal, and the extent of the output that changes
    is the receptive field.  One frame of margin is added each side.  Models
    whose influence reaches past ``MAX_PROBE_FRAMES`` get ``None`` (process
    whole).  Streaming exports need no context.  ``parts`` names what to
    measure (the others are left ``None``), so a run pays only for its own.
    Answers are kept per model in the probe cache (:mod:`ravekit.engine.probes`).
    """
    if model.info.streaming:
        return Context(0, 0)
    found = {}
    for part, probe in (("encode", _probe_encode), ("decode", _probe_decode)):
        if part not in parts:
            continue

        def measure(probe=probe) -> int | None:
            # None (a model that refuses the probe, or reaches too far) is processed whole: slower, never wrong.
            ctx = widening_probe(model, probe)
            model.reset_state()
            return None if ctx is None else ctx + 1

        found[part] = cached(model, f"context.{part}", measure)
    return Context(found.get("encode"), found.get("decode"))
