"""What inspector.py does for each mode, as plain functions of plain values.

Results (text, JSON) go to stdout, or to stderr where stdout carries the
paths of saved files; errors, notes and output paths go through the
:class:`Reports` callbacks the command gives, so this module prints no
command-line message itself.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ravekit.errors import RavekitError
from ravekit.inspection import detail, report
from ravekit.inspection.checkpoint import stored_config
from ravekit.inspection.facts import open_model, state_dict_rows, summarize
from ravekit.io.inputs import check_link
from ravekit.merging.keys import align_state_dicts, identical_keys


@dataclass
class Reports:
    """How a run reports: ``error`` and ``info`` take one message line, ``output`` an output path for
    stdout, and ``check_output`` refuses (raises) a path that stdout cannot carry."""

    error: Callable[[str], object]  # fatal()'s exit code is ignored
    info: Callable[[str], None]
    output: Callable[[Path], None]
    check_output: Callable[[Path], None]


def _report_failure(path: Path, exc: Exception, out: Reports) -> None:
    name = str(path)
    shown = name if name.isprintable() else repr(name)  # a line break in a name must not split the line
    if isinstance(exc, RavekitError):
        message = str(exc) if name in str(exc) or shown in str(exc) else f"{shown}: {exc}"
    else:  # a model this code does not understand must not end the batch
        message = f"{shown}: unexpected {type(exc).__name__}: {exc} (set RAVEKIT_DEBUG=1 for a traceback)"
    out.error(message)


def _inspect(path: Path):
    check_link(path)
    ins = open_model(path)
    rows = state_dict_rows(ins.state_dict, ins.kinds)
    return ins, rows, summarize(ins, rows)


def _emit_paths(paths: list[Path], to_stderr: bool, out: Reports) -> None:
    for p in paths:
        out.info(f"saved {p}") if to_stderr else out.output(p)


def run_summary(pairs: list[tuple[Path, Path]], as_json: bool, save: bool, out_dir: Path, out: Reports) -> int:
    """Summarise each model; a bad file is reported and the others still shown.

    Text goes to stdout, or to stderr with ``save`` (stdout then carries the
    CSV paths, through ``out.output``).  ``as_json``
    prints one JSON list, one object per input in order; a file that failed
    appears as ``{"path": ..., "error": ...}``.
    """
    failed, records, summaries = 0, [], []
    text_out = sys.stderr if save and not as_json else sys.stdout
    for path, rel in pairs:
        try:
            if save and not as_json:
                out.check_output(out_dir / rel)  # before writing CSVs whose paths could not be listed
            _, rows, s = _inspect(path)
        except Exception as exc:  # noqa: BLE001 - reported, then the batch goes on
            _report_failure(path, exc, out)
            failed += 1
            records.append({"path": str(path), "error": str(exc)})
            continue
        summaries.append(s)
        records.append(s)
        if not as_json:
            text_out.write(report.render_summary(s) + "\n")
            text_out.flush()
        if save:
            _emit_paths(report.save_model_csvs(s, rows, out_dir, rel), to_stderr=as_json, out=out)
    if save and len(summaries) > 1:
        path = report.write_csv(out_dir / "summary.csv", [report.summary_record(s) for s in summaries])
        _emit_paths([path], to_stderr=as_json, out=out)
    if as_json:
        print(json.dumps(records, indent=2, allow_nan=False))
    if failed:
        out.error(f"{failed} of {len(pairs)} files could not be inspected (see above)")
    return 1 if failed else 0


def _names(pairs: list[tuple[Path, Path]]) -> list[str]:
    names = [p.name for p, _ in pairs]
    return names if len(set(names)) == len(names) else [str(rel) for _, rel in pairs]


def run_compare(pairs: list[tuple[Path, Path]], as_json: bool, save: bool, out_dir: Path, out: Reports) -> int:
    """Summaries side by side, then the state_dict keys aligned (see :func:`align_state_dicts`)."""
    if len(pairs) < 2:
        raise RavekitError("--compare needs two or more models; give them all to --input", 2)
    loaded, failed = [], 0
    for (path, rel), name in zip(pairs, _names(pairs)):
        try:
            ins, rows, s = _inspect(path)
        except Exception as exc:  # noqa: BLE001
            _report_failure(path, exc, out)
            failed += 1
            continue
        loaded.append((name, rel, ins.state_dict, rows, s))
    if len(loaded) < 2:
        raise RavekitError("fewer than two models could be read, nothing to compare")
    names = [n for n, *_ in loaded]
    sds = {n: sd for n, _, sd, _, _ in loaded}
    alignment = align_state_dicts(sds)
    same = identical_keys(sds, alignment.same_shape)
    summaries = [s for *_, s in loaded]
    if as_json:
        print(json.dumps({"models": summaries, "keys": {**alignment.to_dict(), "identical": same}},
                         indent=2, allow_nan=False))
    else:
        (sys.stderr if save else sys.stdout).write(report.render_compare(summaries, names, alignment, same))
    if save:
        shapes = {n: {r["name"]: r["shape"] for r in rows} for n, _, _, rows, _ in loaded}
        paths = [report.write_csv(out_dir / "compare.csv", report.alignment_records(alignment, shapes)),
                 report.write_csv(out_dir / "summary.csv", [report.summary_record(s) for s in summaries])]
        _emit_paths(paths, to_stderr=as_json, out=out)
    if failed:
        out.error(f"{failed} of {len(pairs)} files could not be read; compared the others")
    return 1 if failed else 0


def run_detail(path: Path, mode: str, out: Reports, stdin: TextIO | None = None) -> int:
    """``mode`` ``dict``: list state_dict entries, then answer queries; ``attr``: the same for members.

    Returns 1 when queries came from a pipe and some named nothing (a script's
    typo must not pass unnoticed), else 0.
    """
    stdin = stdin or sys.stdin
    check_link(path)
    ins = open_model(path)
    if mode == "dict":
        rows = state_dict_rows(ins.state_dict, ins.kinds)
        print(detail.state_dict_listing(rows), flush=True)
        names = list(ins.state_dict)
        unknown = detail.query_loop(names, lambda n: detail.describe_tensor(n, ins.state_dict[n], ins.kinds[n]),
                                    stdin=stdin, what="entry")
    else:
        members = detail.module_members(ins.module) if ins.module is not None else detail.checkpoint_members(
            ins.checkpoint or {})
        print(detail.members_listing(members), flush=True)
        unknown = detail.query_loop(list(members), lambda n: members[n][2](), stdin=stdin, what="member")
    if unknown and not stdin.isatty():
        out.error(f"{unknown} of the names read from stdin named no {'entry' if mode == 'dict' else 'member'} "
              f"of {path} (see above)")
        return 1
    return 0


def run_config(paths: list[Path], as_json: bool, out: Reports) -> int:
    """Print every stored training configuration of each input."""
    failed, records = 0, []
    for path in paths:
        try:
            ckpt = open_model(path).checkpoint
            found = stored_config(path, ckpt)
            if not found:
                raise RavekitError(
                    f"{path}: no training configuration stored: no config.gin beside it or in the folders "
                    "above, and no hyper_parameters/config inside it (exported .ts models do not keep one)")
        except Exception as exc:  # noqa: BLE001
            _report_failure(path, exc, out)
            failed += 1
            continue
        for source, config in found:
            records.append({"path": str(path), "source": source, "config": config})
            if not as_json:
                text = config if isinstance(config, str) else json.dumps(config, indent=2, default=str)
                print(f"== {source} ==\n{text.rstrip()}\n")
    if as_json:
        print(json.dumps(records, indent=2, default=str))
    return 1 if failed else 0
