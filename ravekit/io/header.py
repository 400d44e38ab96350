"""What a sound file's header announces, against what the file holds.

Covered: WAV/RIFX/RF64, AIFF/AIFC (plain samples), W64, CAF (constant bytes per
packet) and AU/SND.  Containers without a length (IRCAM) or that libsndfile
rarely meets (VOC, PAF, AVR, MAT, ...) are not checked.

libsndfile quietly shortens the length of a file whose data chunk is cut off
(an interrupted copy or download) to what is present, so a truncated file
reads as a complete, shorter one.  The header still says how long it should
be: :func:`truncation` compares the two from the chunk layout alone.
"""

from __future__ import annotations

import os
import struct

# Streamed writers (ffmpeg to a pipe) leave these in the size fields: "unknown", not a length.
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)
# AIFF-C encodings that store plain samples (others are compressed: their sizes say nothing of frames).
_AIFC_PLAIN = (b"NONE", b"sowt", b"fl32", b"FL32", b"fl64", b"FL64", b"in24", b"in32", b"twos")


def _chunks(f, size: int, big_endian: bool):
    """Yield ``(id, size, data_offset)`` of the chunks after a 12-byte RIFF/FORM header."""
    fmt = ">4sI" if big_endian else "<4sI"
    pos = 12
    while pos + 8 <= size:
        f.seek(pos)
        cid, csize = struct.unpack(fmt, f.read(8))
        yield cid, csize, pos + 8
        pos += 8 + csize + (csize & 1)


def _riff(f, size: int, big_endian: bool, rf64: bool) -> tuple[int, int] | None:
    block_align, ds64_data = None, None
    for cid, csize, at in _chunks(f, size, big_endian):
        if cid == b"ds64" and csize >= 16:
            f.seek(at)
            _, ds64_data = struct.unpack("<QQ", f.read(16))
        elif cid == b"fmt " and csize >= 14:
            f.seek(at + 12)
            (block_align,) = struct.unpack(">H" if big_endian else "<H", f.read(2))
        elif cid == b"data":
            if rf64 and csize == 0xFFFFFFFF:
                csize = ds64_data
            if not block_align or csize is None or csize in _UNKNOWN_SIZES:
                return None
            return csize // block_align, max(0, size - at) // block_align
    return None


def _aiff(f, size: int, compressed: bool) -> tuple[int, int] | None:
    frames = frame_bytes = None
    for cid, csize, at in _chunks(f, size, True):
        if cid == b"COMM" and csize >= 18:
            f.seek(at)
            channels, frames, bits = struct.unpack(">hIh", f.read(8))
            if compressed and csize >= 22:
                f.seek(at + 18)
                if f.read(4) not in _AIFC_PLAIN:
                    return None
            frame_bytes = channels * ((bits + 7) // 8)
        elif cid == b"SSND" and frames is not None and frame_bytes:
            f.seek(at)
            (offset,) = struct.unpack(">I", f.read(4))
            present = max(0, size - (at + 8 + offset)) // frame_bytes
            return frames, present
    return None


def _w64(f, size: int) -> tuple[int, int] | None:
    """Sony Wave64: 16-byte GUIDs and 64-bit sizes (counting the 24-byte chunk header), 8-byte aligned."""
    block_align, pos = None, 40
    while pos + 24 <= size:
        f.seek(pos)
        guid, csize = f.read(16), struct.unpack("<Q", f.read(8))[0]
        if guid[:4] == b"fmt " and csize >= 24 + 14:
            f.seek(pos + 24 + 12)
            (block_align,) = struct.unpack("<H", f.read(2))
        elif guid[:4] == b"data":
            if not block_align or csize < 24:
                return None
            return (csize - 24) // block_align, max(0, size - pos - 24) // block_align
        if csize < 24:
            return None
        pos += csize + (-csize % 8)
    return None


def _caf(f, size: int) -> tuple[int, int] | None:
    """Apple CAF: big-endian chunks with 64-bit sizes; ``data`` starts with a 4-byte edit count."""
    bytes_per_packet = frames_per_packet = None
    pos = 8
    while pos + 12 <= size:
        f.seek(pos)
        ctype, csize = struct.unpack(">4sq", f.read(12))
        if ctype == b"desc" and csize >= 32:
            _, _, _, bytes_per_packet, frames_per_packet = struct.unpack(">d4sIII", f.read(24))
        elif ctype == b"data":
            if not bytes_per_packet or not frames_per_packet or csize < 4:
                return None  # compressed packets (their table says the length), or "to the end of the file"
            present = max(0, size - pos - 12 - 4)
            return ((csize - 4) // bytes_per_packet * frames_per_packet,
                    present // bytes_per_packet * frames_per_packet)
        if csize < 0:
            return None
        pos += 12 + csize
    return None


# AU encodings of plain samples -> bytes per sample (others are compressed).
_AU_BYTES = {1: 1, 2: 1, 3: 2, 4: 3, 5: 4, 6: 4, 7: 8, 27: 1}


def _au(f, size: int, big_endian: bool) -> tuple[int, int] | None:
    """Sun/NeXT AU: data offset, data size (0xFFFFFFFF: unknown), encoding, rate, channels."""
    f.seek(4)
    offset, data, encoding, _, channels = struct.unpack(">5I" if big_endian else "<5I", f.read(20))
    frame = _AU_BYTES.get(encoding, 0) * channels
    if not frame or data in _UNKNOWN_SIZES:
        return None
    return data // frame, max(0, size - offset) // frame


def truncation(path: os.PathLike | str) -> tuple[int, int] | None:
    """``(announced_frames, present_frames)`` of a WAV/RF64/AIFF/W64/CAF/AU cut short, else None.

    None too for other formats, for headers that do not state a length
    (streamed WAVs) and for files that hold all they announce.
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12:
                return None
            kind, form = head[:4], head[8:12]
            if kind in (b"RIFF", b"RIFX", b"RF64") and form == b"WAVE":
                found = _riff(f, size, kind == b"RIFX", kind == b"RF64")
            elif kind == b"FORM" and form in (b"AIFF", b"AIFC"):
                found = _aiff(f, size, form == b"AIFC")
            elif kind == b"riff" and head[4:8] == bytes.fromhex("2e91cf11"):
                f.seek(24)
                found = _w64(f, size) if f.read(4) == b"wave" else None
            elif kind == b"caff":
                found = _caf(f, size)
            elif kind in (b".snd", b"dns."):
                found = _au(f, size, kind == b".snd")
            else:
                return None
    except (OSError, struct.error):
        return None  # unreadable headers are for libsndfile to report
    if found is None or found[1] >= found[0]:
        return None
    return found
