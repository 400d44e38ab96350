"""Run summaries: each batch run's outcome as JSON (``--summary FILE``), and gathering them across shards.

A run summary says what one run of encoder.py or decoder.py did with every
file: written, skipped (already there), failed with the reason; and whether the
run went through its whole batch.  It is written atomically when the run ends,
also when it stops early (a model that does not load, Ctrl-C), so a missing
summary means a run that was killed.  The format is in docs/formats.md.

:func:`gather` reads the summaries of the shards of one batch (``--shard K/N``
runs, e.g. the tasks of a SLURM job array) and says which files failed, which
runs did not finish and which shards have no summary at all.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ravekit.errors import RavekitError
from ravekit.io import formats
from ravekit.io.files import read_json, write_json

SUMMARY_FORMAT = formats.RUN_SUMMARY
SUMMARY_VERSION = 1


def make_summary(*, command: str, shard: tuple[int, int] | None, output: os.PathLike | str,
                 written: Sequence[os.PathLike | str], skipped: Sequence[os.PathLike | str],
                 failed: Sequence[tuple[os.PathLike | str, str]], seconds: float, complete: bool,
                 exit_code: int, error: str | None = None) -> dict:
    """The summary of one run as a JSON-ready dict (fields: docs/formats.md)."""
    return {
        "format": SUMMARY_FORMAT, "format_version": SUMMARY_VERSION,
        "command": command,
        "shard": f"{shard[0]}/{shard[1]}" if shard else None,
        "output": str(output),
        "host": socket.gethostname(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(float(seconds), 3),
        "complete": bool(complete),
        "exit_code": int(exit_code),
        "error": error,
        "counts": {"written": len(written), "skipped": len(skipped), "failed": len(failed)},
        "written": [str(p) for p in written],
        "skipped": [str(p) for p in skipped],
        "failed": [{"input": str(p), "error": message} for p, message in failed],
    }


def write_summary(path: os.PathLike | str, summary: dict) -> Path:
    """Write ``summary`` to ``path`` atomically, making its folder if needed."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RavekitError(f"{target.parent}: cannot make the folder of --summary ({exc.strerror}); "
                           "choose another path") from None
    return write_json(target, summary)


def read_summary(path: os.PathLike | str) -> dict:
    """Read a run summary, refusing by name a file that is not one (or from a newer ravekit)."""
    data = read_json(path)
    if data.get("format") != SUMMARY_FORMAT:
        raise RavekitError(f"{path}: not a ravekit run summary (format {str(data.get('format'))[:40]!r}); "
                           "pass the files that encoder.py / decoder.py --summary wrote")
    version = data.get("format_version")
    if not isinstance(version, int) or version > SUMMARY_VERSION:
        raise RavekitError(f"{path}: written by a newer ravekit (format_version {version!r}); upgrade ravekit")
    failed = data.get("failed")
    counts = data.get("counts")
    if (not isinstance(failed, list) or not all(isinstance(f, dict) and isinstance(f.get("input"), str)
                                                and isinstance(f.get("error"), str) for f in failed)
            or not isinstance(counts, dict) or not isinstance(data.get("complete"), bool)):
        raise RavekitError(f"{path}: a damaged run summary ('failed', 'counts' or 'complete' is not as written); "
                           "run that shard again")
    return data


@dataclass
class Gathered:
    """What the summaries of one batch say, put together."""

    summaries: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {"written": 0, "skipped": 0, "failed": 0})
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (input, error, summary file)
    unfinished: list[tuple[str, str]] = field(default_factory=list)  # (summary file, why)
    missing_shards: list[str] = field(default_factory=list)  # "K/N" with no summary

    @property
    def ok(self) -> bool:
        """Every file of every shard is written or was there already."""
        return not (self.failed or self.unfinished or self.missing_shards)


def gather(paths: Sequence[os.PathLike | str], expect: int | None = None) -> Gathered:
    """Put the run summaries ``paths`` together.

    Parameters
    ----------
    paths : run summaries (``--summary`` files), e.g. one per task of a job array.
    expect : the number of shards the batch was cut into; None takes the N of the summaries' ``K/N``.

    Returns
    -------
    Gathered
        Every failed file with its reason, every run that did not go through its batch, and
        every shard K of N that has no summary (its task was killed, or never ran).

    Raises
    ------
    RavekitError
        No summaries, or a file that is not one.
    """
    if not paths:
        raise RavekitError("no run summaries given; pass the files written by --summary", 2)
    out = Gathered()
    shards: set[int] = set()
    totals: set[int] = set() if expect is None else {expect}
    for path in paths:
        data = read_summary(path)
        out.summaries += 1
        for key in out.counts:
            value = data["counts"].get(key, 0)
            out.counts[key] += value if isinstance(value, int) else 0
        out.failed += [(f["input"], f["error"], str(path)) for f in data["failed"]]
        if not data["complete"] or data.get("error"):
            why = data.get("error") or "the run ended before its batch did"
            out.unfinished.append((str(path), str(why)))
        shard = data.get("shard")
        if isinstance(shard, str) and "/" in shard:
            k_text, _, n_text = shard.partition("/")
            if k_text.isdigit() and n_text.isdigit():
                shards.add(int(k_text))
                if expect is None:
                    totals.add(int(n_text))
    for n in totals:
        out.missing_shards += [f"{k}/{n}" for k in range(1, n + 1) if k not in shards]
    return out
