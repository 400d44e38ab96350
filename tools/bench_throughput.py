"""Throughput and fixed-cost rows of the benchmark: the tools with their defaults against the best floor.

For each model, over the 12 one-minute files:
  search       the bare model's fastest layout (call length, threads, processes) on in-memory
               audio, warm (tools/bench_floor.py), on four of the files;
  floor        a plain script's cost in that layout: starting Python, importing torch and loading
               the model (paid by every process, side by side), plus the warm model's time on all
               12 files; for encoding, at least the time reading, decoding and resampling the
               files takes with one process per core (the files bind, not the model, when the
               model is cheap);
  tool         encoder.py / decoder.py with no tuning flags (whole process, start to exit);
  fixed costs  one 5-second file: encoder.py against a minimal script that imports torch, loads
               the model, reads the file, encodes it and saves the array; and what the probes
               cost on a first run (empty cache) against later runs.
Tool and floor runs are interleaved round by round and their medians compared.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from tools.bench_common import BENCH, ENV, PY, in_memory, wall
from tools.bench_floor import call_frames, floor_facts, model_workers, reader_workers, search

START = r'''
import sys, warnings, torch
warnings.filterwarnings("ignore", category=DeprecationWarning)
torch.jit.load(sys.argv[1]).eval()
'''

MINIMAL = r'''
import sys, warnings, numpy as np, soundfile as sf, torch
warnings.filterwarnings("ignore", category=DeprecationWarning)
m = torch.jit.load(sys.argv[1]).eval()
x, sr = sf.read(sys.argv[2], dtype="float32", always_2d=True)
with torch.inference_mode():
    z = m.encode(torch.from_numpy(np.ascontiguousarray(x.T))[None])
np.save(sys.argv[3], z.numpy())
'''

# The defaults are what is measured: a user's $RAVEKIT_JOBS must not change them.


def started(model: Path, processes: int) -> float:
    """Seconds for ``processes`` copies of Python to import torch and load the model, side by side."""
    import subprocess
    import time

    t = time.perf_counter()
    procs = [subprocess.Popen([PY, "-c", START, str(model)]) for _ in range(processes)]
    if any(p.wait() for p in procs):
        raise RuntimeError(f"{model.name}: the start-up script failed")
    return time.perf_counter() - t


def _layout(secs: float, threads: int, processes: int) -> str:
    calls = "whole-file calls" if secs == 0 else f"{secs:g} s calls"
    return f"{calls}, {threads} thread{'s' * (threads > 1)} x {processes} process{'es' * (processes > 1)}"


def sample_npz(a_npz: Path, work: Path, count: int = 4) -> Path:
    """The first ``count`` files of the in-memory set: one of each format and channel count."""
    import numpy as np

    data = np.load(a_npz, allow_pickle=False)
    out = work / "sample.npz"
    np.savez(out, **{k: data[k] for k in sorted(data.files)[:count]})
    return out


def throughput(model: Path, repeat: int, rows: list, details: dict) -> None:
    """Rows: encoder.py and decoder.py, defaults, against the best floor found in this run."""
    from ravekit.choices import DEFAULT_CHUNK_SECONDS
    from ravekit.commands.parallel import usable_cores

    audio, work = BENCH / "audio", BENCH / "work" / model.stem
    lat, dec = work / "latents", work / "decoded"
    tools = {"encode": [PY, "encoder.py", "-m", str(model), "-i", str(audio), "-o", str(lat), "--force", "-q"],
             "decode": [PY, "decoder.py", "-m", str(model), "-i", str(lat), "-o", str(dec), "--force", "-q"]}
    wall(tools["encode"], env=ENV)  # warm the page cache and the probe cache; write the latents
    info, context = floor_facts(model)
    a_npz = in_memory(info, audio, work)
    cores = usable_cores()
    for method, tool in tools.items():
        found = search(method, model, sample_npz(a_npz, work), info.sr, info.ratio, context, cores)
        secs, threads, processes = found["best"]
        details.setdefault(f"{model.stem} best", {})[method] = list(found["best"])
        details[f"{model.stem} {method} search"] = {_layout(*k): round(v, 3) for k, v in found["times"].items()}
        workers = model_workers(method, model, a_npz, info.ratio, context, threads, processes)
        readers = reader_workers(sorted(audio.iterdir()), info.sr, info.n_channels, cores) \
            if method == "encode" else None
        times: dict[str, list[float]] = {"tool": [], "model": [], "files": [], "start": []}
        try:
            for _ in range(repeat):
                times["tool"].append(wall(tool, env=ENV)[0])
                times["start"].append(started(model, processes))
                times["model"].append(workers.timed(str(call_frames(secs, info.sr, info.ratio))))
                if readers is not None:
                    times["files"].append(readers.timed())
        finally:
            workers.close()
            if readers is not None:
                readers.close()
        t, s, mod = (statistics.median(times[k]) for k in ("tool", "start", "model"))
        files = statistics.median(times["files"]) if times["files"] else 0.0
        binds = "file decoding" if files > mod else "model"
        floor = s + max(mod, files)
        rows.append(dict(model=model.stem, metric=f"{method} 12 x 1 min, defaults, time vs best floor",
                         measured=f"{t:.2f} s vs {floor:.2f} s = start {s:.2f} + {binds} {max(mod, files):.2f} "
                                  f"({_layout(secs, threads, processes)})",
                         ratio=t / floor, target=1.10 if binds == "file decoding" else 1.05))
        if files:
            # The model and the file decoding share the same cores: the floor above overlaps them perfectly.
            rows.append(dict(model=model.stem, metric=f"{method} 12 x 1 min, defaults, time vs start + model + "
                                                      "file decoding, one after the other (info)",
                             measured=f"{t:.2f} s vs {s + mod + files:.2f} s", ratio=t / (s + mod + files),
                             target=None))
        default = next((v for k, v in found["times"].items()
                        if k[0] == DEFAULT_CHUNK_SECONDS and k[1:] == (threads, processes)), None)
        if default is not None and secs != DEFAULT_CHUNK_SECONDS:
            rows.append(dict(model=model.stem,
                             metric=f"bare {method}: --chunk {DEFAULT_CHUNK_SECONDS:g} (default) vs best call (info)",
                             measured=f"{default:.2f} s vs {found['times'][found['best']]:.2f} s on 4 files",
                             ratio=default / found["times"][found["best"]], target=None))


def fixed_costs(model: Path, repeat: int, rows: list) -> None:
    """One 5-second file: encoder.py vs a minimal script; the probes' first-run cost (info)."""
    import numpy as np
    import soundfile as sf

    from ravekit.engine.model import load_model

    info = load_model(model, "cpu", checksum=False).info
    work = BENCH / "work" / model.stem / "fixed"
    work.mkdir(parents=True, exist_ok=True)
    src = work / "five.wav"
    rng = np.random.default_rng(0)
    sf.write(str(src), (0.1 * rng.standard_normal((5 * info.sr, info.n_channels))).astype(np.float32), info.sr)
    tool = [PY, "encoder.py", "-m", str(model), "-i", str(src), "-o", str(work / "out"), "--force", "-q"]
    minimal = [PY, "-c", MINIMAL, str(model), str(src), str(work / "minimal.npy")]
    wall(tool, env=ENV)  # the probe cache holds this model from here on
    times: dict[str, list[float]] = {"tool": [], "minimal": [], "cold": []}
    for _ in range(repeat):
        times["tool"].append(wall(tool, env=ENV)[0])
        times["minimal"].append(wall(minimal)[0])
        with tempfile.TemporaryDirectory() as empty:
            times["cold"].append(wall(tool, env={**ENV, "RAVEKIT_CACHE_DIR": empty})[0])
    t, mini, cold = (statistics.median(times[k]) for k in ("tool", "minimal", "cold"))
    rows.append(dict(model=model.stem, metric="one 5-s file: encoder.py vs minimal script (load, encode, save)",
                     measured=f"{t:.2f} s vs {mini:.2f} s", ratio=t / mini, target=1.10))
    rows.append(dict(model=model.stem, metric="one 5-s file: first run on a model (probes) vs later runs (info)",
                     measured=f"{cold:.2f} s vs {t:.2f} s", ratio=cold / t, target=None))
