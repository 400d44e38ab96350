"""``--summary FILE`` of the batch scripts: where it goes, writing it, and writing it also when a run stops early.

The format and the reading side are library code (:mod:`ravekit.io.run_summary`); this
module holds what a batch did (:class:`BatchReport`) and maps it and a command line onto the format.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ravekit.commands.console import one_line
from ravekit.commands.progress import is_worker
from ravekit.errors import RavekitError, shown
from ravekit.io.inputs import Job, parse_shard
from ravekit.io.run_summary import make_summary, read_summary, write_summary


@dataclass
class BatchReport:
    """What a batch run did with each file: written, skipped (already there), failed with the reason."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0
    stdout_closed: bool = False  # the reader of the paths went away, ending the batch early


@dataclass
class SummaryTarget:
    """Where ``--summary`` writes a run's outcome, and what it says about the run."""

    path: Path
    command: str
    shard: tuple[int, int] | None
    output: Path
    written: bool = False  # set once written: a run that stops later keeps the batch's summary


def summary_target(prog: str, args) -> SummaryTarget | None:
    """The ``--summary`` of a batch script's arguments, or None (not asked for; a ``--jobs`` worker's parent
    writes the one summary)."""
    path = getattr(args, "summary", None)
    if not path or is_worker():
        return None
    # One per run, kept with its arguments: what the batch wrote is not replaced by a later failure's summary.
    if getattr(args, "summary_target", None) is None:
        _check_summary_path(Path(path))
        args.summary_target = SummaryTarget(Path(path), prog, parse_shard(args.shard), Path(args.output))
    return args.summary_target


def _check_summary_path(path: Path) -> None:
    """Refuse, before any work, a ``--summary`` that would replace a file other than an earlier run summary."""
    if path.is_dir():
        raise RavekitError(f"--summary {shown(path)}: is a folder; give a file name, e.g. {shown(path / 'run.json')}",
                           2)
    if path.exists() or path.is_symlink():
        try:
            read_summary(path)
        except RavekitError:
            raise RavekitError(f"--summary {shown(path)}: exists and is not a run summary, so it is not replaced; "
                               "choose another path", 2) from None


def check_summary_clear(summary: str | None, jobs: Iterable[Job]) -> None:
    """Refuse (exit 2), before any work, a ``--summary`` that is one of this run's inputs, outputs or records."""
    if not summary:
        return
    from ravekit.io.latents import sidecar_path  # start-up: numpy, only once there is a summary to check

    target = Path(summary).resolve()
    for job in jobs:
        taken = {job.source: "an input", sidecar_path(job.source): "an input's sidecar", job.output: "an output",
                 sidecar_path(job.output): "an output's sidecar or record"}
        for path, what in taken.items():
            if path.resolve() == target:
                raise RavekitError(f"--summary {shown(summary)}: is {what} of this run ({shown(job.source)}), which "
                                   "the summary would replace; choose another path", 2)


def write_run_summary(target: SummaryTarget, report: BatchReport | None, exit_code: int,
                      error: str | None = None) -> None:
    """Write ``report`` (None: a run that stopped before its batch) as the run summary ``target`` names
    (:mod:`ravekit.io.run_summary`).

    A file that appeared there during the run and is not a run summary (an output of this run, e.g. under
    ``--jobs``, whose workers each saw only their share) is kept: the summary is not written, and says so.
    """
    if target.path.exists() or target.path.is_symlink():
        try:
            read_summary(target.path)
        except RavekitError:
            raise RavekitError(f"--summary {shown(target.path)}: this run wrote another file there, which is kept; "
                               "the run summary was not written: choose another path") from None
    write_summary(target.path, make_summary(
        command=target.command, shard=target.shard, output=target.output,
        written=report.written if report else [], skipped=report.skipped if report else [],
        failed=report.failed if report else [], seconds=report.seconds if report else 0.0,
        complete=report is not None and not report.stdout_closed and error is None, exit_code=exit_code,
        error=error))
    target.written = True


def summarised(prog: str, args, body: Callable[[], int]) -> Callable[[], int]:
    """``body`` that leaves a ``--summary`` also when the run stops before its batch ends (an input that
    is not there, a model that does not load, Ctrl-C): only a killed run has none."""
    def guarded() -> int:
        target = summary_target(prog, args)
        try:
            return body()
        except BaseException as exc:
            if target is not None and not target.written and not isinstance(exc, BrokenPipeError):
                if isinstance(exc, RavekitError):
                    why, code = str(exc), exc.exit_code
                elif isinstance(exc, KeyboardInterrupt):
                    why, code = "interrupted", 130
                else:
                    why, code = f"unexpected {type(exc).__name__}: {exc}", 1
                write_run_summary(target, None, code, one_line(why))
            raise

    return guarded


def write_workers_summary(target: SummaryTarget, files: dict[str, list], reports: int, parts: int, seen: set[str],
                          code: int, cut_short: bool, seconds: float) -> None:
    """The one ``--summary`` of a ``--jobs`` run: every worker's ``files`` (``written``, ``skipped``: paths;
    ``failed``: ``[path, why]``), in path order whatever order the workers finished in; ``reports`` of
    ``parts`` workers said what they did, the others stopped early (one of their lines in ``seen`` says why)."""
    report = BatchReport(written=sorted(Path(p) for p in files["written"]),
                         skipped=sorted(Path(p) for p in files["skipped"]),
                         failed=sorted((Path(p), m) for p, m in files["failed"]), seconds=seconds,
                         stdout_closed=cut_short)
    error = None
    if reports < parts:
        said = next((line.strip() for line in sorted(seen) if "error:" in line), "see its messages")
        error = f"{parts - reports} of {parts} worker processes stopped before the end of their files: {said}"
    write_run_summary(target, report, code, error)
