"""--summary FILE (each run's outcome as JSON) and python -m ravekit.commands.gather across shards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import encoder
from conftest import run_cli, write_audio
from ravekit.commands import gather


@pytest.fixture
def audio(tmp_path) -> Path:
    """Five short files, one of them not audio at all."""
    folder = tmp_path / "audio"
    for i in range(4):
        write_audio(folder / f"take{i}.wav", 44100, 0.3, seed=i)
    (folder / "broken.wav").write_bytes(b"RIFF not really a wave file")
    return folder


def encode_shards(capsys, demo_model, audio, tmp_path, n=2, *extra):
    codes = []
    for k in range(1, n + 1):
        code, _, _ = run_cli(capsys, encoder, "--model", demo_model, "--input", audio, "--output", tmp_path / "lat",
                             "--shard", f"{k}/{n}", "--summary", tmp_path / "sum" / f"enc-{k}.json", *extra)
        codes.append(code)
    return codes


def test_each_shard_records_every_file_and_gather_names_the_failed_one(capsys, demo_model, audio, tmp_path):
    assert sorted(encode_shards(capsys, demo_model, audio, tmp_path)) == [0, 1]
    summaries = [json.loads((tmp_path / "sum" / f"enc-{k}.json").read_text()) for k in (1, 2)]
    assert [s["shard"] for s in summaries] == ["1/2", "2/2"]
    assert all(s["format"] == "ravekit.run-summary" and s["complete"] and s["error"] is None for s in summaries)
    written = sorted(Path(p).name for s in summaries for p in s["written"])
    assert written == [f"take{i}.npy" for i in range(4)]  # each file once, across the shards
    failed = [f for s in summaries for f in s["failed"]]
    assert [Path(f["input"]).name for f in failed] == ["broken.wav"] and "broken.wav" in failed[0]["error"]
    code, out, err = run_cli(capsys, gather, tmp_path / "sum", lines=True)
    assert code == 1 and out == [str(audio / "broken.wav")]
    assert "4 written" in err and "1 failed" in err and "0 shard(s) missing" in err
    # A rerun finds them there: skipped is on record too, and the failure again.
    encode_shards(capsys, demo_model, audio, tmp_path)
    again = [json.loads((tmp_path / "sum" / f"enc-{k}.json").read_text()) for k in (1, 2)]
    assert sum(s["counts"]["skipped"] for s in again) == 4 and sum(s["counts"]["written"] for s in again) == 0


def test_gather_passes_a_clean_batch_and_counts_a_missing_shard(capsys, demo_model, audio, tmp_path):
    (audio / "broken.wav").unlink()
    assert encode_shards(capsys, demo_model, audio, tmp_path, 3) == [0, 0, 0]
    code, out, err = run_cli(capsys, gather, *sorted((tmp_path / "sum").glob("*.json")))
    assert code == 0 and out == "" and "4 written" in err
    (tmp_path / "sum" / "enc-2.json").unlink()  # that task was killed: it wrote none
    code, _, err = run_cli(capsys, gather, tmp_path / "sum")
    assert code == 1 and "shard 2/3: no run summary" in err
    code, _, err = run_cli(capsys, gather, tmp_path / "sum" / "enc-1.json", "--expect", "3")
    assert code == 1 and "shard 3/3" in err


def test_a_run_that_stops_before_its_batch_still_leaves_a_summary(capsys, audio, tmp_path):
    bad = tmp_path / "model.ts"
    bad.write_bytes(b"not a model")
    code, _, err = run_cli(capsys, encoder, "--model", bad, "--input", audio, "--output", tmp_path / "lat",
                           "--summary", tmp_path / "s.json")
    assert code != 0
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["complete"] is False and str(bad) in summary["error"] and summary["exit_code"] == code
    code, _, err = run_cli(capsys, gather, tmp_path / "s.json")
    assert code == 1 and "stopped early" in err


def test_jobs_workers_files_land_in_the_one_summary(capsys, demo_model, audio, tmp_path):
    code, _, _ = run_cli(capsys, encoder, "--model", demo_model, "--input", audio, "--output", tmp_path / "lat",
                         "--jobs", "2", "--summary", tmp_path / "s.json")
    assert code == 1
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["counts"] == {"written": 4, "skipped": 0, "failed": 1} and summary["complete"]
    assert sorted(Path(p).name for p in summary["written"]) == [f"take{i}.npy" for i in range(4)]


def test_gather_refuses_a_file_that_is_not_a_summary(capsys, tmp_path):
    (tmp_path / "x.json").write_text('{"format": "ravekit.stats"}')
    code, _, err = run_cli(capsys, gather, tmp_path / "x.json")
    assert code == 1 and "not a ravekit run summary" in err and len(err.strip().splitlines()) == 1


def test_summary_never_replaces_a_file_that_is_not_one(capsys, demo_model, audio, tmp_path):
    victim = audio / "take0.wav"
    before = victim.read_bytes()
    code, _, err = run_cli(capsys, encoder, "--model", demo_model, "--input", audio, "--output", tmp_path / "lat",
                           "--summary", victim)
    assert code == 2 and "not a run summary" in err and victim.read_bytes() == before
    assert not (tmp_path / "lat").exists()  # refused before any work


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_summary_never_takes_the_place_of_an_output_or_its_sidecar(capsys, demo_model, tmp_path, jobs):
    # An input named run.wav encodes to lat/run.npy with its sidecar lat/run.json: a summary there would
    # replace that sidecar, and the latents would lose what made them.
    folder = tmp_path / "in"
    for name in ("run", "other"):
        write_audio(folder / f"{name}.wav", 44100, 0.3)
    code, _, err = run_cli(capsys, encoder, "--model", demo_model, "--input", folder, "--output", tmp_path / "lat",
                           "--summary", tmp_path / "lat" / "run.json", "--jobs", jobs)
    assert code == 2 and "--summary" in err and "an output's sidecar" in err, err
    assert not (tmp_path / "lat" / "run.npy").exists()  # refused before any work
