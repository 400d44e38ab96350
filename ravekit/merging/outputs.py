"""Where a merge writes: the model ``--output`` names, its report, recipe and audio renders.

Rules: a folder (existing, ending in a separator, or a name without a
suffix) gets ``merged.ts`` inside it; the report defaults to the model's name
with ``.csv``, the recipe is always the model's name with ``.json``; no output
may replace an input or another output; without ``force`` an existing output,
or an interrupted earlier merge (a set without its recipe), is refused.
"""

from __future__ import annotations

import os
from pathlib import Path

from ravekit.errors import RavekitError
from ravekit.io.files import incomplete_set
from ravekit.merging.align_report import alignment_path
from ravekit.merging.sweep import sweep_paths

# start-up: averager.py checks its outputs before any work; numpy and torch load only for renders.


def _resolve(path: str) -> Path:
    return Path(path).expanduser().resolve()


def merged_path(output: str) -> Path:
    """The model file ``--output`` names: a folder (existing, ending in a separator, or without a
    suffix) gets ``merged.ts`` inside it."""
    out = Path(output).expanduser()
    seps = (os.sep, os.altsep or os.sep)
    if out.is_dir() or output.endswith(seps) or not out.suffix:
        return out / "merged.ts"
    return out


def output_paths(output: str, report: str | None, models: list[str], audio: str | None,
                 force: bool, align: bool = False, sweep: int = 0) -> tuple[Path, Path, Path, list[Path]]:
    """The merged model, report, recipe and extra files (audio renders A, B, ..., merged, with ``align``
    the unaligned merge, then the listening page; then the alignment CSV with ``align``; then the
    ``sweep`` renders), checked against inputs."""
    from ravekit.merging.audio import render_paths
    from ravekit.merging.listen import listen_path

    out = merged_path(output)
    report_path = Path(report).expanduser() if report else out.with_suffix(".csv")
    renders = [*render_paths(audio, out, len(models), align), listen_path(out)] if audio else []
    if align:
        renders.append(alignment_path(report_path))
    if sweep and audio:
        renders += sweep_paths(audio, out, sweep)
    inputs = {_resolve(m): m for m in models}
    if audio:
        inputs[_resolve(audio)] = audio
    recipe = out.with_suffix(".json")
    written = [out, report_path, recipe, *renders]
    if len({_resolve(str(p)) for p in written}) < len(written):
        raise RavekitError(f"{report_path}: the report would overwrite another output (the model, its .json "
                           "recipe or an audio render); choose another --report", 2)
    for p in written:
        if _resolve(str(p)) in inputs:
            raise RavekitError(f"{p}: this output is also an input ({inputs[_resolve(str(p))]}); outputs never "
                               "replace inputs, choose another --output or --report", 2)
    if not force:
        # The recipe is renamed into place last: a set without it is unfinished, not done.
        unfinished = incomplete_set([out, report_path, *renders, recipe])
        if unfinished:
            raise RavekitError(f"{unfinished[0]}: an earlier merge was interrupted ({recipe} is missing, so "
                               f"{len(unfinished)} file(s) of it may be stale); use --force to redo it, or choose "
                               "another --output")
        for p in written:
            if p.exists():
                raise RavekitError(f"{p}: already exists; pass --force to overwrite it or choose another --output")
    return out, report_path, recipe, renders
