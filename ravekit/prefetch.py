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
from pathlib import Path
from typing import Iterator

import numpy as np

from .audio import AudioInfo, iter_audio, probe

_INFO, _BLOCK, _END, _ERROR = range(4)


class AudioPrefetcher:
    """Stream the audio of ``paths``, in order, resampled to ``sr`` Hz.

    Parameters
    ----------
    paths : the files, in the order they will be asked for.
    sr : sample rate to resample to.
    max_blocks : how many decoded blocks may wait in memory (each ``audio.BLOCK`` frames).

    Use :meth:`open` with the index of each file in turn; files may be
    abandoned half-read (their remaining blocks are dropped).
    """

    def __init__(self, paths: list[Path], sr: int, max_blocks: int = 8):
        self._paths, self._sr = list(paths), sr
        self._queue: queue.Queue = queue.Queue(maxsize=max(2, max_blocks))
        self._stop = threading.Event()
        self._pending = None  # an item read ahead that belongs to a later file
        self._thread = threading.Thread(target=self._read_all, name="ravekit-reader", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _read_all(self) -> None:
        for index, path in enumerate(self._paths):
            try:
                info = probe(path)
                if not self._put((index, _INFO, info)):
                    return
                for block in iter_audio(path, self._sr, info=info):
                    if not self._put((index, _BLOCK, block)):
                        return
                self._put((index, _END, None))
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
                if not self._put((index, _ERROR, exc)):
                    return

    def _next(self, index: int):
        while True:
            item, self._pending = (self._pending, None) if self._pending else (self._queue.get(), None)
            if item[0] < index:
                continue  # leftovers of an abandoned file
            if item[0] > index:
                raise RuntimeError(f"prefetcher asked for file {index} after it moved on")
            return item

    def open(self, index: int) -> tuple[AudioInfo, Iterator[np.ndarray]]:
        """The info and the block iterator of file ``index`` (raises its read error, if any)."""
        _, kind, payload = self._next(index)
        if kind == _ERROR:
            raise payload
        info = payload

        def blocks() -> Iterator[np.ndarray]:
            while True:
                _, kind, payload = self._next(index)
                if kind == _END:
                    return
                if kind == _ERROR:
                    raise payload
                yield payload

        return info, blocks()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> "AudioPrefetcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
