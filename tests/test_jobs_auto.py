"""--jobs auto, the default: one single-threaded process per core, sharing files, or one file's chunks.

The test session sets RAVEKIT_JOBS=1 (conftest) so that in-process tests stay in
process; these tests take it away again to see what a user gets by default.
"""

from __future__ import annotations

import numpy as np
import pytest

import encoder
import ravekit.commands.parallel as parallel
from conftest import run_cli, write_audio
from ravekit.commands.parallel import WORKER_BYTES, auto_workers

GB = 2**30


def test_auto_plans_one_worker_per_core_when_they_fit():
    assert auto_workers(cores=2, device="cpu", model_bytes=5 << 20, available=8 * GB) == 2
    assert auto_workers(cores=8, device="cpu", model_bytes=5 << 20, available=None) == 8
    # memory for one worker only: one process
    assert auto_workers(cores=8, device="cpu", model_bytes=GB, available=WORKER_BYTES + 5 * GB) == 1
    assert auto_workers(cores=8, device="cuda", model_bytes=5 << 20, available=8 * GB) == 1


@pytest.fixture
def default_jobs(monkeypatch):
    """The user's default (no $RAVEKIT_JOBS), with the worker count each run chose recorded."""
    monkeypatch.delenv("RAVEKIT_JOBS")
    started = []
    real = parallel.run_in_parts

    def recording(prog, module, argv, parts, *rest, **kw):
        started.append(parts)
        return real(prog, module, argv, parts, *rest, **kw)

    monkeypatch.setattr(parallel, "run_in_parts", recording)
    monkeypatch.setattr(parallel, "usable_cores", lambda: 2)
    return started


def test_default_batch_runs_in_workers_with_the_same_latents(tmp_path, capsys, demo_model, default_jobs):
    for k in range(3):
        write_audio(tmp_path / "in" / f"take{k}.wav", seconds=1.0, seed=k)
    code, out, err = run_cli(capsys, encoder, "-m", demo_model, "-i", tmp_path / "in", "-o", tmp_path / "auto",
                             "--device", "cpu", lines=True)
    assert code == 0, err
    assert default_jobs == [2] and len(out) == 3
    code, _, err = run_cli(capsys, encoder, "-m", demo_model, "-i", tmp_path / "in", "-o", tmp_path / "one",
                           "--jobs", "1")
    assert code == 0 and default_jobs == [2]  # --jobs 1: in this process
    for k in range(3):
        a, b = (np.load(tmp_path / d / f"take{k}.npy", allow_pickle=False) for d in ("auto", "one"))
        assert np.array_equal(a, b)


def test_default_single_file_runs_here_its_chunks_on_every_core(tmp_path, capsys, demo_model, default_jobs,
                                                                monkeypatch):
    import ravekit.engine.pool as pool

    pools = []
    real_init = pool.ChunkPool.__init__

    def recording(self, workers, threads=1, preload=()):
        pools.append((workers, threads))
        real_init(self, workers, threads, preload)

    monkeypatch.setattr(pool.ChunkPool, "__init__", recording)
    src = write_audio(tmp_path / "a.wav", seconds=1.0)
    code, _, err = run_cli(capsys, encoder, "-m", demo_model, "-i", src, "-o", tmp_path / "o", "--device", "cpu")
    assert code == 0, err
    assert default_jobs == [] and pools == [(2, 1)]


def test_bad_ravekit_jobs_is_a_command_line_error(tmp_path, capsys, demo_model, monkeypatch):
    monkeypatch.setenv("RAVEKIT_JOBS", "many")
    src = write_audio(tmp_path / "a.wav", seconds=0.5)
    with pytest.raises(SystemExit) as stop:
        encoder.main(["-m", str(demo_model), "-i", str(src), "-o", str(tmp_path / "o")])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "'many'" in err and "RAVEKIT_JOBS" in err and "Traceback" not in err
