"""Batch mechanics shared by the scripts: finding inputs, mirroring them under
an output folder, sharding, resuming, and going on past a bad file.

Mirroring rule: a file found in a folder given to ``--input`` keeps its path
below that folder (``--input lib`` with ``lib/a/b/song.flac`` ->
``out/a/b/song.npy``); a file given by name (or on stdin) keeps its path when
that is relative and stays below the current folder (``a/b/song.flac`` ->
``out/a/b/song.npy``), else only its name.  Two inputs that would map to one
output are refused before any work starts, and so is an output that would
replace an input.

Folders are walked following symlinked subfolders, each real folder once; a
broken link found there is kept as an input so that it fails with its own
message (:func:`check_link`) instead of vanishing.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ravekit.commands.flags import (
    check_printable,
    info,
    one_line,
    parse_extensions,
    parse_shard,
    print_path,
    read_paths,
    shown,
    stdout_closed,
)
from ravekit.errors import RavekitError

if TYPE_CHECKING:
    from ravekit.commands.summary import SummaryTarget


@dataclass
class Job:
    """One input file and where its output goes (``output`` carries the final suffix)."""

    source: Path
    rel: Path  # mirrored path below the output folder, input suffix kept
    output: Path


def _mirrorable(p: Path) -> bool:
    return not p.is_absolute() and ".." not in p.parts


def _walk(folder: Path, extensions: tuple[str, ...], skip: Path | None) -> list[Path]:
    """Matching files below ``folder``, following symlinked folders, each real folder once.

    A broken link with a matching ending is returned too, so that the script
    reports it (:func:`check_link`) instead of skipping it without a word.
    """
    # An output folder inside the walked one holds earlier outputs: never read them back.
    skip = skip if skip is not None and folder.resolve() in skip.parents else None
    found = []
    seen: set[str] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:  # a link back up the tree (a loop) or a second link to one folder
            dirs[:] = []
            continue
        seen.add(real)
        # Hidden files and folders (.git, .Trash, our own unfinished temporaries) are not walked.
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in extensions:
                continue
            f = Path(root, name)
            if not (f.is_file() or f.is_symlink()):
                continue  # a fifo or socket
            if skip is not None and skip in f.resolve().parents:
                continue
            found.append(f)
    return sorted(found)


def check_link(path: Path) -> None:
    """Fail with a clear message for a symbolic link whose target is gone."""
    if path.is_symlink() and not path.exists():
        raise RavekitError(f"{shown(path)}: broken symbolic link (to {shown(os.readlink(path))}); "
                           "fix or remove the link")


def collect_inputs(inputs: Iterable[str], extensions: tuple[str, ...], output_dir: Path | None = None,
                   stdin: TextIO | None = None, null: bool = False) -> list[tuple[Path, Path]]:
    """Expand files, folders and ``-`` (paths on stdin) into ``(path, mirrored_rel)`` pairs.

    Paths on stdin are one per line, or NUL-separated with ``null``.  Folders
    are walked following symlinked subfolders; broken links found there are
    returned (see :func:`check_link`).  Raises ``RavekitError`` for a path
    that does not exist, or when nothing is found.
    """
    given: list[str] = []
    from_stdin: set[str] = set()
    for item in inputs:
        if item == "-":
            read = read_paths(stdin or sys.stdin, null)
            from_stdin.update(read)
            given.extend(read)
        else:
            given.append(item)
    skip = output_dir.resolve() if output_dir is not None else None
    pairs: list[tuple[Path, Path]] = []
    for item in given:
        p = Path(item)
        if p.is_dir():
            pairs.extend((f, f.relative_to(p)) for f in _walk(p, extensions, skip))
        elif p.exists():
            pairs.append((p, p if _mirrorable(p) else Path(p.name)))
        else:
            link = " (a broken symbolic link)" if p.is_symlink() else ""
            hint = ""
            if null and item in from_stdin and "\n" in item:
                hint = "; it holds line breaks: are the paths on stdin really NUL-separated (find -print0)?"
            raise RavekitError(f"{shown(p)}: input not found{link}; check the path given to --input{hint}", 2)
    if not pairs:
        raise RavekitError(
            f"no input files found in {', '.join(map(shown, given)) or 'stdin'} ending in {', '.join(extensions)}; "
            "check --input and --extensions", 2)
    return pairs


def plan_jobs(pairs: list[tuple[Path, Path]], output_dir: Path, suffix: str,
              shard: tuple[int, int] | None = None, records: bool = False) -> list[Job]:
    """Map inputs to outputs, refuse collisions and overwrites, then take this shard.

    ``records``: each output gets a ``NAME.json`` record beside it, which must
    not replace an input's sidecar (``NAME.json`` beside a latent file).
    """
    jobs: list[Job] = []
    seen: dict[Path, Path] = {}
    sources = {p.resolve() for p, _ in pairs}
    sidecars = {p.resolve().with_suffix(".json"): p for p, _ in pairs} if records else {}
    for source, rel in sorted(pairs, key=lambda pr: str(pr[1])):
        out = output_dir / rel.with_suffix(suffix)
        key = out.resolve()
        if key in seen and seen[key] != source.resolve():
            raise RavekitError(
                f"{shown(seen[key])} and {shown(source)} would both be written to {shown(out)}; "
                "rename one or encode them separately", 2)
        if key in sources:
            raise RavekitError(f"{shown(source)}: its output {shown(out)} would replace an input; "
                               "choose another --output", 2)
        if key.with_suffix(".json") in sidecars:
            raise RavekitError(f"{shown(source)}: the record of its output, {shown(out.with_suffix('.json'))}, would "
                               f"replace the sidecar of {shown(sidecars[key.with_suffix('.json')])}; "
                               "choose another --output", 2)
        if key not in seen:
            seen[key] = source.resolve()
            jobs.append(Job(source, rel, out))
    if shard:
        k, n = shard
        jobs = jobs[k - 1::n]
    return jobs


def find_jobs(inputs: Iterable[str], extensions: str, output_dir: Path, suffix: str,
              shard: str | None = None, part: str | None = None, null: bool = False,
              records: bool = False) -> list[Job]:
    """``collect_inputs`` then ``plan_jobs``, from the command line's words (``.wav,.flac``, ``K/N``).

    ``part`` (``k/n``, set by ``--jobs`` for its workers) takes a share of the shard.
    """
    pairs = collect_inputs(inputs, parse_extensions(extensions), output_dir, null=null)
    jobs = plan_jobs(pairs, output_dir, suffix, parse_shard(shard), records)
    share = parse_shard(part)
    if share:
        jobs = jobs[share[0] - 1::share[1]]
    claim_batch_output(output_dir, shard)
    return jobs


def claim_batch_output(output_dir: Path, shard: str | None) -> None:
    """Make the output folder this run's (:func:`ravekit.io.claims.claim_output`) before any model is loaded.

    The same output is the folder: two runs writing one folder would replace
    each other's files (and an encoder's sidecar ``NAME.json`` is a decoder's
    record).  Runs with different ``--shard K/N`` write different files and
    share the folder; each holds its own shard.  ``--jobs`` workers write for
    their parent, which holds the folder for them.
    """
    from ravekit.commands.progress import is_worker
    from ravekit.io.claims import claim_output
    from ravekit.io.files import check_writable

    if is_worker():
        # The parent holds the folder and has cleared it of stale temporaries: only check it can be written.
        check_writable(output_dir)
        return
    k_n = parse_shard(shard)
    claim_output(output_dir, shared=k_n is not None, recursive=True)
    if k_n is not None:
        claim_output(output_dir, lock=f".ravekit.shard-{k_n[0]}-of-{k_n[1]}.lock",
                     subject=f"{output_dir} (its --shard {k_n[0]}/{k_n[1]})")


@dataclass
class BatchReport:
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0
    stdout_closed: bool = False  # the reader of the paths went away, ending the batch early


def run_jobs(prog: str, jobs: list[Job], work: Callable[[Job, Callable[[float], None]], list[Path]],
             exists: Callable[[Job], list[Path]] | None = None, force: bool = False,
             quiet: bool = False, estimate: Callable[[Job], float | None] | None = None,
             null: bool = False) -> BatchReport:
    """Run ``work(job, progress)`` for every job, printing outputs on stdout as they land.

    Paths are printed one per line, or NUL-terminated with ``null``; without
    it a job whose output name holds a line break fails before any work.
    ``exists(job)`` returns the outputs already on disk; when it returns any
    and ``force`` is off the job is skipped (its outputs are still printed, so
    a resumed pipeline sees every file).  A failing job is reported on stderr
    once, at once; the batch goes on.  When the reader of stdout goes away
    (``| head -1``), the batch ends quietly after the file in hand.

    Progress counts seconds of audio: ``estimate(job)`` gives a file's
    duration from its header (None: unknown), read up front only when the
    progress is shown, and ``work`` calls ``progress(seconds)`` as chunks
    of the file go through the model (see ``progress.Progress``).
    """
    from ravekit.commands.progress import FileMeter, Progress

    report = BatchReport()
    start = time.perf_counter()
    progress = Progress(prog, quiet)
    expected = [estimate(job) if estimate and progress.active else None for job in jobs]
    progress.add_total(sum(e for e in expected if e))

    def fail(job: Job, message: str) -> None:
        name, seen_as = str(job.source), shown(job.source)
        # A line break in a name must not split the line: the name goes in as repr, wherever the message has it.
        message = message.replace(name, seen_as) if name != seen_as else message
        message = one_line(message if seen_as in message else f"{seen_as}: {message}")
        report.failed.append((job.source, message))
        progress.error(message)

    try:
        for job, seconds in zip(jobs, expected):
            meter = FileMeter(progress, seconds)
            try:
                check_link(job.source)
                check_printable(job.output, null)
                done = exists(job) if exists and not force else []
                if done:
                    report.skipped.extend(done)
                    paths = done  # printed all the same, so a resumed pipeline sees every file
                else:
                    paths = work(job, meter)
                    report.written.extend(paths)
            except RavekitError as exc:
                fail(job, str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - one bad file must not end a batch of thousands
                fail(job, f"unexpected {type(exc).__name__}: {exc}")
                continue
            finally:
                meter.finish()
            try:
                for path in paths:
                    print_path(path, null)
            except BrokenPipeError:
                # The reader of stdout is gone (`| head -1`): it has what it wanted, so the run ends here,
                # quietly; the outputs written so far are complete.
                stdout_closed()
                report.stdout_closed = True
                break
    finally:
        progress.close()
    report.seconds = time.perf_counter() - start
    return report


def pending(jobs: list[Job], finished: Callable[[Job], list[Path]], force: bool, null: bool = False) -> list[Job]:
    """The jobs a run will work on: not finished (or ``force``), in order.

    A job with a problem (a broken link, a name stdout cannot carry, stale
    outputs) is left out: :func:`run_jobs` meets the problem again and reports
    it with the file, without working on it.
    """
    def to_do(job: Job) -> bool:
        try:
            check_link(job.source)
            check_printable(job.output, null)
            return force or not finished(job)
        except RavekitError:
            return False

    return [job for job in jobs if to_do(job)]


def summary_line(written: int, skipped: int, failed: int, seconds: float) -> str:
    """``3 written, 1 already there (...), 1 failed in 2.0 s``."""
    parts = [f"{written} written"]
    if skipped:
        parts.append(f"{skipped} already there (kept; --force redoes them)")
    if failed:
        parts.append(f"{failed} failed (the error lines above say why)")
    return ", ".join(parts) + f" in {seconds:.1f} s"


def summarise(prog: str, report: BatchReport, quiet: bool = False, summary: SummaryTarget | None = None) -> int:
    """Print the end-of-batch summary on stderr; return the exit code (1 if any file failed).

    Failures are not repeated: each was shown once, when it happened.  A
    ``--jobs`` worker sends its counts and files to the parent, which prints the one summary.
    A batch ended by its reader closing stdout has no summary line.  ``summary``
    (``--summary FILE``) gets every file's outcome as JSON.
    """
    from ravekit.commands.progress import Progress, is_worker

    counts = {"written": len(report.written), "skipped": len(report.skipped), "failed": len(report.failed)}
    if report.stdout_closed:
        pass  # ended by its reader (`| head`): no summary of a batch cut short on purpose
    elif is_worker():
        Progress(prog, worker=True).report(files={
            "written": [str(p) for p in report.written], "skipped": [str(p) for p in report.skipped],
            "failed": [[str(p), m] for p, m in report.failed]}, **counts)
    elif not quiet or report.failed:
        info(prog, summary_line(**counts, seconds=report.seconds))
    code = 1 if report.failed else 0
    if summary is not None:
        from ravekit.commands.summary import write_run_summary

        write_run_summary(summary, report, code)
    return code
