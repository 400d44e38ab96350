"""A write that fails (a full disk) is named as such by every script, and leaves no partial file."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

import averager
import decoder
import encoder
import generator
import inspector
from conftest import ROOT, run_cli, write_audio

FULL = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def disk_full(*args, **kwargs):
    raise FULL


def full_for_temporaries(monkeypatch, method):
    """``pathlib.Path.<method>`` fails with ENOSPC on the writers' temporary files (``.NAME.part...``)."""
    import pathlib

    real = getattr(pathlib.Path, method)

    def write(self, *args, **kwargs):
        if ".part" in self.name:
            raise FULL
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, method, write)


def leftovers(folder):
    return [p for p in folder.rglob("*") if p.name.startswith(".") or ".part" in p.name]


def assert_write_error(err, path):
    assert f"could not write {path}: No space left on device; free some space" in err
    assert "model failed" not in err


def test_encoder(tmp_path, capsys, monkeypatch, demo_model):
    src = write_audio(tmp_path / "a.wav", seconds=0.3)
    monkeypatch.setattr(np, "save", disk_full)
    code, out, err = run_cli(capsys, encoder, "-m", demo_model, "-i", src, "-o", tmp_path / "o")
    assert "unexpected" not in err
    assert code == 1 and not out
    assert_write_error(err, tmp_path / "o" / "a.npy")
    assert not leftovers(tmp_path / "o") and not (tmp_path / "o" / "a.npy").exists()


@pytest.mark.parametrize("failure", [FULL, sf.LibsndfileError(2)])
def test_decoder(tmp_path, capsys, monkeypatch, demo_model, failure):
    np.save(tmp_path / "z.npy", np.full((1, 8, 10), -3.0, np.float32))

    def write(self, data):
        raise failure

    monkeypatch.setattr(sf.SoundFile, "write", write)
    code, out, err = run_cli(capsys, decoder, "-m", demo_model, "-i", tmp_path / "z.npy", "-o", tmp_path / "o")
    assert "unexpected" not in err
    assert code == 1 and not out and "model failed" not in err
    if isinstance(failure, OSError):
        assert_write_error(err, tmp_path / "o" / "z.wav")
    else:  # libsndfile's own error, outside a real full disk, says only "System error"
        assert f"could not write {tmp_path / 'o' / 'z.wav'}: System error" in err
    assert not leftovers(tmp_path / "o") and not list((tmp_path / "o").glob("z.*"))


def test_generator(tmp_path, capsys, monkeypatch):
    from conftest import save_npy

    save_npy(tmp_path / "lat" / "a.npy", np.random.default_rng(0).normal(0, 1, (1, 4, 200)).astype(np.float32))
    monkeypatch.setattr(sf.SoundFile, "write", lambda self, data: disk_full())
    code, out, err = run_cli(capsys, generator, "--input", tmp_path / "lat", "--output", tmp_path / "o",
                             "--sample_rate", 44100, "--ratio", 2048)
    assert "unexpected" not in err
    assert code == 1 and not out.strip()
    assert "could not write " in err and ".wav: No space left on device; free some space" in err
    assert not leftovers(tmp_path / "o")
    monkeypatch.undo()
    full_for_temporaries(monkeypatch, "write_text")  # the first file written: stats.json
    code, _, err = run_cli(capsys, generator, "--input", tmp_path / "lat", "--output", tmp_path / "p",
                           "--sample_rate", 44100, "--ratio", 2048)
    assert "unexpected" not in err
    assert code == 1
    assert_write_error(err, tmp_path / "p" / "stats.json")
    assert not leftovers(tmp_path / "p")


def test_averager(tmp_path, capsys, monkeypatch, fixture_models):
    full_for_temporaries(monkeypatch, "write_bytes")
    out = tmp_path / "o" / "m.ts"
    code, stdout, err = run_cli(capsys, averager, "--models", fixture_models["demo"], fixture_models["demo_b"],
                                "-o", out)
    assert "unexpected" not in err
    assert code == 1 and not stdout
    assert_write_error(err, out)
    assert not leftovers(tmp_path / "o") and not out.exists()


def test_inspector(tmp_path, capsys, monkeypatch, demo_model):
    monkeypatch.setattr(pd.DataFrame, "to_csv", disk_full)
    code, _, err = run_cli(capsys, inspector, "-i", demo_model, "--save", "-o", tmp_path / "o")
    assert "unexpected" not in err
    assert code == 1
    assert f"could not write {tmp_path / 'o'}" in err and "No space left on device; free some space" in err
    assert not leftovers(tmp_path / "o")


@pytest.mark.skipif(not shutil.which("unshare") or sys.platform != "linux", reason="needs unshare (Linux)")
@pytest.mark.parametrize("script", ["decoder", "averager"])
def test_a_real_full_disk(tmp_path, fixture_models, script):
    """On a tiny tmpfs mounted in a private namespace: libsndfile's and torch's real failures.

    torch's own file writer aborted the whole process on a full disk (exit 134, no message).
    """
    np.save(tmp_path / "z.npy", np.full((1, 8, 60), -3.0, np.float32))  # decodes to 480 KiB
    disk = tmp_path / "disk"
    disk.mkdir()
    out = disk / "o"
    args = {"decoder": f"-m {fixture_models['demo']} -i {tmp_path / 'z.npy'} -o {out}",
            "averager": f"--models {fixture_models['demo']} {fixture_models['demo_b']} -o {out / 'm.ts'}"}[script]
    written = {"decoder": out / "z.wav", "averager": out / "m.ts"}[script]
    size = {"decoder": "256k", "averager": "32k"}[script]  # the demo model is about 58 KB
    shell = (f"mount -t tmpfs -o size={size} tmpfs {disk} && "
             f"{sys.executable} {ROOT / (script + '.py')} {args}; echo exit=$?; ls -A {out}")
    res = subprocess.run(["unshare", "-rm", "sh", "-c", shell], capture_output=True, text=True, timeout=120)
    if "exit=" not in res.stdout:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    assert "exit=1" in res.stdout, res.stderr
    assert f"could not write {written}: No space left on device; free some space" in res.stderr
    assert "Traceback" not in res.stderr and "model failed" not in res.stderr
    assert res.stdout.split("exit=1", 1)[1].split() == []  # nothing left in the output folder
