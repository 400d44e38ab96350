"""Nothing already written is lost: a write that fails halfway (a full disk) leaves the earlier pair
(array and sidecar, sound file and record) exactly as it was, and the script says so on one line."""

from __future__ import annotations

import errno
import os

import numpy as np
import soundfile as sf

import decoder
import encoder
from conftest import run_cli, write_audio
from ravekit.io import latent_arrays
from ravekit.io.latents import Latents, Sidecar

FULL = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class FillsUp:
    """A file that takes ``room`` bytes, then fails as a full disk does."""

    def __init__(self, f, room: int):
        self.f, self.room = f, room

    def write(self, data) -> int:
        data = bytes(data)
        if len(data) > self.room:
            self.f.write(data[:self.room])
            self.room = 0
            raise FULL
        self.room -= len(data)
        return self.f.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def disk_fills_after(monkeypatch, room: int) -> None:
    """The .npy writer's file takes ``room`` bytes, then the disk is full."""
    def fills_up(path, mode="r"):
        return FillsUp(open(path, mode), room)  # noqa: SIM115 - FillsUp closes it

    monkeypatch.setattr(latent_arrays, "open", fills_up, raising=False)


def snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def error_lines(err):
    return [line for line in err.splitlines() if "error:" in line]


def test_encoder_force_on_a_full_disk_keeps_the_old_pair(tmp_path, capsys, monkeypatch, demo_model):
    src = write_audio(tmp_path / "a.wav", seconds=0.5)
    out = tmp_path / "o"
    assert run_cli(capsys, encoder, "-m", demo_model, "-i", src, "-o", out)[0] == 0
    before = snapshot(out)
    assert set(before) == {"a.npy", "a.json"}
    disk_fills_after(monkeypatch, 200)  # the header and a few frames
    code, stdout, err = run_cli(capsys, encoder, "-m", demo_model, "-i", src, "-o", out, "--force", "--seed", 1)
    assert code == 1 and not stdout.strip()
    lines = error_lines(err)
    assert len(lines) == 1 and f"could not write {out / 'a.npy'}: No space left on device; free some space" \
        in lines[0], err
    assert snapshot(out) == before  # the old array with its own sidecar, nothing half-written beside them
    monkeypatch.undo()
    # ... and a run without --force still takes the old pair as the result of seed 0.
    code, stdout, _ = run_cli(capsys, encoder, "-m", demo_model, "-i", src, "-o", out, lines=True)
    assert code == 0 and stdout == [str(out / "a.npy")]


def test_decoder_force_on_a_full_disk_keeps_the_old_pair(tmp_path, capsys, monkeypatch, demo_model):
    np.save(tmp_path / "z.npy", np.random.default_rng(0).normal(-3, 1, (1, 8, 40)).astype(np.float32))
    out = tmp_path / "o"
    assert run_cli(capsys, decoder, "-m", demo_model, "-i", tmp_path / "z.npy", "-o", out)[0] == 0
    before = snapshot(out)
    assert set(before) == {"z.wav", "z.json"}
    real = sf.SoundFile.write

    def half_then_full(self, data):
        real(self, data[:len(data) // 2])
        raise FULL

    monkeypatch.setattr(sf.SoundFile, "write", half_then_full)
    code, stdout, err = run_cli(capsys, decoder, "-m", demo_model, "-i", tmp_path / "z.npy", "-o", out,
                                "--force", "--seed", 1)
    assert code == 1 and not stdout.strip()
    lines = error_lines(err)
    assert len(lines) == 1 and f"could not write {out / 'z.wav'}: No space left on device" in lines[0], err
    assert snapshot(out) == before  # the record still describes the sound file beside it


def test_a_latent_wav_and_its_sidecar_are_replaced_together_or_not_at_all(tmp_path, monkeypatch):
    """The generator's outputs: a latent WAV whose write fails keeps the earlier WAV and sidecar."""
    path = tmp_path / "g.wav"
    meta = {"format": "ravekit.latents", "sr": 44100, "ratio": 2048, "seed": 1}
    Latents(np.zeros((1, 4, 50), np.float32), Sidecar(meta)).save(path)
    before = snapshot(tmp_path)
    monkeypatch.setattr(sf.SoundFile, "write", lambda self, data: (_ for _ in ()).throw(FULL))
    try:
        Latents(np.ones((1, 4, 50), np.float32), Sidecar({**meta, "seed": 2})).save(path)
    except Exception as exc:  # noqa: BLE001 - the error itself is the writers' (test_write_errors.py)
        assert "No space left on device" in str(exc)
    else:
        raise AssertionError("the write did not fail")
    assert snapshot(tmp_path) == before


def test_an_array_without_its_sidecar_is_never_taken_as_done(tmp_path, capsys, demo_model):
    """Killed between the two renames: the array is there, its sidecar not yet."""
    src = write_audio(tmp_path / "a.wav", seconds=0.5)
    out = tmp_path / "o"
    assert run_cli(capsys, encoder, "-m", demo_model, "-i", src, "-o", out)[0] == 0
    (out / "a.json").unlink()
    code, stdout, err = run_cli(capsys, encoder, "-m", demo_model, "-i", src, "-o", out)
    assert code == 1 and not stdout.strip()
    lines = error_lines(err)
    assert len(lines) == 1 and "a.npy: its sidecar a.json is missing" in lines[0] and "--force" in lines[0], err


def test_a_short_write_is_named_a_full_disk(tmp_path, capsys, monkeypatch, demo_model):
    """numpy reports a short write on a full disk without an errno: "206720 requested and 64480 written"."""
    src = write_audio(tmp_path / "a.wav", seconds=0.5)

    def short(path, mode="r"):
        raise OSError("206720 requested and 64480 written")

    monkeypatch.setattr(latent_arrays, "open", short, raising=False)
    code, _, err = run_cli(capsys, encoder, "-m", demo_model, "-i", src, "-o", tmp_path / "o")
    assert code == 1
    lines = error_lines(err)
    assert len(lines) == 1 and lines[0].endswith(
        f"could not write {tmp_path / 'o' / 'a.npy'}: the disk is full (only 64480 of 206720 bytes could be "
        "written); free some space or choose another --output"), err
