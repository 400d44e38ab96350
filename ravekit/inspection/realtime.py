"""``inspector.py --realtime``: will this model keep up in nn~ on this machine?

nn~ calls a method on one buffer of ``BUFFER`` samples while the next buffer
fills (docs/rave-exports.md), so a call has one buffer's duration to finish:
one later call is a dropout.  This measures, per method nn~ can call
(``forward``, ``encode``, ``decode``) and per buffer size, warm calls of the
shape nn~ uses, ``(1, in_channels, BUFFER / in_ratio)`` in inference mode, on
the thread count given, and reports:

- the real-time factor, call time over buffer duration (below 1 keeps up),
  for the median call and the worst one;
- the headroom: how many such models one core runs side by side
  (buffer duration over median call time, per thread used);
- a verdict: the smallest buffer from which every larger one tried keeps up
  on the worst call, or none.

A streaming export's caches carry from call to call, as in nn~; a
non-streaming export is timed the same way (its clicks are
``decoder.py --live``'s business).  Timing values depend on the machine and
its load: run it where the patch will play, with nothing else busy.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ravekit.engine.live import Live, check_live
from ravekit.engine.model import RaveModel, load_model, quiet_jit
from ravekit.errors import RavekitError

METHODS = ("forward", "encode", "decode")
DEFAULT_BUFFERS = (1024, 2048, 4096, 8192)
WARM_CALLS = 3  # TorchScript's profiling executor settles after its first calls, as in nn~
MIN_CALLS = 8  # enough for a worst call to mean something at the largest buffer


@dataclass
class BufferTiming:
    """One method at one buffer size: times in milliseconds."""

    buffer: int
    calls: int
    buffer_ms: float
    median_ms: float
    worst_ms: float
    rtf: float  # median call / buffer duration
    rtf_worst: float
    headroom: float  # models of this kind one core runs at this buffer (median, per thread)
    keeps_up: bool  # the worst call finished within the buffer


@dataclass
class MethodTiming:
    method: str
    buffers: list[BufferTiming] = field(default_factory=list)
    plays_from: int | None = None  # the smallest buffer from which every larger one tried keeps up
    verdict: str = ""


def _shape(model: RaveModel, method: str, buffer: int) -> tuple[int, int]:
    """``(in_channels, frames)`` of nn~'s call: from the method's ``*_params`` buffer when the export has one."""
    m = model.info
    params = getattr(model.module, f"{method}_params", None)
    if isinstance(params, torch.Tensor) and params.numel() == 4:
        channels, ratio = int(params[0]), int(params[1])
        return channels, buffer // max(1, ratio)
    if method == "decode":
        return m.latent_size, buffer // m.ratio
    return m.n_channels, buffer


def _input(model: RaveModel, method: str, buffer: int, gen: torch.Generator) -> torch.Tensor:
    channels, frames = _shape(model, method, buffer)
    if method == "decode":
        if model.info.discrete:  # codes every codebook holds
            return torch.randint(0, 8, (1, channels, frames), generator=gen).float()
        return torch.randn(1, channels, frames, generator=gen)
    return 0.1 * torch.randn(1, channels, frames, generator=gen)


def time_method(model: RaveModel, method: str, buffer: int, seconds: float, threads: int) -> BufferTiming:
    """Warm calls of ``method`` on buffers of ``buffer`` samples, about ``seconds`` of audio of them."""
    m = model.info
    call = getattr(model.module, method)
    gen = torch.Generator().manual_seed(0)
    buffer_s = buffer / m.sr
    calls = max(MIN_CALLS, math.ceil(seconds / buffer_s))
    times = []
    model.reset_state()
    with torch.inference_mode(), quiet_jit():
        for k in range(WARM_CALLS + calls):
            x = _input(model, method, buffer, gen)
            start = time.perf_counter()
            call(x)
            if k >= WARM_CALLS:
                times.append(time.perf_counter() - start)
    model.reset_state()
    median, worst = statistics.median(times), max(times)
    return BufferTiming(buffer=buffer, calls=calls, buffer_ms=1000 * buffer_s, median_ms=1000 * median,
                        worst_ms=1000 * worst, rtf=median / buffer_s, rtf_worst=worst / buffer_s,
                        headroom=buffer_s / (median * threads), keeps_up=worst < buffer_s)


def verdict(method: str, timings: list[BufferTiming]) -> tuple[int | None, str]:
    """The smallest buffer from which every larger one tried keeps up, and the line that says it."""
    ordered = sorted(timings, key=lambda t: t.buffer)
    plays_from = None
    for t in reversed(ordered):
        if not t.keeps_up:
            break
        plays_from = t.buffer
    if plays_from is None:
        best = min(ordered, key=lambda t: t.rtf_worst)
        why = ("the median call keeps up, the worst ones wait: the machine is busy, or the threads are more than "
               "the free cores (try --threads 1; OMP_NUM_THREADS=1 for Pd)") if best.rtf < 1 else \
            "even the median call is too slow: a larger buffer, or a smaller model"
        return None, (f"{method}: does not play live on this machine at any buffer tried (best: worst call "
                      f"{best.rtf_worst:.2f} x the buffer at {best.buffer}); {why}")
    at = next(t for t in ordered if t.buffer == plays_from)
    return plays_from, (f"{method}: plays live at buffer {plays_from} and up (worst call {100 * at.rtf_worst:.0f} % "
                        f"of the buffer, about {math.floor(at.headroom)} such models per core)")


def measure(model: RaveModel, buffers: list[int], seconds: float, threads: int) -> list[MethodTiming]:
    """Time every method nn~ can call on ``model`` at each buffer size; refuses (exit 2) a buffer nn~ cannot use."""
    methods = [name for name in METHODS if name in (model.info.methods or METHODS) and hasattr(model.module, name)]
    if not methods:
        raise RavekitError(f"{model.info.path}: the model has none of nn~'s methods ({', '.join(METHODS)}); "
                           "use a model exported by `rave export`", 2)
    for b in buffers:
        check_live(Live(b), model.info, (), flag="--buffer")
    torch.set_num_threads(threads)
    results = []
    for method in methods:
        found = MethodTiming(method, [time_method(model, method, b, seconds, threads) for b in buffers])
        found.plays_from, found.verdict = verdict(method, found.buffers)
        results.append(found)
    return results


def to_json(model: RaveModel, results: list[MethodTiming], threads: int, seconds: float) -> dict:
    m = model.info
    return {"model": str(m.path), "streaming": m.streaming, "sr": m.sr, "ratio": m.ratio, "threads": threads,
            "seconds": seconds, "methods": {r.method: {"plays_from": r.plays_from, "verdict": r.verdict,
                                                       "buffers": [asdict(t) for t in r.buffers]} for r in results}}


def to_text(model: RaveModel, results: list[MethodTiming], threads: int) -> str:
    m = model.info
    kind = "streaming export" if m.streaming else "non-streaming export (nn~ clicks at every buffer)"
    lines = [f"{Path(m.path).name}: {kind}, {m.sr} Hz, ratio {m.ratio}, {threads} thread"
             f"{'s' if threads > 1 else ''}, warm calls",
             f"{'method':<8} {'buffer':>6} {'ms/buffer':>9} {'median ms':>9} {'worst ms':>9} {'RTF':>6} "
             f"{'RTF worst':>9} {'per core':>8}  keeps up"]
    for r in results:
        for t in r.buffers:
            lines.append(f"{r.method:<8} {t.buffer:>6} {t.buffer_ms:>9.1f} {t.median_ms:>9.2f} {t.worst_ms:>9.2f} "
                         f"{t.rtf:>6.3f} {t.rtf_worst:>9.3f} {t.headroom:>8.1f}  {'yes' if t.keeps_up else 'NO'}")
    lines += ["verdict:"] + [f"  {r.verdict}" for r in results]
    return "\n".join(lines)


def run_realtime(path: Path, buffers: list[int] | None, seconds: float, threads: int | None) -> tuple[dict, str]:
    """Load ``path`` and measure it: its JSON document and its text table.

    ``buffers`` None tries those of :data:`DEFAULT_BUFFERS` that are multiples of the model's ratio;
    ``threads`` None keeps torch's own count (what nn~ gets).
    """

    model = load_model(path, "cpu", checksum=False)
    threads = threads or torch.get_num_threads()
    r = model.info.ratio
    # Given buffers are checked (a wrong one is refused); of the defaults, those nn~ can use with this model.
    buffers = buffers or [b for b in DEFAULT_BUFFERS if b % r == 0] or [r, 2 * r, 4 * r]
    results = measure(model, buffers, seconds, threads)
    return to_json(model, results, threads, seconds), to_text(model, results, threads)
