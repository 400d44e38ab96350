"""Writing sound files: whole, readable at any length, and honest about clipping.

- The container is chosen ahead from the known length: a WAV's sizes are
  unsigned 32-bit, so audio of 4 GiB or more goes to RF64 (a WAV with 64-bit
  sizes), which every reader of long files understands and Pure Data does
  not; the writer warns when it picks it.  libsndfile would otherwise write a
  clamped header that makes every reader stop at 4 GiB.
- Integer PCM cannot hold samples beyond [-1, 1]: they are clipped, counted
  across the blocks of a file, and reported once when the file is finished.
- A failed write (a full disk) is :func:`fileio.write_error`, never mistaken
  for another failure, and the partial file is removed.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ravekit.errors import RavekitError
from ravekit.io.files import atomic_path, write_error

if TYPE_CHECKING:
    from soundfile import SoundFile

SAMPLE_BYTES = {"PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}
INTEGER_SUBTYPES = ("PCM_16", "PCM_24", "PCM_32")
WAV_MAX_BYTES = 0xFFFFFFFF  # a RIFF chunk size is an unsigned 32-bit count of the bytes after it
# libsndfile's WAV headers measure 44 to 600 bytes (64 channels; tests/test_long_outputs.py
# measures them): the room left for them below the limit, with a wide margin.
HEADER_ALLOWANCE = 4096


def wav_data_bytes(frames: int, channels: int, subtype: str) -> int:
    """Bytes of sample data a WAV of ``frames`` frames holds (padded to even, as RIFF chunks are)."""
    data = int(frames) * int(channels) * SAMPLE_BYTES[subtype]
    return data + data % 2


def choose_container(frames: int | None, channels: int, subtype: str) -> str:
    """``"WAV"``, or ``"RF64"`` when the data would not fit a WAV's 32-bit sizes.

    ``frames`` None (length not known ahead) gives ``"WAV"``; the writer then
    refuses to go past the limit rather than write a clamped header.
    """
    if frames is None:
        return "WAV"
    return "RF64" if wav_data_bytes(frames, channels, subtype) + HEADER_ALLOWANCE > WAV_MAX_BYTES else "WAV"


def _no_peak_chunk(f) -> None:
    """Leave out libsndfile's PEAK chunk: it holds a timestamp, so the same
    audio written twice would differ byte for byte."""
    from soundfile import _ffi, _snd

    SFC_SET_ADD_PEAK_CHUNK = 0x1050
    _snd.sf_command(f._file, SFC_SET_ADD_PEAK_CHUNK, _ffi.NULL, 0)


def _libsndfile_reason(f, exc: BaseException) -> str:
    """libsndfile's own words for the last error of ``f`` ("No space left on device")."""
    from soundfile import _ffi, _snd

    text = ""
    if f is not None and getattr(f, "_file", None) is not None and _snd.sf_error(f._file):
        text = _ffi.string(_snd.sf_strerror(f._file)).decode("utf-8", "replace")
    if not text and isinstance(exc, OSError):
        text = exc.strerror or ""
    text = text or getattr(exc, "error_string", "") or str(exc)
    return text.split(" : ", 1)[-1].strip().rstrip(".")  # "System error : No space left on device."


def _default_warn(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=3)


class AudioWriter:
    """Write ``(channels, samples)`` blocks to a sound file that appears only when closed cleanly.

    Use as a context manager; on an exception the partial file is removed.

    Parameters
    ----------
    path : str or os.PathLike
        Destination; its suffix picks the format (``.wav``: WAV, or RF64 when too long).
    sr : int > 0
        Sample rate in Hz.
    channels : int > 0
        Channel count.
    subtype : str
        soundfile subtype (``FLOAT``, ``PCM_16``, ``PCM_24``, ``DOUBLE``).
    frames : int >= 0 or None
        The length in samples per channel that will be written, when known
        ahead: it chooses WAV or RF64.
    warn : callable(str) or None
        Called with each warning (RF64 chosen, samples clipped); default ``warnings.warn``.

    After a clean close, ``summary`` holds ``container``, ``subtype``,
    ``frames``, ``peak`` (largest absolute sample) and ``clipped`` (samples
    beyond [-1, 1] that an integer subtype clipped; 0 for float).
    """

    def __init__(self, path: os.PathLike | str, sr: int, channels: int, subtype: str = "FLOAT",
                 frames: int | None = None, warn: Callable[[str], None] | None = None):
        self.path, self.sr, self.channels, self.subtype = Path(path), sr, channels, subtype
        self.warn = warn or _default_warn
        is_wav = self.path.suffix.lower() == ".wav"
        self.container = choose_container(frames, channels, subtype) if is_wav else None
        self._limit = (WAV_MAX_BYTES - HEADER_ALLOWANCE) if self.container == "WAV" else None
        self.frames, self.peak, self.clipped = 0, 0.0, 0
        self.summary: dict | None = None
        self._file: SoundFile | None = None

    def _open_file(self) -> SoundFile:
        if self._file is None:
            raise RuntimeError("AudioWriter writes only inside its with block")
        return self._file

    def __enter__(self) -> AudioWriter:
        import soundfile as sf

        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        try:
            self._file = sf.SoundFile(str(tmp), "w", samplerate=int(self.sr), channels=self.channels,
                                      subtype=self.subtype, format=self.container)
        except Exception as exc:  # noqa: BLE001
            self._atomic.__exit__(type(exc), exc, None)
            raise RavekitError(f"{self.path}: cannot write audio ({exc}); check --subtype and the file ending") \
                from None
        _no_peak_chunk(self._file)
        if self.container == "RF64":
            self.warn(f"{self.path}: too long for a WAV (4 GiB or more of {self.subtype} samples), written as "
                      "RF64, which Pure Data cannot read (ffmpeg, sox, Audacity and soundfile can)")
        return self

    def write(self, block: np.ndarray) -> None:
        """Append ``block``, an ``np.ndarray [shape=(channels, samples)]``."""
        if block.size:
            self.peak = max(self.peak, float(np.abs(block).max()))
            if self.subtype in INTEGER_SUBTYPES:
                self.clipped += int(np.count_nonzero(np.abs(block) > 1.0))
        self.frames += block.shape[1]
        if self._limit is not None and wav_data_bytes(self.frames, self.channels, self.subtype) > self._limit:
            raise RavekitError(f"could not write {self.path}: more audio than a WAV holds (4 GiB); "
                               "this writer was not told the length ahead, so it cannot use RF64")
        import soundfile as sf

        try:
            self._open_file().write(np.ascontiguousarray(block.T))
        except (sf.LibsndfileError, OSError) as exc:
            raise write_error(self.path, _libsndfile_reason(self._file, exc)) from None

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._open_file().close()  # rewrites the header: may fail on a full disk too
        except Exception as close_exc:  # noqa: BLE001 - libsndfile's errors are of several types
            if exc is None:
                exc = write_error(self.path, _libsndfile_reason(None, close_exc))
                self._atomic.__exit__(RavekitError, exc, None)  # removes the partial file
                raise exc from None
        self._atomic.__exit__(exc_type, exc, tb)  # renames into place, or removes the partial file
        if exc is None:
            self._finish()

    def _finish(self) -> None:
        total = self.frames * self.channels
        self.summary = {"container": self.container or self.path.suffix.lstrip(".").upper(),
                        "subtype": self.subtype, "frames": self.frames, "peak": self.peak,
                        "clipped": self.clipped}
        if self.clipped:
            self.warn(f"{self.path}: {self.clipped} of {total} samples ({self.clipped / total:.1%}) were outside "
                      f"[-1, 1] and clipped by {self.subtype} (peak {self.peak:.3g}, "
                      f"{20 * np.log10(self.peak):+.1f} dBFS); use --subtype FLOAT to keep them")


def save_audio(path: os.PathLike | str, y: np.ndarray, sr: int, subtype: str = "FLOAT",
               warn: Callable[[str], None] | None = None) -> Path:
    """Write a whole signal, atomically; the format follows the suffix of ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        Destination.
    y : np.ndarray [shape=(channels, samples)]
        The audio.
    sr : int > 0
        Sample rate in Hz.
    subtype : str
        soundfile subtype (``FLOAT``, ``PCM_16``, ``PCM_24``, ``DOUBLE``).
    warn : callable(str) or None
        Called with each warning (RF64 chosen, samples clipped).

    Returns
    -------
    path : pathlib.Path
        The file written.
    """
    with AudioWriter(path, sr, y.shape[0], subtype, frames=y.shape[1], warn=warn) as w:
        w.write(y)
    return Path(path)
