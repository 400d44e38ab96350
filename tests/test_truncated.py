"""A file cut short (its header announces more than it holds) fails; it is never encoded as complete."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import soundfile as sf

import decoder
import encoder
from conftest import run_cli, save_latent_wav, write_audio
from ravekit.errors import RavekitError
from ravekit.io.audio import iter_audio, probe
from ravekit.io.header import truncation


def cut(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    return path


@pytest.mark.parametrize("fmt, subtype, suffix", [("WAV", "FLOAT", ".wav"), ("WAV", "PCM_16", ".wav"),
                                                  ("WAV", "PCM_24", ".wav"), ("RF64", "FLOAT", ".wav"),
                                                  ("AIFF", "PCM_16", ".aiff"), ("AIFF", "FLOAT", ".aiff"),
                                                  ("W64", "PCM_16", ".w64"), ("W64", "FLOAT", ".w64"),
                                                  ("CAF", "PCM_16", ".caf"), ("CAF", "FLOAT", ".caf"),
                                                  ("AU", "PCM_16", ".au"), ("AU", "PCM_24", ".au")])
def test_header_against_contents(tmp_path, fmt, subtype, suffix):
    path = tmp_path / f"a{suffix}"
    sf.write(path, np.zeros((88200, 2), np.float32), 44100, subtype=subtype, format=fmt)
    assert truncation(path) is None
    announced, present = truncation(cut(path))
    assert announced == 88200 and 0 < present < 88200


def test_a_streamed_wav_without_sizes_is_not_called_truncated(tmp_path):
    path = tmp_path / "s.wav"
    sf.write(path, np.zeros(1000, np.float32), 44100, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    at = data.index(b"data")
    data[4:8] = data[at + 4:at + 8] = struct.pack("<I", 0xFFFFFFFF)  # what ffmpeg writes to a pipe
    path.write_bytes(bytes(data))
    assert truncation(path) is None


def test_the_encoder_fails_a_truncated_file_and_goes_on(tmp_path, capsys, demo_model):
    write_audio(tmp_path / "in" / "good.wav", 44100, 1.0)
    bad = cut(write_audio(tmp_path / "in" / "bad.wav", 44100, 2.0, subtype="FLOAT"))
    code, out, err = run_cli(capsys, encoder, "-m", demo_model, "-i", tmp_path / "in", "-o", tmp_path / "o", lines=True)
    assert code == 1 and out == [str(tmp_path / "o" / "good.npy")]
    failures = [line for line in err.splitlines() if "error:" in line]
    assert len(failures) == 1 and str(bad) in failures[0] and "truncated" in failures[0]
    assert "announces 88200 frames (2.00 s)" in failures[0] and "export it again" in failures[0]
    assert not (tmp_path / "o" / "bad.npy").exists()


def test_reading_stops_short_of_the_announced_length(tmp_path):
    """Formats with an exact length in the header (FLAC) are checked against what was read."""
    path = write_audio(tmp_path / "a.flac", 44100, 0.5)
    info = probe(path)
    info.frames *= 2
    with pytest.raises(RavekitError, match="truncated"):
        list(iter_audio(path, info=info))


def test_the_decoder_fails_a_truncated_latent_wav(tmp_path, capsys, demo_model):
    z = np.random.default_rng(0).normal(-4, 1, (1, 8, 400)).astype(np.float32)
    save_latent_wav(tmp_path / "g.wav", z, 44100, 2048, None)
    cut(tmp_path / "g.wav")
    code, out, err = run_cli(capsys, decoder, "-m", demo_model, "-i", tmp_path / "g.wav", "-o", tmp_path / "o",
                             lines=True)
    assert code == 1 and not out and "g.wav: truncated" in err and "announces 400 frames" in err


def test_a_complete_file_still_records_its_full_length(tmp_path, capsys, demo_model):
    src = write_audio(tmp_path / "a.wav", 44100, 2.0, subtype="FLOAT")
    code, _, _ = run_cli(capsys, encoder, "-m", demo_model, "-i", src, "-o", tmp_path / "o", lines=True)
    assert code == 0 and json.loads((tmp_path / "o" / "a.json").read_text())["source"]["samples"] == 88200


@pytest.mark.parametrize("suffix, says", [
    (".flac", "truncated: the header announces 132300 frames (3.00 s), the file holds "),
    (".ogg", "damaged or truncated"),
    (".mp3", "truncated: the header announces 132300 frames (3.00 s), the file holds "),
])
def test_cut_compressed_files_are_named_truncated(tmp_path, capfd, demo_model, suffix, says):
    """FLAC (STREAMINFO's count), Ogg (no end-of-stream page), MP3 (its Xing header's count), cut in half."""
    src = cut(write_audio(tmp_path / f"song{suffix}", seconds=3.0))
    whole = write_audio(tmp_path / "ok" / f"whole{suffix}", seconds=3.0)
    code = encoder.main(["-m", str(demo_model), "-i", str(src), str(whole), "-o", str(tmp_path / "o")])
    out, err = capfd.readouterr()
    assert code == 1 and out.splitlines() == [str(tmp_path / "o" / f"whole{suffix}").replace(suffix, ".npy")], err
    line = [e for e in err.splitlines() if "error:" in e]
    assert len(line) == 1 and f"song{suffix}: {says}" in line[0], err
    assert "(0.00 s)" not in line[0] and "no audio samples" not in err
    assert all(e.startswith("encoder.py: ") for e in err.splitlines()), err  # no raw libmpg123 lines


@pytest.mark.parametrize("fmt, suffix, keep", [("W64", ".w64", 0.5), ("CAF", ".caf", 0.99), ("CAF", ".caf", 0.5),
                                               ("AU", ".au", 0.5)])
def test_every_container_cut_short_fails_naming_the_file(tmp_path, capsys, demo_model, fmt, suffix, keep):
    """W64 and AU read as shorter audio; a CAF cut near its end too (cut further, libsndfile calls it malformed)."""
    src = tmp_path / f"song{suffix}"
    sf.write(src, np.zeros((88200, 1), np.float32) + 0.1, 44100, subtype="PCM_16", format=fmt)
    cut(src, keep)
    code, out, err = run_cli(capsys, encoder, "-m", demo_model, "-i", src, "-o", tmp_path / "o", lines=True)
    assert code == 1 and not out
    line = [e for e in err.splitlines() if "error:" in e]
    assert len(line) == 1 and f"{src}: truncated: the header announces 88200 frames" in line[0], err
