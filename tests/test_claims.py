"""Before any work, a run makes its output its own: writable, not written by another run at the same time,
and cleared of the unfinished files of a run that was killed (and of nothing else)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import averager
import encoder
import inspector
from conftest import ROOT, run_cli, write_audio
from ravekit.io.files import HOST

HOLD = """
import sys
from pathlib import Path
from ravekit.commands.batch import claim_batch_output
from ravekit.io.claims import claim_output, scope
with scope():
    if sys.argv[2] == "merge":
        out = Path(sys.argv[1])
        claim_output(out.parent, lock=f".{out.name}.ravekit.lock", subject=str(out))
    else:
        claim_batch_output(Path(sys.argv[1]), sys.argv[2] or None)
    print("ready", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def other_run():
    """Start another ravekit process that holds an output (``batch`` folder with a shard, or a ``merge``)."""
    procs = []

    def start(path, what=""):
        proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), what], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        procs.append(proc)
        assert proc.stdout.readline().strip() == "ready"
        return proc

    yield start
    for proc in procs:
        proc.stdin.close()
        proc.wait(timeout=30)


def error_lines(err):
    return [line for line in err.splitlines() if "error:" in line]


def test_a_second_encoder_into_the_same_folder_loses(tmp_path, capsys, demo_model, other_run):
    src = write_audio(tmp_path / "a.wav", seconds=0.3)
    holder = other_run(tmp_path / "o")
    code, out, err = run_cli(capsys, encoder, "-m", demo_model, "-i", src, "-o", tmp_path / "o", "-j", 1)
    assert code == 1 and not out
    lines = error_lines(err)
    assert len(lines) == 1 and lines[0].endswith(
        f"{tmp_path / 'o'}: another ravekit run (pid {holder.pid}) is writing there; wait for it to finish or "
        "choose another --output"), err
    assert not (tmp_path / "o" / "a.npy").exists()


def test_shards_share_a_folder_and_a_shard_is_written_once(tmp_path, capsys, demo_model, other_run):
    write_audio(tmp_path / "in" / "a.wav", seconds=0.3)
    write_audio(tmp_path / "in" / "b.wav", seconds=0.3)
    other_run(tmp_path / "o", "2/2")
    args = ("-m", demo_model, "-i", tmp_path / "in", "-o", tmp_path / "o", "-j", 1)
    code, out, err = run_cli(capsys, encoder, *args, "--shard", "1/2", lines=True)
    assert code == 0 and out == [str(tmp_path / "o" / "a.npy")], err
    code, out, err = run_cli(capsys, encoder, *args, "--shard", "2/2")
    assert code == 1 and "(its --shard 2/2): another ravekit run" in err
    code, out, err = run_cli(capsys, encoder, *args)  # the whole folder, while a shard is being written
    assert code == 1 and f"{tmp_path / 'o'}: another ravekit run" in err


def test_jobs_workers_share_their_parents_folder(tmp_path, capfd, demo_model):
    for name in ("a", "b"):
        write_audio(tmp_path / "in" / f"{name}.wav", seconds=0.3)
    code = encoder.main(["-m", str(demo_model), "-i", str(tmp_path / "in"), "-o", str(tmp_path / "o"), "-j", "2"])
    out, err = capfd.readouterr()
    assert code == 0, err
    assert sorted(out.split()) == [str(tmp_path / "o" / "a.npy"), str(tmp_path / "o" / "b.npy")]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a.json", "a.npy", "b.json", "b.npy"]


def test_a_second_merge_into_the_same_model_loses_before_merging(tmp_path, capsys, monkeypatch, fixture_models,
                                                                   other_run):
    from ravekit.merging import plan

    monkeypatch.setattr(plan, "merge_models", lambda *a, **k: pytest.fail("merged although the output is taken"))
    out = tmp_path / "o" / "m.ts"
    holder = other_run(out, "merge")
    code, stdout, err = run_cli(capsys, averager, "--models", fixture_models["demo"], fixture_models["demo_b"],
                                "-o", out)
    assert code == 1 and not stdout
    lines = error_lines(err)
    assert len(lines) == 1 and f"{out}: another ravekit run (pid {holder.pid}) is writing it" in lines[0], err
    monkeypatch.undo()
    # Another merge into the same folder is another output: it goes ahead.
    code, _, err = run_cli(capsys, averager, "--models", fixture_models["demo"], fixture_models["demo_b"],
                           "-o", tmp_path / "o" / "n.ts")
    assert code == 0, err
    assert not (tmp_path / "o" / ".n.ts.ravekit.lock").exists()  # a finished run leaves no lock file


def test_an_unwritable_output_is_refused_before_merging(tmp_path, capsys, monkeypatch, fixture_models):
    """A read-only --output failed only after the merge (54 s on real models)."""
    from ravekit.merging import plan

    monkeypatch.setattr(plan, "merge_models", lambda *a, **k: pytest.fail("merged into a folder it cannot write"))
    (tmp_path / "file").write_text("not a folder")
    code, stdout, err = run_cli(capsys, averager, "--models", fixture_models["demo"], fixture_models["demo_b"],
                                "-o", tmp_path / "file" / "m.ts")
    assert code == 1 and not stdout
    lines = error_lines(err)
    assert len(lines) == 1 and f"{tmp_path / 'file'}: cannot write there (a file, not a folder, is in the way); " \
        "choose another --output" in lines[0], err


def test_inspector_save_refuses_an_unwritable_output_before_reading_models(tmp_path, capsys, monkeypatch,
                                                                          demo_model):
    from ravekit.inspection import run as inspect_run

    monkeypatch.setattr(inspect_run, "run_summary", lambda *a, **k: pytest.fail("read the models first"))
    (tmp_path / "file").write_text("not a folder")
    code, _, err = run_cli(capsys, inspector, "-i", demo_model, "--save", "-o", tmp_path / "file" / "o")
    assert code == 1
    lines = error_lines(err)
    assert len(lines) == 1 and "cannot write there (a file, not a folder, is in the way)" in lines[0], err


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_killed_runs_partial_files_are_removed_and_nothing_else(tmp_path, capsys, demo_model):
    """kill -9 left .part files (a 126 MB .part.ts among them); the next run into the folder removes them."""
    out = tmp_path / "o"
    (out / "sub").mkdir(parents=True)
    dead, alive = dead_pid(), os.getppid()
    stale = [out / f".m.ravekit-{HOST}-{dead}-abcd_123.part.ts",
             out / "sub" / f".song.ravekit-{HOST}-{dead}-x1y2z3w4.part.npy"]
    kept = [out / f".m.ravekit-{HOST}-{alive}-abcd_123.part.ts",  # its writer still runs
            out / f".m.ravekit-{'0' * 6 if HOST != '0' * 6 else '1' * 6}-{dead}-abcd_123.part.ts",  # another host
            out / ".m.tmp123.part.ts",  # named by something else
            out / f"m.ravekit-{HOST}-{dead}-abcd_123.part.ts"]  # not hidden: never ours
    for p in stale + kept:
        p.write_bytes(b"x" * 100)
    src = write_audio(tmp_path / "a.wav", seconds=0.3)
    code, _, err = run_cli(capsys, encoder, "-m", demo_model, "-i", src, "-o", out, "-j", 1)
    assert code == 0, err
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept)
