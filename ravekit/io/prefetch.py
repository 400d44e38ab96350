"""Read, decode and resample upcoming audio on a background thread.

While the model encodes one chunk, the next blocks (of this file or the next
ones) are being decoded (MP3, FLAC, ...) and resampled, so the CPU is not
left idle between model calls.  libsndfile, soxr and numpy release the GIL
while they work, so one reader thread runs truly beside torch.  The queue is
bounded, so memory stays that of a few blocks whatever the files' lengths.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ravekit.io.audio import AudioInfo, iter_audio, probe

_INFO, _BLOCK, _END, _ERROR = range(4)


class AudioPrefetcher:
    """Stream the audio of ``paths``, in order, resampled to ``sr`` Hz.

    Parameters
    ----------
    paths : list of pathlib.Path
        The files, in the order they will be asked for.
    sr : int > 0
        Sample rate in Hz to resample to.
    max_blocks : int > 0
        How many decoded blocks of one file may wait in memory (each
        ``audio.BLOCK`` samples per channel).
    workers : int > 0
        Reader threads, each on its own file.  One is the default: on
        two cores a second reader slowed real models down more than it
        sped cheap ones up (measured with tools/bench.py).

    Use :meth:`open` with the index of each file in turn; files may be
    abandoned half-read (their remaining blocks are dropped).
    """

    def __init__(self, paths: list[Path], sr: int, max_blocks: int = 8, workers: int = 1):
        self._paths, self._sr, self._max = list(paths), sr, max(2, max_blocks)
        self._queues: dict[int, queue.Queue] = {}
        self._slots = threading.Semaphore(workers + 1)  # files read ahead, plus the one being consumed
        self._lock = threading.Lock()
        self._next = 0
        self._stop = threading.Event()
        self._abandoned: set[int] = set()
        self._consumed = 0  # files below this index are finished
        self._threads = [threading.Thread(target=self._work, name=f"ravekit-reader-{i}", daemon=True)
                         for i in range(max(1, workers))]
        for t in self._threads:
            t.start()

    def _queue(self, index: int) -> queue.Queue:
        with self._lock:
            return self._queues.setdefault(index, queue.Queue(maxsize=self._max))

    def _put(self, index: int, item) -> bool:
        if index in self._abandoned:
            return False
        q = self._queue(index)
        while not self._stop.is_set() and index not in self._abandoned:
            try:
                q.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        while not self._stop.is_set():
            # A slot per file bounds memory: a reader waits while the consumer is files behind.
            while not self._slots.acquire(timeout=0.2):
                if self._stop.is_set():
                    return
            with self._lock:
                index, self._next = self._next, self._next + 1
            if index >= len(self._paths):
                return
            self._read(index, self._paths[index])

    def _read(self, index: int, path: Path) -> None:
        try:
            info = probe(path)
            if not self._put(index, (_INFO, info)):
                return
            for block in iter_audio(path, self._sr, info=info):
                if not self._put(index, (_BLOCK, block)):
                    return
            self._put(index, (_END, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._put(index, (_ERROR, exc))

    def _finish(self, index: int) -> None:
        """Done with file ``index``: free its slot and drop what is left of it."""
        with self._lock:
            if index in self._abandoned:
                return
            self._abandoned.add(index)
            self._queues.pop(index, None)
        self._slots.release()

    def open(self, index: int) -> tuple[AudioInfo, Iterator[np.ndarray]]:
        """The info and the block iterator of file ``index`` (raises its read error, if any)."""
        for earlier in range(self._consumed, index):
            self._finish(earlier)
        self._consumed = max(self._consumed, index)
        q = self._queue(index)
        kind, payload = q.get()
        if kind == _ERROR:
            self._finish(index)
            raise payload
        info = payload

        def blocks() -> Iterator[np.ndarray]:
            while True:
                kind, payload = q.get()
                if kind == _BLOCK:
                    yield payload
                    continue
                self._finish(index)
                if kind == _ERROR:
                    raise payload
                return

        return info, blocks()

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> AudioPrefetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
