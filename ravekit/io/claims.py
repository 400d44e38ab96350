"""Claiming an output before any work: it can be written, no other run writes it, no stale leftovers.

:func:`claim_output` checks that the folder can be written (creating it),
takes a lock file in it for the rest of the run (``fcntl.flock``, so a killed
run's lock goes with it), and removes the temporary files of writers that were
killed (:func:`ravekit.io.files.stale_part`).  A second run that wants the
same lock fails at once with one line, before loading any model.

Locks are held until the innermost :func:`scope` ends (every script's
``run_main`` opens one), or for the life of the process outside any scope.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from pathlib import Path

from ravekit.errors import RavekitError
from ravekit.io.files import check_writable, stale_part

LOCK = ".ravekit.lock"
_SCOPE: contextvars.ContextVar[contextlib.ExitStack | None] = contextvars.ContextVar("ravekit_claims", default=None)
_HELD: dict[str, list[int]] = {}  # lock file -> [fd, holds]: a process never locks itself out


@contextlib.contextmanager
def scope() -> Iterator[None]:
    """Release, at its end, the locks taken inside it."""
    stack = contextlib.ExitStack()
    token = _SCOPE.set(stack)
    try:
        with stack:
            yield
    finally:
        _SCOPE.reset(token)


def _holder(path: Path) -> str:
    """`` (pid N)`` of the run holding ``path``, when it wrote one that still runs."""
    try:
        pid = int(path.read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return ""
    return f" (pid {pid})"


def _lock(path: Path, shared: bool, busy: str) -> None:
    import fcntl

    key = os.path.abspath(path)
    if key in _HELD:
        _HELD[key][1] += 1
    else:
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RavekitError(busy.format(pid=_holder(path))) from None
            except OSError:
                os.close(fd)  # a file system without locks (some network mounts): go on unguarded
                return
            # Its last holder may have removed the file in between: hold the one on disk.
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        if not shared:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        _HELD[key] = [fd, 1]
    stack = _SCOPE.get()
    if stack is not None:
        stack.callback(_unlock, key, shared)


def _unlock(key: str, shared: bool) -> None:
    held = _HELD.get(key)
    if held is None:
        return
    held[1] -= 1
    if held[1] > 0:
        return
    del _HELD[key]
    if not shared:  # removed while still held, so no one can take the file being removed
        with contextlib.suppress(OSError):
            os.unlink(key)
    os.close(held[0])


def _remove_if_failed(made: list[Path], failure: type[BaseException] | None) -> None:
    """Remove the folders ``made`` (deepest first) while they are empty, when the run failed."""
    if failure is None:
        return
    for folder in made:
        try:
            folder.rmdir()
        except OSError:
            return  # not empty (or gone): leave it, and every folder above it


def remove_stale_parts(folder: Path, recursive: bool = False) -> list[Path]:
    """Remove the temporary files in ``folder`` (and below with ``recursive``) of writers that were killed."""
    removed = []
    walk = os.walk(folder) if recursive else [(str(folder), [], os.listdir(folder))]
    for root, dirs, files in walk:
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            path = Path(root, name)
            if name.startswith(".") and stale_part(path):
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed.append(path)
    return removed


def claim_output(folder: Path, *, lock: str | None = LOCK, shared: bool = False, subject: str | None = None,
                 recursive: bool = False) -> None:
    """Make ``folder`` this run's: writable (created if needed), locked, cleared of stale temporaries.

    Parameters
    ----------
    folder : where the run writes.
    lock : the lock file's name in ``folder``; None takes no lock (a ``--jobs`` worker, whose parent holds it).
    shared : a shared hold (``--shard`` runs share the folder; each locks its shard exclusively too).
    subject : what the refusal names, a file written there (default: the folder itself).
    recursive : also clear the folders below (a batch mirrors its inputs' folders).

    Raises ``RavekitError`` (exit 1) when the folder cannot be written or another run holds the lock.
    A folder made here is removed again, while still empty, when the run fails
    (a merge refused after the claim leaves no empty folder behind).
    """
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    check_writable(folder)
    stack = _SCOPE.get()
    if made and stack is not None:
        # Pushed before the lock, so it runs after the lock file is gone (an ExitStack unwinds backwards).
        stack.push(lambda kind, exc, tb: _remove_if_failed(made, kind))
    if lock is not None:
        where = f"{subject}: another ravekit run{{pid}} is writing it" if subject else \
            f"{folder}: another ravekit run{{pid}} is writing there"
        _lock(folder / lock, shared, where + "; wait for it to finish or choose another --output")
    with contextlib.suppress(OSError):
        remove_stale_parts(folder, recursive)
