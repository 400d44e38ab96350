"""Finding a batch's inputs: folders walked, paths read from stdin, outputs mirrored, shards taken.

Standard library only, so a script's command line is checked before numpy
or torch load.

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
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ravekit.errors import RavekitError, shown


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
    return take_shard(jobs, shard)


def take_shard(items: list, shard: tuple[int, int] | None) -> list:
    """The ``k``-th of ``n`` interleaved slices of ``items`` (``shard = (k, n)``); all of them for None."""
    if shard is None:
        return items
    k, n = shard
    return items[k - 1::n]


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """Parse ``K/N`` into ``(k, n)`` with ``1 <= k <= n``."""
    if text is None:
        return None
    try:
        k_text, n_text = text.split("/")
        k, n = int(k_text), int(n_text)
    except ValueError:
        raise RavekitError(f"--shard {text!r} is not of the form K/N, e.g. --shard 1/4", exit_code=2) from None
    if not (n >= 1 and 1 <= k <= n):
        raise RavekitError(f"--shard {text}: K must be from 1 to N, e.g. --shard 1/{max(n, 1)}", exit_code=2)
    return k, n


def parse_extensions(text: str) -> tuple[str, ...]:
    exts = []
    for part in text.split(","):
        part = part.strip().lower()
        if part:
            exts.append(part if part.startswith(".") else "." + part)
    return tuple(exts)


def read_paths(stream: Iterable[str] | TextIO, null: bool = False) -> list[str]:
    """The paths on ``stream``: one per line, or NUL-separated with ``null``; blank entries are skipped.

    Only the separator is cut: file names may begin or end with spaces.
    """
    if null:
        raw = getattr(stream, "buffer", None)
        # The bytes, not the text layer: its newline translation would turn a "\r" in a name into "\n".
        text = os.fsdecode(raw.read()) if raw is not None else "".join(stream)
        return [p for p in text.split("\0") if p.strip()]
    return [line.rstrip("\r\n") for line in stream if line.strip()]
