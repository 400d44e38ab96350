"""Running a batch script as several worker processes, each on its share of the files.

On two cores, two single-threaded processes encode RAVE exports about 20 %
faster than one process whose torch uses both cores (tools/bench.py): the
model's convolutions are too small to keep two threads busy.  ``--jobs N``
runs N copies of the script, each with ``--part k/N`` of the files and
``cores / N`` torch threads; their output is relayed line by line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import TextIO


def _relay(stream, out: TextIO, lock: threading.Lock) -> None:
    for line in iter(stream.readline, ""):
        with lock:
            out.write(line)
            out.flush()
    stream.close()


def run_in_parts(script: os.PathLike | str, argv: list[str], parts: int, stdin_text: str | None = None) -> int:
    """Run ``script argv --part k/parts`` for k = 1..parts at once; return the worst exit code.

    Each worker gets ``cores // parts`` threads (at least one) through
    ``OMP_NUM_THREADS``.  ``stdin_text`` (the paths of ``--input -``, read
    once here) is given to every worker.  Paths (stdout) and messages (stderr)
    are relayed whole lines at a time, so a pipeline downstream still reads
    one path per line.
    """
    threads = max(1, (os.cpu_count() or 1) // parts)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    lock = threading.Lock()
    procs, relays = [], []
    for k in range(1, parts + 1):
        cmd = [sys.executable, str(Path(script).resolve()), *argv, "--jobs", "1", "--part", f"{k}/{parts}"]
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, bufsize=1)
        proc.stdin.write(stdin_text or "")
        proc.stdin.close()
        procs.append(proc)
        for stream, out in ((proc.stdout, sys.stdout), (proc.stderr, sys.stderr)):
            t = threading.Thread(target=_relay, args=(stream, out, lock), daemon=True)
            t.start()
            relays.append(t)
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
        for p in procs:
            p.wait()
        raise
    for t in relays:
        t.join()
    return max(codes)
