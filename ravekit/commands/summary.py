"""``--summary FILE`` of the batch scripts: where it goes, writing it, and writing it also when a run stops early.

The format and the reading side are library code (:mod:`ravekit.io.run_summary`); this
module maps a command line and a :class:`~ravekit.commands.batch.BatchReport` onto it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ravekit.commands.flags import one_line, parse_shard, shown
from ravekit.errors import RavekitError

if TYPE_CHECKING:
    from ravekit.commands.batch import BatchReport


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
    from ravekit.commands.progress import is_worker

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
    from ravekit.io.run_summary import read_summary

    if path.is_dir():
        raise RavekitError(f"--summary {shown(path)}: is a folder; give a file name, e.g. {shown(path / 'run.json')}",
                           2)
    if path.exists() or path.is_symlink():
        try:
            read_summary(path)
        except RavekitError:
            raise RavekitError(f"--summary {shown(path)}: exists and is not a run summary, so it is not replaced; "
                               "choose another path", 2) from None


def write_run_summary(target: SummaryTarget, report: BatchReport, exit_code: int, error: str | None = None) -> None:
    """Write ``report`` as the run summary ``target`` names (:mod:`ravekit.io.run_summary`)."""
    from ravekit.io.run_summary import make_summary, write_summary

    write_summary(target.path, make_summary(
        command=target.command, shard=target.shard, output=target.output, written=report.written,
        skipped=report.skipped, failed=report.failed, seconds=report.seconds,
        complete=not report.stdout_closed and error is None, exit_code=exit_code, error=error))
    target.written = True


def summarised(prog: str, args, body: Callable[[], int]) -> Callable[[], int]:
    """``body`` that leaves a ``--summary`` also when the run stops before its batch ends (an input that
    is not there, a model that does not load, Ctrl-C): only a killed run has none."""
    def guarded() -> int:
        from ravekit.commands.batch import BatchReport

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
                write_run_summary(target, BatchReport(), code, one_line(why))
            raise

    return guarded
