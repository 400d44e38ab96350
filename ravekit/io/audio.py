"""Audio input: reading block by block, resampling.

Reading goes through soundfile (WAV, AIFF, FLAC, OGG/Vorbis/Opus, MP3); other
formats (m4a, aac, ...) are decoded by the ``ffmpeg`` command when it is on
PATH.  Files are read in blocks and resampled with a streaming soxr resampler,
so memory does not grow with the file's length.  Arrays are float32 with
shape ``(channels, samples)`` throughout.  Writing is ``audio_write``'s.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ravekit.choices import AUDIO_EXTENSIONS, SOUNDFILE_EXTENSIONS  # noqa: F401 (re-exported)
from ravekit.errors import RavekitError
from ravekit.io.header import truncation

BLOCK = 1 << 18  # frames per read: large enough to amortise calls, small next to a model chunk


@dataclass
class AudioInfo:
    """What a file holds before conversion: rate in Hz, channels, length in frames."""

    path: str
    sr: int
    channels: int
    frames: int | None  # None when the decoder cannot tell in advance (ffmpeg streams)
    via_ffmpeg: bool = False

    @property
    def duration(self) -> float | None:
        return None if self.frames is None else self.frames / self.sr


def _ffprobe(path: Path) -> AudioInfo:
    if not shutil.which("ffmpeg") or not shutil.which("ffprobe"):
        raise RavekitError(
            f"{path}: soundfile cannot read this format and ffmpeg is not installed; "
            "install ffmpeg (e.g. apt-get install ffmpeg) or convert the file to WAV/FLAC"
        )
    cmd = ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
           "stream=sample_rate,channels", "-of", "json", str(path)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    try:
        stream = json.loads(res.stdout)["streams"][0]
        return AudioInfo(str(path), int(stream["sample_rate"]), int(stream["channels"]), None, True)
    except (ValueError, KeyError, IndexError):
        reason = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "no audio stream"
        raise RavekitError(f"{path}: not a readable audio file ({reason}); check or re-export the file") from None


def probe(path: os.PathLike | str) -> AudioInfo:
    """Sample rate, channels and length of an audio file, without reading it."""
    import soundfile as sf

    p = Path(path)
    if not p.is_file():
        raise RavekitError(f"{p}: audio file not found")
    if p.stat().st_size == 0:
        raise RavekitError(f"{p}: the file is empty; remove it or export it again")
    try:
        with _libmpg123_said(p):  # its "Xing stream size off" lines: _soundfile_blocks tells what they mean
            i = sf.info(str(p))
    except Exception as exc:  # noqa: BLE001 - libsndfile's errors are of several types
        cut = truncation(p)  # libsndfile calls a CAF cut short "malformed"
        if cut:
            raise truncated_error(p, *cut, None) from None
        if p.suffix.lower() in SOUNDFILE_EXTENSIONS and not (shutil.which("ffmpeg") and shutil.which("ffprobe")):
            reason = str(exc).split(":")[-1].strip() or type(exc).__name__
            raise RavekitError(f"{p}: not a readable audio file ({reason}); the file may be corrupt, "
                               "export it again or install ffmpeg for unusual encodings") from None
        return _ffprobe(p)
    if p.suffix.lower() in (".ogg", ".opus", ".oga") and not _ogg_ends(p):
        # An Ogg header holds no length: libsndfile would read a cut file as a complete shorter one.
        raise RavekitError(f"{p}: damaged or truncated: the Ogg stream stops without its end-of-stream page "
                           f"({i.frames / i.samplerate:.2f} s readable); copy or export it again")
    if i.frames == 0:
        raise RavekitError(f"{p}: the file holds no audio samples; remove it or export it again")
    cut = truncation(p)
    if cut:
        raise truncated_error(p, *cut, i.samplerate)
    return AudioInfo(str(p), int(i.samplerate), int(i.channels), int(i.frames))


def truncated_error(path: os.PathLike | str, announced: int, present: int, sr: float | None,
                    fix: str = "copy or export it again, or keep what is there by rewriting it "
                               "(e.g. ffmpeg -i FILE whole.wav)") -> RavekitError:
    """A file cut short is a failure, never taken for a complete shorter one."""
    if not sr:  # the rate is unknown when libsndfile cannot open the file
        return RavekitError(f"{path}: truncated: the header announces {announced} frames, the file holds "
                            f"{present}; {fix}")
    return RavekitError(f"{path}: truncated: the header announces {announced} frames ({announced / sr:.2f} s), "
                        f"the file holds {present} ({present / sr:.2f} s); {fix}")


# Formats whose header states the exact length: fewer frames read than that is a cut-off file.
# (An MP3's or Ogg's length is an estimate.)
EXACT_LENGTH = (".wav", ".aif", ".aiff", ".flac")


def _ogg_ends(path: Path) -> bool:
    """Whether an Ogg file's pages run whole to one flagged end-of-stream (a cut file's do not)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        while True:
            head = f.read(27)
            if len(head) < 27 or head[:4] != b"OggS":
                return False
            table = f.read(head[26])
            end = f.tell() + sum(table)
            if len(table) < head[26] or end > size:
                return False
            if head[5] & 0x04:
                return True
            f.seek(end)


def _frames_before_error(path: str, block: int = 4096) -> int:
    """Frames that decode before libsndfile fails (a failed read loses its whole block, so count in small ones)."""
    import soundfile as sf

    read = 0
    with contextlib.suppress(sf.LibsndfileError), sf.SoundFile(path) as f:
        while n := len(f.read(block, dtype="float32", always_2d=True)):
            read += n
    return read


_STDERR = threading.Lock()
_MPG123_LINES = ("Warning: ", "Note: ", "[src/libmpg123")


@contextlib.contextmanager
def _libmpg123_said(path: Path) -> Iterator[list[str]]:
    """Catch what libmpg123 prints on fd 2 while an MP3 is opened; yields the list of its lines.

    It writes straight to the descriptor, past Python, lines a user cannot
    place ("Warning: Xing stream size off by more than 1%"); they mean the
    file is not the length its header says, which the caller turns into a
    message.  Anything else written meanwhile (another thread's) is passed on.
    """
    said: list[str] = []
    if Path(path).suffix.lower() != ".mp3":
        yield said
        return
    with _STDERR:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):
            yield said
            return
        with tempfile.TemporaryFile() as tmp:
            os.dup2(tmp.fileno(), 2)
            try:
                yield said
            finally:
                with contextlib.suppress(OSError, ValueError):
                    sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                tmp.seek(0)
                for line in tmp.read().decode(errors="replace").splitlines(keepends=True):
                    if line.startswith(_MPG123_LINES):
                        said.append(line.strip())
                    else:
                        os.write(2, line.encode())


def _soundfile_blocks(info: AudioInfo, block: int) -> Iterator[np.ndarray]:
    import soundfile as sf

    read = 0
    suffix = Path(info.path).suffix.lower()
    try:
        with _libmpg123_said(Path(info.path)) as said:
            f = sf.SoundFile(info.path)
        with f:
            while True:
                data = f.read(block, dtype="float32", always_2d=True)
                if not len(data):
                    break
                read += len(data)
                yield data.T
    except sf.LibsndfileError as exc:
        if suffix == ".flac" and info.frames and read < info.frames:
            # STREAMINFO's total is exact: a decoder that loses sync short of it met the end of a cut file.
            raise truncated_error(info.path, info.frames, _frames_before_error(info.path), info.sr,
                                  f"decoding stopped there ({exc}); copy or export it again") from None
        raise RavekitError(f"{info.path}: cannot decode the audio ({exc}); the file may be corrupt") from None
    if info.frames and read < info.frames and suffix in EXACT_LENGTH:
        raise truncated_error(info.path, info.frames, read, info.sr)
    if suffix == ".mp3" and any("Xing" in line for line in said) and info.frames and read < info.frames:
        # The Xing header counts the frames; libmpg123 found fewer bytes than it announces.
        raise truncated_error(info.path, info.frames, read, info.sr)


def _ffmpeg_blocks(info: AudioInfo, block: int) -> Iterator[np.ndarray]:
    cmd = ["ffmpeg", "-v", "error", "-nostdin", "-i", info.path, "-map", "0:a:0",
           "-f", "f32le", "-acodec", "pcm_f32le", "-"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None  # both are PIPEs
    frame_bytes = 4 * info.channels
    try:
        while True:
            raw = proc.stdout.read(block * frame_bytes)
            if not raw:
                break
            usable = len(raw) - len(raw) % frame_bytes
            yield np.frombuffer(raw[:usable], dtype="<f4").reshape(-1, info.channels).T
    finally:
        proc.stdout.close()
        err = proc.stderr.read().decode(errors="replace").strip()
        proc.stderr.close()
        if proc.wait() != 0:
            raise RavekitError(f"{info.path}: ffmpeg could not decode it ({err.splitlines()[-1] if err else 'error'})")


def iter_audio(path: os.PathLike | str, sr: int | None = None, block: int = BLOCK,
               info: AudioInfo | None = None) -> Iterator[np.ndarray]:
    """Yield float32 blocks of a file, resampled to ``sr`` Hz.

    Resampling uses soxr's streaming high-quality resampler, so the blocks
    join into exactly the signal a whole-file resampling gives.

    Parameters
    ----------
    path : str or os.PathLike
        The sound file.
    sr : int > 0 or None
        Output sample rate in Hz; ``None`` keeps the file's rate.
    block : int > 0
        Samples per block read from the file (at the file's rate).
    info : AudioInfo or None
        The file's :func:`probe`, when already known.

    Yields
    ------
    block : np.ndarray [shape=(channels, samples), dtype=float32]
        Consecutive pieces of the signal; their lengths vary when resampling.
    """
    info = info or probe(path)
    blocks = _ffmpeg_blocks(info, block) if info.via_ffmpeg else _soundfile_blocks(info, block)
    if sr is None or sr == info.sr:
        yield from blocks
        return
    import soxr

    stream = soxr.ResampleStream(info.sr, sr, info.channels, dtype="float32", quality="HQ")
    for data in blocks:
        out = stream.resample_chunk(np.ascontiguousarray(data.T))
        if len(out):
            yield out.T
    out = stream.resample_chunk(np.zeros((0, info.channels), dtype=np.float32), last=True)
    if len(out):
        yield out.T


def read_audio(path: os.PathLike | str, sr: int | None = None) -> tuple[np.ndarray, AudioInfo]:
    """Read a whole file.

    Parameters
    ----------
    path : str or os.PathLike
        The sound file.
    sr : int > 0 or None
        Sample rate in Hz to resample to; ``None`` keeps the file's rate.

    Returns
    -------
    y : np.ndarray [shape=(channels, samples), dtype=float32]
        The audio.
    info : AudioInfo
        The file's :func:`probe` (its own rate and length, before resampling).
    """
    info = probe(path)
    blocks = list(iter_audio(path, sr, info=info))
    if not blocks:
        raise RavekitError(f"{path}: the file holds no audio samples; remove it or export it again")
    return np.concatenate(blocks, axis=1), info


