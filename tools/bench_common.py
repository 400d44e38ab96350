"""What the benchmark's groups share: where they work, how a command is timed, the floor's bare model loop.

Each group (tools/bench_*.py) imports this module, and tools/bench.py imports
the groups: no group imports tools/bench.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "_bench"
PY = sys.executable
# The scripts' own default --jobs, whatever the caller's environment says.
ENV = {k: v for k, v in os.environ.items() if k != "RAVEKIT_JOBS"}

# The floor: the bare model called on every file held in memory, nothing else.
FLOOR = r'''
import sys, time, warnings, numpy as np
t0 = time.perf_counter()
data = np.load(sys.argv[3], allow_pickle=False)
items = [data[k] for k in sorted(data.files)]
loading = time.perf_counter() - t0
import torch
warnings.filterwarnings("ignore", category=DeprecationWarning)
m = torch.jit.load(sys.argv[2]).eval()
with torch.inference_mode():
    for a in items:
        torch.manual_seed(0)
        getattr(m, sys.argv[1])(torch.from_numpy(a)[None])
print(loading)
'''

def wall(cmd: list[str], env: dict | None = None) -> tuple[float, str]:
    t = time.perf_counter()
    res = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT, env=env)
    return time.perf_counter() - t, res.stdout


def in_memory(info, audio: Path, cache: Path) -> Path:
    """The floors' input: every file of ``audio`` decoded, resampled and channel-matched for the model
    ``info`` describes, in one ``.npz`` under ``cache``."""
    import numpy as np

    from ravekit.io.audio import read_audio
    from ravekit.io.channels import match_channels

    a_npz = cache / "audio.npz"
    arrays = {p.stem: match_channels(read_audio(p, info.sr)[0], info.n_channels) for p in sorted(audio.iterdir())}
    np.savez(a_npz, **arrays)
    return a_npz
