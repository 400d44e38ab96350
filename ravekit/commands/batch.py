"""Running a batch: jobs planned from the inputs, the output folder claimed, each file
worked on or skipped (resume), a bad file reported and passed, output paths
printed as they land, one summary at the end.

Finding the inputs and mirroring them under the output folder is
:mod:`ravekit.io.inputs`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

from ravekit.commands.console import check_printable, info, one_line, print_path, stdout_closed
from ravekit.commands.progress import FileMeter, Progress, is_worker
from ravekit.commands.summary import BatchReport, SummaryTarget, check_summary_clear, write_run_summary
from ravekit.errors import RavekitError, shown
from ravekit.io.claims import claim_output
from ravekit.io.files import check_writable
from ravekit.io.inputs import Job, check_link, collect_inputs, parse_extensions, parse_shard, plan_jobs, take_shard


def find_jobs(inputs: Iterable[str], extensions: str, output_dir: Path, suffix: str,
              shard: str | None = None, part: str | None = None, null: bool = False,
              records: bool = False, summary: str | None = None) -> list[Job]:
    """``collect_inputs`` then ``plan_jobs``, from the command line's words (``.wav,.flac``, ``K/N``).

    ``part`` (``k/n``, set by ``--jobs`` for its workers) takes a share of the shard.  ``summary``
    (``--summary``) may not be one of the shard's inputs, outputs or records.
    """
    pairs = collect_inputs(inputs, parse_extensions(extensions), output_dir, null=null)
    jobs = plan_jobs(pairs, output_dir, suffix, parse_shard(shard), records)
    check_summary_clear(summary, jobs)
    jobs = take_shard(jobs, parse_shard(part))
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

    if is_worker():
        # The parent holds the folder and has cleared it of stale temporaries: only check it can be written.
        check_writable(output_dir)
        return
    k_n = parse_shard(shard)
    claim_output(output_dir, shared=k_n is not None, recursive=True)
    if k_n is not None:
        claim_output(output_dir, lock=f".ravekit.shard-{k_n[0]}-of-{k_n[1]}.lock",
                     subject=f"{output_dir} (its --shard {k_n[0]}/{k_n[1]})")


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
        write_run_summary(summary, report, code)
    return code
