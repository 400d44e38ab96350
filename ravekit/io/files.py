"""Atomic writes: an output either appears whole or not at all.

Every file the toolkit writes goes to a temporary name in the destination
folder first and is renamed into place, so an interrupted run never leaves a
half-written file that a resumed run would take for finished.

Temporary names say who made them: ``.NAME.ravekit-HOST-PID-XXXXXXXX.part.EXT``
(HOST a short hash of the machine's name, PID the writing process), so that a
later run can remove those of a writer that was killed (:func:`stale_part`)
and nothing else.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import hashlib
import json
import os
import re
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ravekit.errors import RavekitError

if TYPE_CHECKING:
    from typing import Self


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files readable by their owner only; outputs should get the
# permissions any new file gets (shared clusters, web servers).
FILE_MODE = 0o666 & ~_umask()


_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG)
# numpy's tofile reports a short write (a full disk) without an errno: "206720 requested and 64480 written".
_SHORT_WRITE = re.compile(r"(\d+) requested and (\d+) written")

# A short hash of the machine's name: a process id means nothing on another host sharing the folder.
HOST = hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:6]
_PART = re.compile(r"^\..*\.ravekit-([0-9a-f]{6})-(\d+)-[A-Za-z0-9_]{8}\.part(\.[^.]*)?$")
# Destination -> temporary name, for the files of an OutputSet being written (see atomic_path).
_STAGED: contextvars.ContextVar[dict[str, Path] | None] = contextvars.ContextVar("ravekit_staged", default=None)


def part_path(dest: Path) -> Path:
    """Create an empty temporary file beside ``dest``, named for its writer (this process), and return it.

    The destination's suffix is kept at the end, because writers such as
    soundfile choose the format from it.  Raises ``OSError``.
    """
    prefix = f".{dest.stem[:100]}.ravekit-{HOST}-{os.getpid()}-"
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=f".part{dest.suffix}", dir=dest.parent)
    os.close(fd)
    return Path(tmp)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process: alive
    return True


def stale_part(path: Path) -> bool:
    """Whether ``path`` is a temporary file of a ravekit writer on this machine that is gone (killed).

    Only names made by :func:`part_path`, only regular files of this user,
    and only when their writing process no longer runs.
    """
    found = _PART.match(path.name)
    if not found or found.group(1) != HOST or int(found.group(2)) == os.getpid():
        return False
    try:
        st = path.lstat()
    except OSError:
        return False
    import stat

    return stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and not _alive(int(found.group(2)))


def write_error(path: os.PathLike | str, cause: BaseException | str) -> RavekitError:
    """The one message for a failed write: ``could not write PATH: reason; what to do``.

    ``cause`` is the ``OSError`` (its ``strerror`` is the reason, e.g. "No
    space left on device") or a reason already put into words by a library
    that does not raise ``OSError`` (libsndfile, torch).
    """
    short = _SHORT_WRITE.search(str(cause))
    if short:
        requested, written = short.groups()
        reason = f"the disk is full (only {written} of {requested} bytes could be written)"
        full = True
    elif isinstance(cause, OSError):
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

    The temporary name keeps the destination's suffix (:func:`part_path`).
    Inside an :class:`OutputSet` that holds ``path``, the set's temporary is
    yielded and left for the set to rename with the others.
    """
    dest = Path(path)
    staged = (_STAGED.get() or {}).get(os.path.abspath(dest))
    if staged is not None:
        yield staged
        return
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = part_path(dest)
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
        part_path(folder / "ravekit-check").unlink()
    except (FileExistsError, NotADirectoryError):
        raise RavekitError(f"{folder}: cannot write there (a file, not a folder, is in the way); "
                           "choose another --output") from None
    except OSError as exc:
        raise RavekitError(f"{folder}: cannot write there ({exc.strerror or exc}); choose another --output") from None


def atomic_write(path: os.PathLike | str, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp_path)`` and move the result onto ``path`` atomically.

    ``write``'s return value is ignored (``Path.write_text`` returns a count).

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
    except RecursionError:  # json's C decoder gives up on deep nesting: no file of ours is nested so
        raise RavekitError(f"{path}: nested too deeply to be a file of ravekit's; delete or regenerate it") from None
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


class OutputSet:
    """Several files that belong together, written as a whole: the last one marks the set complete.

    Each file is first written to a hidden temporary name beside it
    (``staged[path]``, or simply ``path`` given to any writer of this module
    inside the ``with`` block: :func:`atomic_path`); :meth:`commit` then
    removes the old marker, renames every other file into place and the
    marker last.  A failed write leaves the earlier set untouched.  Leaving the ``with``
    block without committing removes the temporaries, so an interrupted run
    leaves either nothing new or files without their marker, which
    :func:`incomplete_set` recognises.

    >>> with OutputSet([model, report, recipe]) as staged:   # recipe = the marker
    ...     save(staged[model]); write(staged[report]); write(staged[recipe])
    ...     staged.commit()
    """

    def __init__(self, paths: list[Path]):
        self.paths = [Path(p) for p in paths]
        self._tmp: dict[Path, Path] = {}  # every staged name, committed or not
        self._pending: list[Path] = []  # temporaries not renamed into place yet

    def __getitem__(self, path: os.PathLike | str) -> Path:
        return self._tmp[Path(path)]

    def named(self, text: str) -> str:
        """``text`` (a message) with every temporary name replaced by its final one, as the user knows it."""
        for dest, tmp in self._tmp.items():
            text = text.replace(str(tmp), str(dest)).replace(tmp.name, dest.name)
        return text

    def __enter__(self) -> Self:
        for dest in self.paths:
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                tmp = part_path(dest)
            except OSError as exc:
                self._cleanup()
                raise RavekitError(f"{dest.parent}: cannot write there ({exc.strerror}); "
                                   "choose another --output folder") from None
            self._tmp[dest] = tmp
            self._pending.append(tmp)
        self._token = _STAGED.set({**(_STAGED.get() or {}), **{os.path.abspath(d): t for d, t in self._tmp.items()}})
        return self

    def commit(self) -> None:
        """Rename the files into place, the marker (the last path) last."""
        *rest, marker = self.paths
        # An older set's marker would vouch for a set that is only half replaced; a set of one file
        # is replaced in one rename, and removing it first would only lose it to a kill in between.
        if rest:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(marker)
        for dest in [*rest, marker]:
            tmp = self._tmp[dest]
            try:
                os.chmod(tmp, FILE_MODE)
                os.replace(tmp, dest)
            except OSError as exc:
                raise write_error(dest, exc) from None
            self._pending.remove(tmp)

    def _cleanup(self) -> None:
        for tmp in self._pending:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self._pending.clear()

    def __exit__(self, kind, exc, tb) -> None:
        _STAGED.reset(self._token)
        self._cleanup()
        if isinstance(exc, RavekitError):
            # Writers name the file they were given: give the user the real name.
            message = str(exc)
            for dest, tmp in self._tmp.items():
                message = message.replace(str(tmp), str(dest))
            if message != str(exc):
                raise RavekitError(message, exc.exit_code) from None


def incomplete_set(paths: list[Path]) -> list[Path]:
    """The files of a set (marker last, as for :class:`OutputSet`) on disk without their marker."""
    *rest, marker = [Path(p) for p in paths]
    return [] if marker.exists() else [p for p in rest if p.exists()]
