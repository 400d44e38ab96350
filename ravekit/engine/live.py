"""Running a model as nn~ runs it in Pure Data and Max: ``--live BUFFER``.

What nn~ does (measured with the real external, docs/rave-exports.md):

- it calls the model on buffers of ``BUFFER`` samples (4096 by default),
  shape ``(1, in_channels, BUFFER / in_ratio)``;
- a streaming export's caches carry from call to call; a non-streaming
  export pads every buffer with zeros on both sides, so its output jumps at
  every buffer boundary (a click);
- a latent signal (``decode``'s input) is read at the last sample of each
  block of ``ratio`` samples, and a latent output is step-held;
- its output is ``2 * BUFFER - 64`` samples late (two buffers less one Pd
  block, :func:`nn_latency`), and a streaming export adds its own delay.

The functions here render a file that way, so what is heard offline is what
the patch will play.  The patch's output, recorded from DSP start while the
file plays and silence (or the held last latent frame) follows, is the
``kept`` render: it starts with the whole delay and lasts that much longer
than the offline render.  ``trimmed`` drops the whole delay (nn~'s and the
model's), so the render lines up with the source and the offline render.

Two choices where nn~ has none: a streaming export's caches are zeroed at the
start of every file (nn~ starts from whatever state the export shipped with,
so a patch's first buffers can differ slightly), and torch is seeded once per
file (nn~ seeds nothing), so a render repeats for a seed.  Latent dims a file
leaves out get the same seeded noise rows as the offline decode
(``chunks.NoiseRows``), so live and offline renders differ only by what nn~ does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from ravekit.engine.chunks import NoiseRows
from ravekit.engine.model import ModelInfo, RaveModel
from ravekit.errors import RavekitError

PD_BLOCK = 64  # Pd's default block (Max's signal vector size plays its part)
LATENCIES = ("keep", "trim")


def nn_latency(buffer: int, block: int = PD_BLOCK) -> int:
    """nn~'s own delay in samples: the buffer being filled, the one being computed, less one Pd block."""
    return 2 * buffer - block


@dataclass(frozen=True)
class Live:
    """How to render like nn~: its buffer in samples, and whether the delay is kept or trimmed."""

    buffer: int
    latency: str = "keep"

    @property
    def keep(self) -> bool:
        return self.latency == "keep"

    def record(self) -> dict:
        """What a sidecar or record says of a live render (resume compares it)."""
        return {"buffer": self.buffer, "latency": self.latency, "pd_block": PD_BLOCK,
                "nn_latency_samples": nn_latency(self.buffer)}


def check_live(live: Live, info: ModelInfo, methods: Iterable[str] = ("encode", "decode"),
               flag: str = "--live") -> None:
    """Refuse (exit 2) a buffer nn~ cannot use with this model, or a model without a method nn~ would call.

    The buffer must be a positive multiple of the model's ratio: nn~ calls
    ``decode`` on ``BUFFER / ratio`` frames.
    """
    from pathlib import Path

    name = Path(info.path).name
    if live.buffer <= 0 or live.buffer % info.ratio:
        good = info.ratio * max(1, round(4096 / info.ratio))
        raise RavekitError(f"{flag} {live.buffer}: {name} needs a buffer that is a positive multiple of its "
                           f"compression ratio {info.ratio} (nn~'s default is 4096); e.g. {flag} {good}", 2)
    if live.latency not in LATENCIES:
        raise RavekitError(f"--live_latency {live.latency}: give one of {', '.join(LATENCIES)}", 2)
    for method in methods:
        if info.methods and method not in info.methods:
            raise RavekitError(f"{flag}: {name} has no {method} method nn~ could call (it lists "
                               f"{', '.join(info.methods)}); use a model exported by `rave export`", 2)


@dataclass
class Jumps:
    """The largest sample-to-sample jump of a live render at buffer boundaries, and for scale the typical
    step within buffers (the median over calls of each call's median absolute step)."""

    boundary: float = 0.0
    at: int | None = None  # output sample index of the largest boundary jump
    steps: list[float] = field(default_factory=list)  # each call's median absolute step

    @property
    def interior(self) -> float:
        return float(np.median(self.steps)) if self.steps else 0.0

    def warning(self, name: str, buffer: int) -> str:
        times = f", {self.boundary / self.interior:.0f} times the median step within buffers ({self.interior:.2g})" \
            if self.interior > 0 else ""
        return (f"{name}: a non-streaming export restarts from zero padding in every nn~ buffer, so the patch "
                f"clicks every {buffer} samples: largest jump at a buffer boundary {self.boundary:.4g} (sample "
                f"{self.at}){times}; a streaming export (`rave export --streaming`) carries its state across "
                "buffers")


def _calls(model: RaveModel, method: str, chunks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """One model call per chunk, ``(channels, n)`` -> ``(out_channels, m)``, in order: nn~'s block loop."""
    call = model.encode if method == "encode" else model.decode
    for x in chunks:
        yield call(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None])[0].cpu().numpy()


def _rebuffer(blocks: Iterable[np.ndarray], size: int, channels: int, flush: int) -> Iterator[np.ndarray]:
    """Blocks of any length -> blocks of exactly ``size`` samples, then ``flush`` samples of silence
    (what follows a recording, flushing a streaming model's delayed output), zero-padded to whole buffers."""
    pending = np.zeros((channels, 0), np.float32)
    for block in _with_silence(blocks, channels, flush):
        pending = np.concatenate([pending, block], axis=1)
        while pending.shape[1] >= size:
            yield pending[:, :size]
            pending = pending[:, size:]
    if pending.shape[1]:
        yield np.pad(pending, ((0, 0), (0, size - pending.shape[1])))


def _with_silence(blocks: Iterable[np.ndarray], channels: int, samples: int) -> Iterator[np.ndarray]:
    yield from blocks
    if samples > 0:
        yield np.zeros((channels, samples), np.float32)


def live_encode(model: RaveModel, blocks: Iterable[np.ndarray], live: Live, seed: int | None = 0,
                latency: int = 0, tail: int = 0) -> np.ndarray:
    """Encode audio blocks ``(n_channels, n)`` as ``[nn~ MODEL encode BUFFER]`` does.

    ``latency`` is the model's own encode delay in frames (a streaming export's,
    ``latency.measure_latency``).  Returns float32 ``(1, latent_size, frames)``:
    the frames a downstream ``[nn~ ... decode]`` reads from the step-held output
    (its last sample of each ``ratio`` block).  Trimmed, ``frames`` is
    ``ceil(samples / ratio)`` and frame ``i`` covers source samples from
    ``i * ratio``, as offline; kept, the frames of the whole delay come first.
    ``tail`` more frames follow: the encoding of the silence after the signal,
    which a downstream ``[nn~ ... decode]`` gets in its last buffers.
    Raises ``ValueError("no audio samples")`` for an empty signal.
    """
    r, n_ch = model.info.ratio, model.info.n_channels
    seen = {"samples": 0}

    def counted() -> Iterator[np.ndarray]:
        for block in blocks:
            seen["samples"] += block.shape[1]
            yield block

    model.reset_state()
    if seed is not None:
        torch.manual_seed(seed)
    outs = list(_calls(model, "encode", _rebuffer(counted(), live.buffer, n_ch, (latency + tail) * r)))
    if seen["samples"] == 0:
        raise ValueError("no audio samples")
    z = np.concatenate(outs, axis=-1)
    frames = math.ceil(seen["samples"] / r) + tail
    if not live.keep:
        return z[None, :, latency:latency + frames].astype(np.float32, copy=False)
    # The output, late by nn_latency and step-held, read at the last sample of each ratio block.
    late = math.ceil(max(0, nn_latency(live.buffer) - r + 1) / r)
    held = np.concatenate([np.zeros((z.shape[0], late), np.float32), z[:, :latency + frames]], axis=1)
    return held[None].astype(np.float32, copy=False)


def live_delay_frames(info: ModelInfo, live: Live, latency: int = 0) -> int:
    """Frames by which :func:`live_encode`'s output is late (0 when trimmed)."""
    if not live.keep:
        return 0
    return math.ceil(max(0, nn_latency(live.buffer) - info.ratio + 1) / info.ratio) + latency


def live_decode(model: RaveModel, z: np.ndarray, live: Live, seed: int | None = 0, latency: int = 0,
                samples: int | None = None, jumps: Jumps | None = None,
                progress: Callable[[float], None] | None = None) -> Iterator[np.ndarray]:
    """Decode latents ``(1, dims, frames)`` as ``[nn~ MODEL decode BUFFER]`` does, fed each frame step-held.

    Parameters
    ----------
    latency : the model's own decode delay in samples (a streaming export's).
    samples : the audio the render covers (the source's length); default ``frames * ratio``.
    jumps : filled with the largest jumps at buffer boundaries and within buffers.
    progress : called after every model call with the seconds of audio it rendered.

    Yields float32 ``(target_channels, n)`` blocks: ``samples`` plus the whole
    delay when it is kept (nn~'s silence first), ``samples`` when trimmed.
    Dims beyond ``latent_size`` are left out (nn~ has that many inlets); the
    missing ones get seeded noise rows, as offline.
    """
    m = model.info
    r, per_call = m.ratio, live.buffer // m.ratio
    z = np.asarray(z, np.float32)[0, :m.latent_size]
    n = z.shape[1] * r if samples is None else samples
    # Enough calls for the model's delay and the render; later frames hold the last one, as offline.
    calls = math.ceil(math.ceil((latency + n) / r) / per_call)
    total = calls * per_call
    if total > z.shape[1]:
        z = np.concatenate([z, np.repeat(z[:, -1:], total - z.shape[1], axis=1)], axis=1)
    missing = 0 if m.discrete else m.decode_dims - z.shape[0]
    noise = NoiseRows(missing, seed) if missing > 0 else None

    def windows() -> Iterator[np.ndarray]:
        for k in range(calls):
            w = z[:, k * per_call:(k + 1) * per_call]
            if noise is not None:
                w = np.concatenate([w, noise.window(k * per_call, (k + 1) * per_call).T], axis=0)
            yield w

    model.reset_state()
    if seed is not None:
        torch.manual_seed(seed)
    if live.keep:
        start, stop = 0, latency + n
        yield np.zeros((m.target_channels, nn_latency(live.buffer)), np.float32)
    else:
        start, stop = latency, latency + n
    shift = nn_latency(live.buffer) if live.keep else -latency  # model-output index -> render index
    last: np.ndarray | None = None
    for k, y in enumerate(_calls(model, "decode", windows())):
        lo, hi = k * live.buffer, (k + 1) * live.buffer
        if jumps is not None:
            _measure(jumps, y, last, lo, start, stop, shift)
        last = y[:, -1]
        piece = y[:, max(0, start - lo):max(0, min(hi, stop) - lo)]
        if progress is not None:
            progress(piece.shape[1] / m.sr)
        if piece.shape[1]:
            yield piece


def _measure(jumps: Jumps, y: np.ndarray, last: np.ndarray | None, lo: int, start: int, stop: int,
             shift: int) -> None:
    """Update ``jumps`` with call output ``y`` starting at model-output sample ``lo`` (only what is rendered)."""
    a, b = max(0, start - lo), min(y.shape[1], stop - lo)
    if b - a > 1:
        jumps.steps.append(float(np.median(np.abs(np.diff(y[:, a:b], axis=1)))))
    if last is not None and start < lo < stop:
        jump = float(np.abs(y[:, 0] - last).max())
        if jumps.at is None or jump > jumps.boundary:
            jumps.boundary, jumps.at = jump, lo + shift
