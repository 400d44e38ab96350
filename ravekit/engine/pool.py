"""Model calls of one file spread over processes: every core on a single long file, the same bytes.

Two threads inside one convolution make its result depend on how the sum was
split (:mod:`ravekit.engine.layout`), and on a busy machine a thread that
waits for its twin stalls the whole call.  Chunks of a file, computed with
their own context (:mod:`ravekit.engine.chunks`), are independent of each
other, so they can run side by side in separate single-threaded processes
instead, each call computed exactly as it would be alone.

:class:`ChunkPool` keeps ``workers - 1`` helper processes; this process is
the last worker.  :func:`run_calls` hands each call to an idle helper, runs
it here otherwise, and yields the results in order, holding at most a few
calls in flight so memory stays flat.  A streaming export carries state from
call to call, so its calls always run here, in order.
"""

from __future__ import annotations

import os
import signal
import weakref
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import BrokenExecutor, Future, ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ravekit.engine.layout import use_threads
from ravekit.engine.memory import release_freed_memory
from ravekit.engine.model import load_model
from ravekit.errors import RavekitError
from ravekit.seeds import seed_torch

if TYPE_CHECKING:
    from ravekit.engine.model import RaveModel

# A call: the input window, the torch seed to set before it, and the part of
# the output to keep along the last axis (start, stop).
Call = tuple[np.ndarray, int | None, tuple[int, int]]


def call_model(model: RaveModel, method: str, x: np.ndarray, seed: int | None, keep: tuple[int, int]) -> np.ndarray:
    """One model call: seed, run ``method`` on ``x[None]``, keep ``[..., keep[0]:keep[1]]`` of item 0.

    The kept part is a copy: a v2 export's output is a view of a wider tensor
    (its 8 dims of all 128), which a view would keep alive.
    """
    seed_torch(seed)
    y = getattr(model, method)(torch.from_numpy(np.ascontiguousarray(x))[None]).cpu().numpy()[0]
    kept = y[..., keep[0]:keep[1]].copy()
    del y
    release_freed_memory()
    return kept


# The pool that serves each model of this process (ChunkPool.serve): the model itself need not know it.
_SERVED: weakref.WeakKeyDictionary[Any, ChunkPool] = weakref.WeakKeyDictionary()

# The models a helper process has loaded, by path.
_LOADED: dict[str, Any] = {}


def _start_helper(threads: int) -> None:
    # Ctrl-C reaches the whole process group: the parent stops the pool, a helper must not die loudly.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    use_threads(threads)


def _helper_load(path: str, sha256: str = "") -> Any:
    """The model at ``path`` in this helper, loaded once; with ``sha256``, checked to be the parent's."""

    if path not in _LOADED:
        _LOADED[path] = load_model(path, "cpu")
    if sha256 and _LOADED[path].info.sha256 != sha256:
        raise RavekitError(f"{path}: the model file changed while the run was using it; run again")
    return _LOADED[path]


def _helper_warm(path: str) -> None:
    _helper_load(path)  # the model stays in the helper; only "done" goes back


def _helper_call(path: str, sha256: str, method: str, x: np.ndarray, seed: int | None,
                 keep: tuple[int, int]) -> np.ndarray:
    return call_model(_helper_load(path, sha256), method, x, seed, keep)


class ChunkPool:
    """Helper processes that run model calls of one file side by side with this process.

    Parameters
    ----------
    workers : processes in all, this one included; 1 runs every call here.
    threads : intra-op threads of every process (1: the reproducible layout).
    preload : paths of the models the run will use: the helpers start at once
        and load them while this process starts up itself (torch, the model,
        its context), so they are ready for the first file.  Without it they
        start at the first file with more than one call.

    Each helper loads a model once, by path.
    """

    def __init__(self, workers: int, threads: int = 1, preload: Sequence[str] = ()):
        self.helpers = max(0, workers - 1)
        self.threads = threads
        self._executor: ProcessPoolExecutor | None = None
        self._warm: dict[str, list[Future]] = {}
        if self.helpers:
            for path in dict.fromkeys(os.fspath(p) for p in preload):
                self._warming(self._started(), path)

    def serve(self, model: RaveModel) -> None:
        """Share ``model``'s calls (:func:`run_calls`) with this pool's helpers, which load it by its path."""
        _SERVED[model] = self

    def _started(self) -> ProcessPoolExecutor:
        if self._executor is None:
            import multiprocessing

            # spawn, not fork: this process may already run torch's thread pools, which a fork
            # would copy in an unusable state.
            self._executor = ProcessPoolExecutor(self.helpers, multiprocessing.get_context("spawn"),
                                                 initializer=_start_helper, initargs=(self.threads,))
        return self._executor

    def close(self) -> None:
        """Stop the helpers at once: pending calls are cancelled, and a helper still loading is not waited for."""
        if self._executor is not None:
            executor, self._executor = self._executor, None
            self._warm.clear()
            processes = list(getattr(executor, "_processes", {}).values())
            executor.shutdown(wait=False, cancel_futures=True)
            # Their work is done or no longer wanted; a short run must not wait for a helper's start-up.
            for process in processes:
                process.terminate()
            for process in processes:
                process.join()

    def __enter__(self) -> ChunkPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _warming(self, executor: ProcessPoolExecutor, path: str) -> list[Future]:
        """One model load per helper, started once per model: until they are done, the helpers count as busy.

        A helper starts Python, torch and the model in a second or more; a call
        queued behind that would hold up a short file, which this process
        computes meanwhile instead.
        """
        if path not in self._warm:
            self._warm[path] = [executor.submit(_helper_warm, path) for _ in range(self.helpers)]
        return self._warm[path]

    def run(self, model: RaveModel, method: str, calls: Iterable[Call]) -> Iterator[np.ndarray]:
        """The results of ``calls`` in order, computed here and by idle helpers."""
        it = iter(calls)
        first = next(it, None)
        if first is None:
            return
        second = next(it, None)
        chained = _chain(first, second, it)
        if second is None or not self.helpers or model.info.streaming or model.device.type != "cpu" \
                or not model.info.path or not os.path.exists(model.info.path):
            yield from (call_model(model, method, *c) for c in chained if c is not None)
            return
        path, sha = str(model.info.path), model.info.sha256
        pending: deque[Future | np.ndarray] = deque()
        busy: list[Future] = []
        limit = 2 * (self.helpers + 1)  # calls in flight: enough to keep every process busy, no more
        try:
            executor = self._started()
            warm = self._warming(executor, path)
            for call in chained:
                busy = [f for f in busy if not f.done()]
                ready = sum(f.done() for f in warm)
                for f in warm:
                    if f.done() and f.exception() is not None:
                        raise f.exception()  # type: ignore[misc]  # the model does not load in a helper
                if len(busy) < ready:
                    future = executor.submit(_helper_call, path, sha, method, *call)
                    busy.append(future)
                    pending.append(future)
                else:
                    pending.append(call_model(model, method, *call))
                while pending and (_done(pending[0]) or len(pending) >= limit):
                    yield _result(pending.popleft())
            while pending:
                yield _result(pending.popleft())
        except BrokenExecutor:
            self.close()
            raise RavekitError(f"{path}: a helper process running the model died (out of memory, or killed); run "
                               "again, with fewer --jobs or a smaller --chunk if memory is short") from None
        finally:
            # A file given up part-way (an error, a closed output) leaves no calls behind to hold up the next.
            for entry in pending:
                if isinstance(entry, Future):
                    entry.cancel()


def _done(entry: Future | np.ndarray) -> bool:
    return not isinstance(entry, Future) or entry.done()


def _result(entry: Future | np.ndarray) -> np.ndarray:
    return entry.result() if isinstance(entry, Future) else entry


def _chain(first: Call, second: Call | None, rest: Iterator[Call]) -> Iterator[Call]:
    yield first
    if second is not None:
        yield second
        yield from rest


def run_calls(model: RaveModel, method: str, calls: Iterable[Call]) -> Iterator[np.ndarray]:
    """The results of ``calls`` to ``model.method`` in order, spread over the pool serving it, if any."""
    pool = _SERVED.get(model)
    if pool is None:
        for call in calls:
            yield call_model(model, method, *call)
    else:
        yield from pool.run(model, method, calls)
