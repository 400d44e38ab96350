"""Running a model over signals of any length in bounded memory.

A RAVE encoder or decoder sees a limited neighbourhood around each frame (its
receptive field).  Long signals are cut into chunks of whole frames, each
processed with enough context on both sides that its interior equals
whole-signal processing; the context is measured on the model itself once,
at load (:func:`ravekit.engine.context.measure_context`).  Streaming exports instead carry state
between calls: their caches are reset for every signal and chunks are fed in
order, without context, and their fixed delay (:mod:`ravekit.engine.latency`) is
compensated: silence or the held last frame flushes it out, and as much is
dropped from the start.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from ravekit.choices import DEFAULT_CHUNK_SECONDS  # noqa: F401 (re-exported)
from ravekit.engine.context import Context, measure_context  # noqa: F401 (re-exported)
from ravekit.engine.model import RaveModel
from ravekit.engine.pool import Call, run_calls
from ravekit.seeds import chunk_seed


def chunk_frames_for(model: RaveModel, seconds: float) -> int:
    """Chunk length in whole latent frames for ``seconds`` of audio (at least one frame)."""
    return max(1, int(round(seconds * model.info.sr / model.info.ratio)))


def encode_blocks(model: RaveModel, blocks: Iterable[np.ndarray], seed: int | None = 0,
                  chunk: int = 512, context: int | None = 0, latency: int = 0,
                  progress: Callable[[float], None] | None = None) -> np.ndarray:
    """Encode a signal given as consecutive blocks, chunk by chunk.

    Parameters
    ----------
    blocks : iterable of float32 ``(channels, samples)`` arrays, in order.
    seed : the torch seed of chunk ``k`` is ``seeds.chunk_seed(seed, k)``, so results
        repeat bit for bit whichever process computes which chunk.
    chunk : frames produced per model call.
    context : frames of context each side (``measure_context``); ``None`` encodes whole.
    latency : frames a streaming export's latents come late (``latency.measure_latency``):
        that many frames of silence follow the signal and as many leading frames are dropped.
    progress : called after every model call with the seconds of audio it
        encoded; the calls of one signal sum to its duration.

    Returns
    -------
    float32 ``(1, latent_dims, ceil(samples / ratio))``
    """
    r = model.info.ratio
    model.reset_state()
    if context is None:
        chunk, context = 1 << 40, 0
    seen = _Seen()
    outs = []
    for k, z in enumerate(run_calls(model, "encode", _encode_calls(model, blocks, seed, chunk, context, latency,
                                                                   seen))):
        outs.append(z)
        if progress is not None:
            progress(seen.seconds[k])
    if seen.real == 0:
        raise ValueError("no audio samples")
    z = np.concatenate(outs, axis=-1)[None].astype(np.float32, copy=False)
    return z[..., latency:latency + math.ceil(seen.real / r)]


class _Seen:
    """What the chunking of a signal has seen so far: samples of signal, and each call's seconds of it."""

    def __init__(self) -> None:
        self.real = 0
        self.seconds: list[float] = []


def _encode_calls(model: RaveModel, blocks: Iterable[np.ndarray], seed: int | None, chunk: int, context: int,
                  latency: int, seen: _Seen) -> Iterator[Call]:
    """The model calls that encode a signal: each chunk's window with its context, its seed and what to keep.

    The grid depends on the model (ratio, context) and the signal only.
    """
    r = model.info.ratio
    hop, ctx = chunk * r, context * r
    pending: list[np.ndarray] = []  # samples from absolute index `held_from` to `total`
    held_from, total, done = 0, 0, 0

    def window(stop: int | None) -> Call:
        """The call for frames from `done` on, up to `chunk` of them (all that is left if stop is None)."""
        nonlocal held_from, done
        data = np.concatenate(pending, axis=1) if len(pending) > 1 else pending[0]
        start = max(0, done * r - ctx)
        x = data[:, start - held_from:None if stop is None else stop - held_from]
        if model.info.streaming and x.shape[1] % r:
            # Cached convolutions want whole frames; zeros equal the model's own end padding.
            x = np.pad(x, ((0, 0), (0, r - x.shape[1] % r)))
        skip = (done * r - start) // r
        keep = chunk if stop is not None else math.ceil(total / r) - done
        # Only the signal counts, not the silence that flushes a streaming model.
        end = seen.real if seen.real else total
        seen.seconds.append((min(end, (done + keep) * r) - min(end, done * r)) / model.info.sr)
        call = (np.ascontiguousarray(x), chunk_seed(seed, len(seen.seconds) - 1), (skip, skip + keep))
        done += keep
        drop = max(0, done * r - ctx)
        pending[:] = [data[:, drop - held_from:]]
        held_from = drop
        return call

    for block, signal in _then_silence(blocks, latency * r, model.info.n_channels):
        if block.shape[1]:
            pending.append(block)
            total += block.shape[1]
        seen.real = total if signal else seen.real
        while total >= done * r + hop + ctx:
            yield window(done * r + hop + ctx)
    if done < math.ceil(total / r):
        yield window(None)


def _then_silence(blocks: Iterable[np.ndarray], samples: int,
                  channels: int) -> Iterator[tuple[np.ndarray, bool]]:
    """``(block, True)`` for each block, then ``(zeros, False)`` for ``samples`` samples.

    Silence is what follows the end of a recording, so it is what flushes a
    streaming model's delayed frames out.
    """
    for block in blocks:
        yield block, True
    if samples > 0:
        yield np.zeros((channels, samples), np.float32), False


def encode_signal(model: RaveModel, x: np.ndarray, seed: int | None = 0, chunk: int | None = None,
                  context: int | None = 0, latency: int = 0) -> np.ndarray:
    """Encode a whole in-memory signal ``(channels, samples)`` -> ``(1, latent_dims, frames)``.

    With ``chunk=None`` the signal goes through the model in one call.
    """
    if chunk is None:
        return encode_blocks(model, [x], seed, context=None, latency=latency)
    return encode_blocks(model, [x], seed, chunk, context, latency)


def decode_chunks(model: RaveModel, z: np.ndarray, seed: int | None = 0, chunk: int = 512,
                  context: int | None = 0, latency: int = 0,
                  progress: Callable[[float], None] | None = None) -> Iterator[np.ndarray]:
    """Decode latents ``(1, latent_dims, frames)`` chunk by chunk.

    Yields float32 ``(target_channels, n)`` blocks that join into
    ``frames * ratio`` samples; only one chunk of audio is in memory at once.
    ``latency`` is the samples a streaming export's audio comes late
    (``latency.measure_latency``): they are dropped from the start, and the
    last frame is held long enough to flush as many out at the end.
    ``progress`` is called after every model call with the seconds of audio
    it decoded (``frames * ratio / sr`` in all).
    """
    if latency <= 0:
        yield from _decode_chunks(model, z, seed, chunk, context, progress)
        return
    r, frames = model.info.ratio, z.shape[-1]
    # Holding the last frame continues the sound as it was; zeros (or any
    # other value) would be a new sound whose onset leaks into the kept end.
    extra = math.ceil(latency / r)
    held = np.concatenate([z, np.repeat(z[..., -1:], extra, axis=-1)], axis=-1)
    skip, left = latency, frames * r
    for y in _decode_chunks(model, held, seed, chunk, context):
        drop = min(skip, y.shape[1])
        skip -= drop
        y = y[:, drop:drop + left]
        if y.shape[1]:
            left -= y.shape[1]
            if progress is not None:
                progress(y.shape[1] / model.info.sr)
            yield y
        if left <= 0:
            return


def _decode_chunks(model: RaveModel, z: np.ndarray, seed: int | None, chunk: int, context: int | None,
                   progress: Callable[[float], None] | None = None) -> Iterator[np.ndarray]:
    r, frames = model.info.ratio, z.shape[-1]
    model.reset_state()
    if context is None:
        chunk, context = frames, 0
    starts = range(0, frames, chunk)
    for start, y in zip(starts, run_calls(model, "decode", _decode_calls(model, z, seed, chunk, context))):
        if progress is not None:
            progress((min(frames, start + chunk) - start) * r / model.info.sr)
        yield y


def _decode_calls(model: RaveModel, z: np.ndarray, seed: int | None, chunk: int, context: int) -> Iterator[Call]:
    """The model calls that decode latents: each chunk's window with context and noise rows, seed, what to keep."""
    r, frames = model.info.ratio, z.shape[-1]
    z = np.ascontiguousarray(z, dtype=np.float32)
    # A discrete model decodes its code dims only (docs/rave-exports.md): noise rows for it would be work for nothing.
    missing = 0 if model.info.discrete else model.info.decode_dims - z.shape[1]
    noise = NoiseRows(missing, seed) if missing > 0 else None
    for k, start in enumerate(range(0, frames, chunk)):
        stop = min(frames, start + chunk)
        lo, hi = max(0, start - context), min(frames, stop + context)
        window = z[0, :, lo:hi]
        if noise is not None:
            window = np.concatenate([window, noise.window(lo, hi).T], axis=0)
        yield np.ascontiguousarray(window), chunk_seed(seed, k), ((start - lo) * r, (stop - lo) * r)


class NoiseRows:
    """Standard normal values for the latent dims a file leaves out, frame by frame.

    RAVE fills missing dims with fresh noise on every decode call.  Drawn here
    frame after frame from one seeded generator instead, every frame gets the
    same values whatever the chunking (no seams where chunks meet), and only
    the current window is held, not the whole file.
    """

    def __init__(self, dims: int, seed: int | None):
        self.dims = dims
        self._rng = np.random.default_rng(seed)
        self._start = 0
        self._rows = np.empty((0, dims), dtype=np.float32)

    def window(self, lo: int, hi: int) -> np.ndarray:
        """Rows ``lo:hi``, float32 ``(hi - lo, latent_dims)`` for the missing dims; ``lo`` may only move forward."""
        end = self._start + len(self._rows)
        if hi > end:
            fresh = self._rng.standard_normal((hi - end, self.dims), dtype=np.float32)
            self._rows = np.concatenate([self._rows, fresh])
        self._rows = self._rows[lo - self._start:]
        self._start = lo
        return self._rows[:hi - lo]


def decode_latents(model: RaveModel, z: np.ndarray, seed: int | None = 0, chunk: int | None = None,
                   context: int | None = 0, latency: int = 0) -> np.ndarray:
    """Decode latents ``(1, latent_dims, frames)`` -> float32 ``(target_channels, frames * ratio)``."""
    if chunk is None:
        return np.concatenate(list(decode_chunks(model, z, seed, context=None, latency=latency)), axis=1)
    return np.concatenate(list(decode_chunks(model, z, seed, chunk, context, latency)), axis=1)
