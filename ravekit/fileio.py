"""Atomic writes: an output either appears whole or not at all.

Every file the toolkit writes goes to a temporary name in the destination
folder first and is renamed into place, so an interrupted run never leaves a
half-written file that a resumed run would take for finished.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
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


_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG)


def write_error(path: os.PathLike | str, cause: BaseException | str) -> RavekitError:
    """The one message for a failed write: ``could not write PATH: reason; what to do``.

    ``cause`` is the ``OSError`` (its ``strerror`` is the reason, e.g. "No
    space left on device") or a reason already put into words by a library
    that does not raise ``OSError`` (libsndfile, torch).
    """
    if isinstance(cause, OSError):
        reason = cause.strerror or str(cause) or type(cause).__name__
        full = cause.errno in _FULL
    else:
        reason = str(cause).strip() or type(cause).__name__
        full = any(w in reason.lower() for w in ("space", "quota", "too large"))
    hint = "free some space or choose another --output" if full else \
        "check the disk and the folder's permissions, or choose another --output"
    return RavekitError(f"could not write {path}: {reason}; {hint}")


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
        try:
            os.chmod(tmp, FILE_MODE)
            os.replace(tmp, dest)
        except OSError as exc:
            raise write_error(dest, exc) from None
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
    """Call ``write(tmp_path)`` and move the result onto ``path`` atomically.

    An ``OSError`` while writing (a full disk, a lost mount) becomes
    :func:`write_error`; the partial temporary file is removed.
    """
    with atomic_path(path) as tmp:
        try:
            write(tmp)
        except OSError as exc:
            raise write_error(path, exc) from None
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


def sha256_of(path: os.PathLike | str, block: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()
