"""The floor of the throughput rows: the fastest this machine runs the bare model, found by search.

The model alone, warm, on audio already decoded and resampled in memory, is run in
every layout worth trying, and the fastest is the floor the tool rows are compared with:
  call length  seconds of audio per model call (plus the context chunked processing
               needs for exact output, measured on the model as ravekit does), or whole files;
  threads      torch threads per process;
  processes    worker processes sharing the files (each loads its own model).
Workers load the model and wait on a barrier, so loading is not timed; before each timed
pass they warm the model with one call of that length. They run TorchScript without its
optimizing executor, as ravekit does (never slower on RAVE exports, and no re-specialising
for each new input length). A pass's time is the wall time from
the barrier until the last worker is done. The search runs every call length in each
(threads, processes) layout, round after round, and keeps the median of each.

For cheap models the files, not the model, bind: reading, decoding MP3/FLAC and resampling
the same files (``file_decoding``, with as many processes as cores) is a floor of its own,
and an encode cannot beat the larger of the two.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

PY = sys.executable
ROOT = Path(__file__).resolve().parents[1]
CALL_SECONDS = (5.0, 10.0, 15.0, 30.0, 0.0)  # 0: whole files, one call each

WORKER = r'''
import math, sys, time, warnings
import numpy as np, torch
method, model, npz = sys.argv[1:4]
r, ectx, dctx, threads, k, n = (int(v) for v in sys.argv[4:10])
calls = [int(v) for v in sys.argv[10].split(",")]
torch.set_num_threads(threads)
warnings.filterwarnings("ignore", category=DeprecationWarning)
m = torch.jit.load(model).eval()
data = np.load(npz, allow_pickle=False)
items = [torch.from_numpy(data[key])[None] for key in sorted(data.files)][k::n]
call_model = m.encode if method == "encode" else m.decode

def windows(x, call):
    """Model inputs of `call` frames with context each side (whole when call is 0)."""
    unit = r if method == "encode" else 1
    ctx = ectx if method == "encode" else dctx
    length = math.ceil(x.shape[-1] / unit)
    step = call or length
    for s in range(0, length, step):
        w = x[..., max(0, s - ctx) * unit:min(length, s + step + ctx) * unit]
        if w.shape[-1] % unit:
            w = torch.nn.functional.pad(w, (0, unit - w.shape[-1] % unit))
        yield w

with torch.inference_mode(), torch.jit.optimized_execution(False):  # as ravekit runs the model
    if method == "decode":
        items = [m.encode(x) for x in items]
    print("loaded", flush=True)
    for line in sys.stdin:
        call = int(line)
        call_model(next(windows(items[0], call)))  # warm for this call length
        print("ready", flush=True)
        sys.stdin.readline()
        torch.manual_seed(0)
        t0 = time.time()
        for x in items:
            for w in windows(x, call):
                call_model(w)
        print(t0, time.time(), flush=True)
'''

READER = r'''
import sys, time
from pathlib import Path
from ravekit.io.audio import read_audio
from ravekit.io.channels import match_channels
sr, channels, k, n = (int(v) for v in sys.argv[1:5])
files = sorted(Path(p) for p in sys.argv[5:])[k::n]
print("loaded", flush=True)
for line in sys.stdin:
    print("ready", flush=True)
    sys.stdin.readline()
    t0 = time.time()
    for p in files:
        match_channels(read_audio(p, sr)[0], channels)
    print(t0, time.time(), flush=True)
'''


class Workers:
    """``processes`` copies of a worker script, stepped through timed passes together."""

    def __init__(self, argv_for, processes: int, threads: int = 1):
        env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        self.procs = [subprocess.Popen([PY, "-c", *argv_for(k)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       text=True, cwd=ROOT, env={**os.environ, **env})
                      for k in range(processes)]
        for p in self.procs:
            self._expect(p, "loaded")

    @staticmethod
    def _expect(p, word: str) -> str:
        line = p.stdout.readline().strip()
        if not line.startswith(word) and word:
            raise RuntimeError(f"benchmark worker stopped (exit {p.poll()}) instead of saying {word!r}")
        return line

    def _send(self, text: str) -> None:
        for p in self.procs:
            p.stdin.write(text + "\n")
            p.stdin.flush()

    def timed(self, setting: str = "0") -> float:
        """One pass: every worker gets ready, starts at the barrier; seconds until the last ends."""
        self._send(setting)
        for p in self.procs:
            self._expect(p, "ready")
        self._send("go")
        spans = [tuple(float(v) for v in self._expect(p, "").split()) for p in self.procs]
        return max(e for _, e in spans) - min(s for s, _ in spans)

    def close(self) -> None:
        for p in self.procs:
            p.stdin.close()
            p.wait()


def floor_facts(model: Path):
    """``(info, (encode, decode) context frames)`` of ``model``: what its floor workers need."""
    from ravekit.engine.chunks import measure_context
    from ravekit.engine.model import load_model

    m = load_model(model, "cpu", checksum=False)
    ctx = measure_context(m)
    return m.info, (ctx.encode or 0, ctx.decode or 0)


def call_frames(seconds: float, sr: int, ratio: int) -> int:
    return 0 if seconds == 0 else max(1, round(seconds * sr / ratio))


def model_workers(method: str, model: Path, npz: Path, ratio: int, context: tuple[int, int],
                  threads: int, processes: int) -> Workers:
    def argv_for(k: int) -> list[str]:
        return [WORKER, method, str(model), str(npz), str(ratio), str(context[0]), str(context[1]),
                str(threads), str(k), str(processes), "0"]
    return Workers(argv_for, processes, threads)


def layouts(cores: int) -> list[tuple[int, int]]:
    """(threads per process, processes) that fill ``cores`` cores."""
    return sorted({(t, cores // t) for t in range(1, cores + 1)})


def search(method: str, model: Path, npz: Path, sr: int, ratio: int, context: tuple[int, int],
           cores: int, rounds: int = 3) -> dict:
    """Median seconds of every (call seconds, threads, processes) on ``npz``, and the fastest.

    Returns ``{"best": (seconds, threads, processes), "times": {layout: median seconds}}``;
    a call length of 0 s stands for whole files.
    """
    times: dict[tuple[float, int, int], list[float]] = {}
    for threads, processes in layouts(cores):
        workers = model_workers(method, model, npz, ratio, context, threads, processes)
        try:
            for _ in range(rounds):
                for secs in CALL_SECONDS:
                    t = workers.timed(str(call_frames(secs, sr, ratio)))
                    times.setdefault((secs, threads, processes), []).append(t)
        finally:
            workers.close()
    medians = {key: statistics.median(v) for key, v in times.items()}
    return {"best": min(medians, key=medians.__getitem__), "times": medians}


def reader_workers(files: list[Path], sr: int, channels: int, processes: int) -> Workers:
    return Workers(lambda k: [READER, str(sr), str(channels), str(k), str(processes), *map(str, files)], processes)
