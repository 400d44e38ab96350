"""Atomic writes: an output either appears whole or not at all.

Every file the toolkit writes goes to a temporary name in the destination
folder first and is renamed into place, so an interrupted run never leaves a
half-written file that a resumed run would take for finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from .errors import RavekitError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files readable by their owner only; outputs should get the
# permissions any new file gets (shared clusters, web servers).
FILE_MODE = 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(path: os.PathLike | str) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary name keeps the destination's suffix, because writers such as
    soundfile choose the format from it.
    """
    dest = Path(path)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=f".part{dest.suffix}", dir=dest.parent)
        os.close(fd)
    except OSError as exc:
        raise RavekitError(
            f"{dest.parent}: cannot write there ({exc.strerror}); choose another --output folder"
        ) from None
    try:
        yield Path(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def check_writable(folder: Path) -> None:
    """Fail once, before any work, when outputs could not be written to ``folder``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".ravekit-check-"):
            pass
    except OSError as exc:
        raise RavekitError(f"{folder}: cannot write there ({exc.strerror or exc}); choose another --output") from None


def atomic_write(path: os.PathLike | str, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and move the result onto ``path`` atomically."""
    with atomic_path(path) as tmp:
        try:
            write(tmp)
        except OSError as exc:
            raise RavekitError(f"{path}: cannot write ({exc.strerror or exc}); check free space and permissions") from None
    return Path(path)


def write_json(path: os.PathLike | str, data: dict) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    text = json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def read_json(path: os.PathLike | str) -> dict:
    """Read a JSON object; a broken file is a user-facing error naming it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RavekitError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RavekitError(f"{path}: not a readable JSON file ({exc}); delete or regenerate it") from None
    if not isinstance(data, dict):
        raise RavekitError(f"{path}: expected a JSON object; delete or regenerate it")
    return data
