"""A reader that closes stdout early (``| head -1``) ends a run quietly: exit 0, no traceback, outputs whole.

Python ignores SIGPIPE, so a write to a pipe whose reader is gone raises
BrokenPipeError: in a single process, in each --jobs worker and in the parent
that relays the workers' paths.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import encoder
import generator
from conftest import ROOT, write_audio


class ClosedAfter:
    """A stdout whose reader goes away after ``lines`` lines, as ``head`` does."""

    def __init__(self, lines: int = 1):
        self.lines, self.got = lines, []

    def write(self, text: str) -> int:
        if len(self.got) >= self.lines:
            raise BrokenPipeError(32, "Broken pipe")
        self.got.append(text)
        return len(text)

    def flush(self) -> None:
        pass


@pytest.fixture
def many(tmp_path):
    for i in range(12):
        write_audio(tmp_path / "in" / f"a{i:02d}.wav", seconds=0.5, seed=i)
    return tmp_path / "in"


@pytest.mark.parametrize("jobs", [1, 2])
def test_head_1_on_a_real_pipe_ends_the_run_quietly(jobs, demo_model, many, tmp_path):
    """`encoder.py ... | head -1`: each relaying thread and each worker used to print a BrokenPipe traceback."""
    err = tmp_path / "stderr"
    env = {k: v for k, v in os.environ.items() if k != "RAVEKIT_JOBS"}
    with open(err, "wb") as stderr:
        proc = subprocess.Popen([sys.executable, str(ROOT / "encoder.py"), "-m", str(demo_model), "-i", str(many),
                                 "-o", str(tmp_path / "out"), "--jobs", str(jobs)],
                                stdout=subprocess.PIPE, stderr=stderr, env=env, cwd=tmp_path)
        assert proc.stdout is not None
        first = proc.stdout.readline()
        proc.stdout.close()
        code = proc.wait(timeout=300)
    text = err.read_text()
    assert first.strip() and Path(first.decode().strip()).exists()
    assert code == 0, text
    assert "Traceback" not in text and "BrokenPipe" not in text and "Exception" not in text, text
    # Whatever was written is whole: every latent file has its sidecar and loads.
    written = list((tmp_path / "out").glob("*.npy"))
    for npy in written:
        assert npy.with_suffix(".json").exists() and np.load(npy).shape[1] == 8
    # And the run ended: no worker went on through its share once the reader was gone.
    assert len(written) < 12, sorted(p.name for p in written)


def test_a_closed_stdout_ends_the_batch_after_the_file_in_hand(demo_model, many, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdout", ClosedAfter(1))
    code = encoder.main(["-m", str(demo_model), "-i", str(many), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 0 and err == "", err  # quietly: no error, and no summary of a batch cut short on purpose
    # The first path was read; the second file was written, then its path met the closed pipe: the run ended.
    assert sorted(p.name for p in (tmp_path / "out").glob("*.npy")) == ["a00.npy", "a01.npy"]


def test_a_closed_stdout_on_resume_is_not_a_failure_of_each_file(demo_model, many, tmp_path, monkeypatch, capsys):
    """Outputs already there are printed too; the closed pipe used to fail every one of them."""
    argv = ["-m", str(demo_model), "-i", str(many), "-o", str(tmp_path / "out"), "-q"]
    assert encoder.main(argv) == 0
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdout", ClosedAfter(1))
    code = encoder.main(argv)
    assert code == 0 and capsys.readouterr().err == ""


def test_generator_ends_quietly_too(demo_model, tmp_path, monkeypatch, capsys):
    from conftest import save_npy
    from ravekit.io.latents import make_sidecar

    z = np.random.default_rng(0).standard_normal((1, 8, 40)).astype(np.float32)
    save_npy(tmp_path / "lat" / "z.npy", z, make_sidecar(sr=44100, ratio=2048, latent_dims=8, frames=40))
    monkeypatch.setattr(sys, "stdout", ClosedAfter(1))
    code = generator.main(["-i", str(tmp_path / "lat"), "-o", str(tmp_path / "gen"), "--num_files", "3"])
    assert code == 0 and "error" not in capsys.readouterr().err
