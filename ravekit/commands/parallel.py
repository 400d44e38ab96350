"""Running a batch script on several processes: files shared out, or the chunks of each file.

Every model call runs on one intra-op thread (``--threads``), whatever the
layout, so the outputs are the same bytes however many processes share the
work (:mod:`ravekit.engine.layout`).  Cores are used by processes instead:
two single-threaded processes also run RAVE exports faster than one
two-threaded one (tools/bench.py), and a thread that waits for a core
another program holds stalls its whole call.

``--jobs N`` (default ``auto``: one per core, :func:`auto_workers`) runs N
processes.  Files are shared out first: with F files, ``P = min(N, F)``
copies of the command (``python -m ravekit.commands.NAME``) each take
``--part k/P`` of the files, and each shares its files' chunks with
``N // P - 1`` helper processes (:class:`ravekit.engine.pool.ChunkPool`).
One file (P = 1) runs here, its chunks on N processes.  The parent relays
the workers' output paths line by line, parses their progress lines
(``progress.PREFIX``) into one bar, shows each error once and prints one
summary.

:func:`batch_main` is the ``main`` of the encoder and the decoder: it
checks the command line, then runs the batch here or dispatches it.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ravekit.commands.batch import claim_batch_output, summary_line
from ravekit.commands.console import fatal, info, run_main, stdout_closed
from ravekit.commands.flags import PROG_ENV, check_common
from ravekit.commands.progress import PREFIX, WORKER_ENV, Progress
from ravekit.commands.summary import SummaryTarget, summarised, summary_target, write_workers_summary
from ravekit.errors import RavekitError
from ravekit.io.inputs import collect_inputs, parse_extensions, parse_shard, take_shard

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence


def batch_main(prog: str, parser: argparse.ArgumentParser, argv: Sequence[str] | None, module: str,
               run: Callable[[argparse.Namespace, int], int]) -> int:
    """The ``main`` of a script made with ``add_model_batch_args``: one process, or ``--jobs`` workers.

    ``run(args, workers)`` does the work in this process, its model calls
    shared by ``workers`` processes (``engine.pool``).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    try:
        check_common(args)
    except RavekitError as exc:
        return fatal(prog, str(exc), exc.exit_code)
    if args.part is not None:  # a worker of --jobs: its files, its chunks on --jobs processes
        return run_main(prog, lambda: run(args, args.jobs if isinstance(args.jobs, int) else 1))
    if args.jobs != 1:
        def parallel() -> int:
            claim_batch_output(Path(args.output), args.shard)  # held for the workers, which take none
            return run_parallel(prog, module, argv, args, lambda workers: run(args, workers))

        return run_main(prog, summarised(prog, args, parallel))
    return run_main(prog, summarised(prog, args, lambda: run(args, 1)))


def plan_workers(requested: int, cores: int | None) -> tuple[int, str | None]:
    """How many processes ``--jobs requested`` starts on ``cores`` cores.

    Returns ``(workers, note)``: at most one per core, at least one; ``note``
    says why fewer than requested (None when not capped).  Files do not cap
    it: processes share the chunks of files too few to go round.
    """
    cores = cores or 1
    workers = max(1, min(requested, cores))
    if workers >= requested:
        return workers, None
    return workers, f"--jobs {requested}: starting {workers} process{'es' * (workers != 1)} ({cores} cores)"


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, as under ``taskset`` or a batch scheduler)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def available_memory() -> int | None:
    """Bytes of memory available for new processes (``MemAvailable``), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


# What one worker needs besides its model: torch, numpy and the read-ahead (about 0.4 GB
# measured on the shipped exports), with room to spare.
WORKER_BYTES = 768 * 2**20


def auto_workers(cores: int, device: str, model_bytes: int, available: int | None) -> int:
    """How many single-threaded processes ``--jobs auto`` starts: one per core when they all fit.

    Each process (torch, the model and a few times the model's size in
    activations) must fit in the memory available.  A GPU (``--device``
    other than cpu, or auto where an accelerator may be present) keeps one
    process: it does the arithmetic, not the cores.
    """
    if device != "cpu" and (device != "auto" or _accelerator_present()):
        return 1
    workers = cores
    if available is not None:
        workers = min(workers, available // (WORKER_BYTES + 4 * model_bytes))
    return max(1, workers)


def _accelerator_present() -> bool:
    """Whether ``--device auto`` could pick a GPU, judged without importing torch."""
    import platform

    if platform.system() == "Darwin" and platform.machine() == "arm64":
        return True  # mps
    return any(os.path.exists(p) for p in ("/dev/nvidia0", "/dev/nvidiactl", "/dev/kfd"))


def count_files(args: argparse.Namespace, stdin_bytes: bytes | None) -> int:
    """Input files of this run (after ``--shard``), found as the workers will find them."""
    pairs = collect_inputs(args.input, parse_extensions(args.extensions), Path(args.output),
                           _text_stream(stdin_bytes or b""), null=args.null)
    return len(take_shard(pairs, parse_shard(args.shard)))


def _read_stdin() -> bytes:
    """All of stdin as bytes: the text layer could translate a "\r" in a name."""
    raw = getattr(sys.stdin, "buffer", None)
    return raw.read() if raw is not None else os.fsencode(sys.stdin.read())


def _text_stream(data: bytes) -> io.TextIOWrapper:
    """``data`` as a stdin-like stream: lines split at "\n" only, bytes under ``.buffer`` (``inputs.read_paths``)."""
    return io.TextIOWrapper(io.BytesIO(data), encoding=sys.getfilesystemencoding(), errors="surrogateescape",
                            newline="\n")


def run_parallel(prog: str, module: str, argv: list[str], args: argparse.Namespace,
                 run_here: Callable[[int], int]) -> int:
    """``--jobs``: plan the processes, then share the files out, or run ``run_here(workers)`` here.

    ``run_here(workers)`` runs the batch in this process with ``workers``
    processes sharing each file's chunks.
    """
    stdin_bytes = _read_stdin() if "-" in args.input else None
    files = count_files(args, stdin_bytes)
    if args.jobs == "auto":
        # A one-step decoder holds its --encoder model too.
        model_bytes = sum(_size(m) for m in {args.model, getattr(args, "encoder", None)} if m)
        workers = auto_workers(usable_cores() // args.threads, args.device, model_bytes, available_memory())
    else:
        workers, note = plan_workers(args.jobs, usable_cores() // args.threads)
        if note:
            info(prog, note)
    parts = max(1, min(workers, files))
    if parts > 1:
        return run_in_parts(prog, module, argv, parts, stdin_bytes, args.quiet, args.null, workers // parts,
                            args.threads, summary_target(prog, args))
    if stdin_bytes is not None:
        sys.stdin = _text_stream(stdin_bytes)  # read once already: hand the paths on
    return run_here(workers)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


class _Workers:
    """What the parent gathers from its workers' stderr."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.lock = threading.Lock()
        self.counts = {"written": 0, "skipped": 0, "failed": 0}
        self.reports = 0
        self.seen: set[str] = set()
        self.files: dict[str, list] = {"written": [], "skipped": [], "failed": []}  # for --summary

    def take(self, line: str) -> None:
        with self.lock:
            if line.startswith(PREFIX):
                message = json.loads(line[len(PREFIX):])
                if "total" in message:
                    self.progress.add_total(message["total"])
                if "advance" in message:
                    self.progress.advance(message["advance"])
                if "error" in message:
                    self.progress.error(message["error"])
                if "report" in message:
                    self.reports += 1
                    for key, n in message["report"].items():
                        self.counts[key] = self.counts.get(key, 0) + n
                    for key, paths in message.get("files", {}).items():
                        self.files.setdefault(key, []).extend(paths)
            elif line not in self.seen:
                # Every worker meets the same early problem (a bad model, an interrupt): show it once.
                self.seen.add(line)
                self.progress.write(line.rstrip("\n"))


def _write_bytes(out: TextIO, data: bytes) -> None:
    raw = getattr(out, "buffer", None)
    if raw is None:
        out.write(os.fsdecode(data))
    else:
        out.flush()  # whatever the text layer holds goes first
        raw.write(data)
        raw.flush()
    out.flush()


def _relay(stream, out: TextIO, lock: threading.Lock, null: bool = False,
           closed: threading.Event | None = None) -> None:
    """Copy a worker's paths to ``out`` in whole records (lines, or NUL-terminated with ``null``), as bytes.

    When ``out``'s reader goes away (``| head -1``), ``closed`` is set and the
    worker's pipe is closed: the worker then meets the closed pipe itself at
    its next path and ends quietly, as a single process would.
    """
    closed = closed or threading.Event()

    def write(data: bytes) -> None:
        with lock:
            if closed.is_set():
                # Another worker's relay met the closed pipe: this worker must meet it too, at its next path.
                raise BrokenPipeError
            _write_bytes(out, data)

    try:
        if not null:
            for line in iter(stream.readline, b""):
                write(line)
        else:
            pending = b""
            for chunk in iter(lambda: stream.read1(65536), b""):
                pending += chunk
                cut = pending.rfind(b"\0") + 1
                if cut:
                    write(pending[:cut])
                    pending = pending[cut:]
            if pending:  # a worker cut short mid-record: still its own write, never spliced into another's
                write(pending)
    except BrokenPipeError:
        with lock:
            if not closed.is_set():
                closed.set()
                stdout_closed()
    stream.close()


def _gather(stream, workers: _Workers) -> None:
    for line in iter(stream.readline, b""):
        workers.take(line.decode("utf-8", "backslashreplace"))
    stream.close()


def run_in_parts(prog: str, module: str, argv: list[str], parts: int,
                 stdin_bytes: bytes | None = None, quiet: bool = False, null: bool = False, each: int = 1,
                 threads: int = 1, summary: SummaryTarget | None = None) -> int:
    """Run ``python -m module argv --part k/parts`` for k = 1..parts at once; return the worst exit code.

    Each worker shares its files' chunks among ``each`` processes (``--jobs each``).

    Each worker runs its model calls on ``--threads`` threads as the parent
    would (the argv and environment carry it); other libraries' thread pools
    get as many (``OMP_NUM_THREADS``), so the workers do not crowd each other.
    ``stdin_bytes`` (the paths of ``--input -``, read once here) is given to
    every worker.  ``summary`` (``--summary``) gets the files of every worker.  Paths (stdout) are relayed as bytes,
    whole lines (NUL-terminated records with ``null``) at a time, so a
    pipeline downstream still reads one path per record.
    """
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), **{WORKER_ENV: "1"})
    # The workers import this very ravekit, installed or run from a checkout in any folder.
    here = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([here, *filter(None, [os.environ.get("PYTHONPATH")])])
    env[PROG_ENV] = prog  # the workers' lines name the command as the user ran it
    start = time.perf_counter()
    progress = Progress(prog, quiet, worker=False)
    gathered = _Workers(progress)
    out_lock, out_closed = threading.Lock(), threading.Event()
    procs, readers = [], []
    try:
        for k in range(1, parts + 1):
            cmd = [sys.executable, "-m", module, *argv, "--jobs", str(each), "--part", f"{k}/{parts}"]
            proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)
            assert proc.stdin is not None  # stdin=PIPE
            proc.stdin.write(stdin_bytes or b"")
            proc.stdin.close()
            procs.append(proc)
            readers += [threading.Thread(target=_relay, args=(proc.stdout, sys.stdout, out_lock, null, out_closed),
                                         daemon=True),
                        threading.Thread(target=_gather, args=(proc.stderr, gathered), daemon=True)]
            readers[-2].start()
            readers[-1].start()
        try:
            codes = [p.wait() for p in procs]
        except KeyboardInterrupt:
            # Ctrl-C reaches the workers too; each says it was interrupted, shown once.
            for p in procs:
                p.wait()
            for t in readers:
                t.join()
            if any("interrupted" in line for line in gathered.seen):
                if summary is not None:  # what the workers finished before Ctrl-C, and that it was cut short
                    write_workers_summary(summary, gathered.files, gathered.reports, parts, gathered.seen, 130, False,
                                          time.perf_counter() - start)
                return 130
            raise
        for t in readers:
            t.join()
    finally:
        progress.close()
    counts = gathered.counts
    # Workers that stopped before their batch (a model that does not load) said why already; a run
    # ended by the reader of its paths (`| head`) has no summary, as in a single process.
    if gathered.reports and not out_closed.is_set() and (not quiet or counts["failed"]):
        info(prog, summary_line(**counts, seconds=time.perf_counter() - start))
    if summary is not None:
        write_workers_summary(summary, gathered.files, gathered.reports, parts, gathered.seen, max(codes),
                              out_closed.is_set(), time.perf_counter() - start)
    return max(codes)
