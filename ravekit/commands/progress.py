"""Progress of a batch in seconds of audio: one bar, or lines for the parent of ``--jobs`` workers.

Library code (``engine.encode``, ``engine.decode``, ``engine.transfer``) reports progress through
a callback, ``progress(seconds)``, after every model call, and never prints.
The batch runner turns those calls into one of:

- a tqdm bar on stderr counting seconds of audio, which moves within a long
  file chunk by chunk (only when stderr is a terminal and ``--quiet`` is off);
- machine-readable lines on stderr when the process is a worker of
  ``--jobs`` (``WORKER_ENV`` set): the parent parses them, draws one bar for
  all its workers, prints every error once and one summary;
- nothing.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TextIO

from ravekit.commands import console

# A worker's machine lines start with this (ASCII record separator, then a tag),
# which no path or message of ours does; the parent never relays them.
PREFIX = "\x1eravekit-progress "
WORKER_ENV = "RAVEKIT_JOBS_WORKER"
BAR_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} s of audio [{elapsed}<{remaining}]"

# start-up: tqdm and the audio readers load where a bar is drawn or a file measured, so --help is fast.


def is_worker() -> bool:
    """True in a worker process started by ``--jobs`` (it reports to its parent instead of drawing)."""
    return os.environ.get(WORKER_ENV) == "1"


class Progress:
    """Seconds of audio to do and done, shown as a bar, sent to a parent, or dropped.

    Parameters
    ----------
    prog : str
        The script's name, for the bar and message lines.
    quiet : bool
        No bar (errors are still shown).
    stream : TextIO or None
        Where the bar and messages go (default: ``sys.stderr`` at call time).
    worker : bool or None
        Send machine lines instead of drawing (default: ``is_worker()``).

    Amounts (``add_total``, ``advance``) are in seconds of audio.
    """

    def __init__(self, prog: str, quiet: bool = False, stream: TextIO | None = None,
                 worker: bool | None = None):
        self.prog = prog
        self.stream = stream or sys.stderr
        self.worker = is_worker() if worker is None else worker
        self.total = 0.0
        self.done = 0.0
        self.bar = None
        if not quiet and not self.worker and _isatty(self.stream):
            from tqdm import tqdm

            self.bar = tqdm(total=None, desc=prog, file=self.stream, dynamic_ncols=True, bar_format=BAR_FORMAT)
            console.message_writer = self.write  # the scripts' warnings and notes, above the bar

    @property
    def active(self) -> bool:
        """Whether anyone sees the progress (otherwise totals need not be estimated)."""
        return self.bar is not None or self.worker

    def _send(self, **message) -> None:
        self.stream.write(PREFIX + json.dumps(message) + "\n")
        self.stream.flush()

    def _draw(self) -> None:
        if self.bar is None:
            return
        # Rounded, so the bar reads "12.5/60.0" rather than float noise.
        self.bar.total = round(self.total, 1) if self.total else None
        self.bar.n = round(min(self.done, self.total or self.done), 1)
        self.bar.refresh()

    def add_total(self, seconds: float) -> None:
        if seconds <= 0:
            return
        self.total += seconds
        if self.worker:
            self._send(total=seconds)
        elif self.bar is not None:
            self._draw()

    def advance(self, seconds: float) -> None:
        if seconds <= 0:
            return
        self.done += seconds
        if self.worker:
            self._send(advance=seconds)
        elif self.bar is not None:
            self._draw()

    def write(self, line: str) -> None:
        """A message line on the stream, above the bar."""
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def error(self, message: str) -> None:
        """A failed file: shown once, here or by the parent."""
        if self.worker:
            self._send(error=message)
        else:
            self.write(f"{self.prog}: error: {message}")

    def report(self, files: dict | None = None, **counts) -> None:
        """A worker's final counts (written, skipped, failed), for the parent's one summary; ``files``, the
        paths behind them, for the parent's ``--summary``."""
        if self.worker:
            self._send(report=counts, **({"files": files} if files is not None else {}))

    def close(self) -> None:
        if self.bar is not None:
            if console.message_writer == self.write:
                console.message_writer = None
            self.bar.close()
            self.bar = None


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class FileMeter:
    """The progress callback handed to library code for one file of a batch.

    ``expected`` is the file's duration estimated up front (None: unknown;
    then the total grows as the file goes).  Steps are capped at it, and
    :meth:`finish` tops the file up to it, so a file that ends early, fails or
    is skipped still leaves the bar where the next file starts.
    """

    def __init__(self, progress: Progress, expected: float | None):
        self.progress, self.expected, self.done = progress, expected, 0.0

    def __call__(self, seconds: float) -> None:
        if self.expected is None:
            self.progress.add_total(seconds)
            step = seconds
        else:
            step = max(0.0, min(seconds, self.expected - self.done))
        self.done += seconds
        self.progress.advance(step)

    def finish(self) -> None:
        if self.expected is not None and self.done < self.expected:
            self.progress.advance(self.expected - self.done)
            self.done = self.expected


def audio_seconds(path: os.PathLike | str) -> tuple[float, int] | None:
    """``(duration, channels)`` from the file's header when soundfile reads it cheaply, else None."""
    from ravekit.io.audio import SOUNDFILE_EXTENSIONS

    if Path(path).suffix.lower() not in SOUNDFILE_EXTENSIONS:
        return None  # ffprobe per file would cost more than the bar is worth
    try:
        import soundfile as sf

        i = sf.info(str(path))
        return (i.frames / i.samplerate, int(i.channels)) if i.samplerate > 0 else None
    except Exception:  # noqa: BLE001 - an unreadable file is reported when it is processed
        return None


def latent_seconds(path: os.PathLike | str, sr: int, ratio: int) -> float | None:
    """Seconds of audio a latent file decodes to (frames from its header), or None."""
    try:
        if Path(path).suffix.lower() == ".npy":
            import numpy as np

            frames = np.load(str(path), mmap_mode="r", allow_pickle=False).shape[-1]
        else:
            import soundfile as sf

            frames = sf.info(str(path)).frames
        return frames * ratio / sr
    except Exception:  # noqa: BLE001 - an unreadable file is reported when it is processed
        return None
