"""Benchmark of generator.py's pooled statistics (issue 6, target 4) against a plain numpy reference.

Builds 100 one-hour files of 16-dim latents (44.1 kHz / 2048: 77 520 frames each, 100 hours, 496 MB of
float32) once, then measures in fresh processes, medians of --repeat interleaved runs, wall time and peak RSS of:
  reference: load every file, concatenate, mean/std/cov/corrcoef/min/max (+ np.quantile with quartiles)
  ravekit:   ravekit.generate.pooling.compute_stats over the same files (streaming moments; quartiles by in-place
             partition of one float32 buffer)
Prints one JSON line per case (without / with quartiles) with the ratios; target: both ratios <= 2.

Usage: python -m tools.bench_stats [--data DIR] [--files 100] [--hours_per_file 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

REFERENCE = r'''
import sys, time, resource, numpy as np
from pathlib import Path
t = time.perf_counter()
x = np.concatenate([np.load(p)[0] for p in sorted(Path(sys.argv[1]).glob("*.npy"))], axis=1)
mean, std, cov, corr = x.mean(1, dtype=np.float64), x.std(1, ddof=1, dtype=np.float64), np.cov(x), np.corrcoef(x)
lo, hi = x.min(1), x.max(1)
if sys.argv[2] == "1":
    q1, med, q3 = np.quantile(x, [0.25, 0.5, 0.75], axis=1)
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
'''

RAVEKIT = r'''
import sys, time, resource
from pathlib import Path
t = time.perf_counter()
from ravekit.generate.pooling import compute_stats
compute_stats(sorted(Path(sys.argv[1]).glob("*.npy")), quartiles=sys.argv[2] == "1")
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
'''


def build(data: Path, files: int, hours: float, dims: int = 16) -> None:
    """Write the corpus once (correlated Gaussian latents with sidecars); existing files are kept."""
    import numpy as np

    from ravekit.io.latents import Latents, Sidecar, make_sidecar

    frames = round(3600 * hours * 44100 / 2048)
    rng = np.random.default_rng(0)
    mix = rng.standard_normal((dims, dims)).astype(np.float32)
    for i in range(files):
        p = data / f"f{i:03d}.npy"
        if not p.exists():
            z = (mix @ rng.standard_normal((dims, frames), dtype=np.float32))[None]
            Latents(z, Sidecar(make_sidecar(sr=44100, ratio=2048, latent_dims=dims, frames=frames))).save(p)


def measure(code: str, data: Path, quartiles: bool) -> tuple[float, float]:
    """``(seconds, peak RSS in MB)`` of one fresh process."""
    out = subprocess.run([sys.executable, "-c", code, str(data), "1" if quartiles else "0"],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    seconds, kb = out.split()
    return float(seconds), int(kb) / 1024


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=ROOT / "_bench" / "stats-latents")
    p.add_argument("--files", type=int, default=100)
    p.add_argument("--hours_per_file", type=float, default=1.0)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    build(args.data, args.files, args.hours_per_file)
    for quartiles in (False, True):
        runs = [(measure(REFERENCE, args.data, quartiles), measure(RAVEKIT, args.data, quartiles))
                for _ in range(args.repeat)]
        ref = tuple(statistics.median(r[0][i] for r in runs) for i in (0, 1))
        ours = tuple(statistics.median(r[1][i] for r in runs) for i in (0, 1))
        print(json.dumps({
            "case": "stats with quartiles" if quartiles else "stats (moments)",
            "reference_s": round(ref[0], 3), "ravekit_s": round(ours[0], 3), "time_ratio": round(ours[0] / ref[0], 3),
            "reference_rss_mb": round(ref[1], 1), "ravekit_rss_mb": round(ours[1], 1),
            "rss_ratio": round(ours[1] / ref[1], 3), "target": 2.0,
        }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
