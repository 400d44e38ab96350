"""examples/slurm on a real single-node SLURM cluster (munged, slurmctld, slurmd started here).

The chain examples/slurm/submit.sh submits, as a user would: the encode array (4 tasks over 20 short
files), gather, the statistics array and the pooling job. Checked against one process on one
machine: the latents byte for byte, the pooled statistics to 1e-9 relative.

Runs where Debian's slurm-wlm and munge are installed; with RAVEKIT_SLOW_TESTS=1 (as .ci/run runs
the tests) it installs them first when it can (root, apt-get). Skips, with the reason, where SLURM
cannot be installed or started (not root, no apt-get); with RAVEKIT_REQUIRE_SLURM=1 (.ci/run sets
it once the packages are in) that is a failure instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from slurm_cluster import Cluster, Unavailable, install, missing_binaries

import encoder
import generator
from conftest import run_cli, write_audio

ROOT = Path(__file__).resolve().parents[1]
SLURM = ROOT / "examples" / "slurm"
TIMEOUT = 600  # seconds for a chain of jobs; the longest takes about 41 s on two shared cores


def unavailable(why: str):
    if os.environ.get("RAVEKIT_REQUIRE_SLURM") == "1":
        pytest.fail(f"RAVEKIT_REQUIRE_SLURM=1 but SLURM is unavailable: {why}")
    pytest.skip(f"NO REAL SLURM TESTED: {why}")


@pytest.fixture(scope="module")
def cluster():
    if missing_binaries() and os.environ.get("RAVEKIT_SLOW_TESTS") != "1":
        # Installing system packages is no side effect for a plain test run; .ci/run sets RAVEKIT_SLOW_TESTS=1.
        unavailable(f"{', '.join(missing_binaries())} not installed; apt-get install slurm-wlm munge, or run with "
                    "RAVEKIT_SLOW_TESTS=1 as root to have this test install them")
    try:
        install()
    except Unavailable as exc:
        unavailable(str(exc))
    except subprocess.TimeoutExpired:
        unavailable("apt-get took more than 15 minutes")
    c = Cluster()
    try:
        try:
            c.start()
        except Unavailable as exc:
            unavailable(str(exc))
        yield c
    finally:
        c.stop()  # every daemon it started, however the start or the tests ended


def test_encode_array_and_pooled_statistics_on_a_real_cluster(cluster, demo_model, tmp_path, capsys):
    work = tmp_path / "work"
    audio = work / "audio"
    for i in range(20):
        write_audio(audio / ("low" if i % 3 else "high") / f"take{i:02d}.wav", 44100, 0.25 + 0.05 * (i % 4),
                    seed=i, freq=220.0 * (1 + i % 5))
    env = {"MODEL": str(demo_model), "INPUT": str(audio), "PYTHON": sys.executable, "RAVEKIT": str(ROOT),
           "GENERATE": "--pattern loop --num_latents 4 --num_files 2 --seed 1"}
    # Two CPUs per task where the node has them: each task then runs encoder.py --jobs 2, sized by SLURM.
    cpus = min(2, os.cpu_count() or 1)
    out = cluster.call(str(SLURM / "submit.sh"), f"--cpus-per-task={cpus}", "--mem=500M", cwd=work, env=env)
    ids = dict(zip(("encode", "gather", "stats", "pool"), out.split("encode ")[1].replace(",", "").split()[::2]))
    states = cluster.wait(list(ids.values()), TIMEOUT)
    logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-600:]}" for p in sorted(work.glob("*.log")))
    assert set(states.values()) == {"COMPLETED"} and len(states) == 4 + 1 + 4 + 1, f"{states}\n{logs}"

    # Every file encoded exactly once, across the 4 tasks, as their run summaries say.
    summaries = [json.loads(p.read_text()) for p in sorted((work / "runs" / "encode").glob("*.json"))]
    assert [s["shard"] for s in summaries] == ["1/4", "2/4", "3/4", "4/4"]
    written = [p for s in summaries for p in s["written"]]
    assert len(written) == len(set(written)) == 20 and all(s["counts"]["failed"] == 0 for s in summaries)
    assert (work / "runs" / "encode-failed.txt").read_text() == ""

    # The same bytes as one process on one machine.
    code, _, err = run_cli(capsys, encoder, "--model", demo_model, "--input", audio, "--output", tmp_path / "one",
                           "--threads", "1")
    assert code == 0, err
    single = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.npy"))
    assert single == sorted(p.relative_to(work / "latents") for p in (work / "latents").rglob("*.npy"))
    for rel in single:
        assert (work / "latents" / rel).read_bytes() == (tmp_path / "one" / rel).read_bytes(), rel

    # Statistics of 4 shards, pooled: those of one analysis of every latent file.
    code, _, err = run_cli(capsys, generator, "--input", work / "latents", "--stats_only", "--output",
                           tmp_path / "stats-one")
    assert code == 0, err
    one = json.loads((tmp_path / "stats-one" / "stats.json").read_text())
    pooled = json.loads((work / "stats" / "pooled" / "stats.json").read_text())
    assert pooled["frames"] == one["frames"] and pooled["model"] == one["model"] is not None  # sha256 on record
    assert sorted(str(work / s) for s in pooled["sources"]) == sorted(one["sources"])  # the jobs ran in work/
    for key in ("mean", "std", "cov", "corr", "min", "max"):
        a, b = np.asarray(pooled[key]), np.asarray(one[key])
        assert np.max(np.abs(a - b)) <= 1e-9 * np.max(np.abs(b)), key
    assert len(list((work / "generated").glob("*.wav"))) == 2  # and the pool generated


def test_gather_job_fails_and_names_the_file_when_a_task_fails_one(cluster, demo_model, tmp_path):
    work = tmp_path / "work"
    audio = work / "audio"
    for i in range(3):
        write_audio(audio / f"take{i}.wav", 44100, 0.25, seed=i)
    (audio / "broken.wav").write_bytes(b"RIFF but not audio")
    env = {"MODEL": str(demo_model), "INPUT": str(audio), "PYTHON": sys.executable, "RAVEKIT": str(ROOT)}
    out = cluster.call(str(SLURM / "submit.sh"), "--cpus-per-task=1", "--mem=500M", cwd=work,
                       env=env)
    ids = out.split("encode ")[1].replace(",", "").split()[::2]
    states = cluster.wait(ids[:2], TIMEOUT)
    # The task that met the bad file fails, and so does gather; the other three tasks complete.
    assert sorted(states.values()) == ["COMPLETED"] * 3 + ["FAILED"] * 2, states
    assert (work / "runs" / "encode-failed.txt").read_text().split() == [str(audio / "broken.wav")]
    cluster.call("scancel", *ids[2:], check=False)  # statistics never start after a failed gather


def test_decode_and_transfer_arrays_give_one_process_bytes(cluster, fixture_models, tmp_path, capsys):
    import decoder

    work = tmp_path / "work"
    for i in range(6):
        write_audio(work / "audio" / f"take{i}.wav", 44100, 0.3, seed=i)
    model, other = fixture_models["demo"], fixture_models["demo_b"]
    assert run_cli(capsys, encoder, "--model", model, "--input", work / "audio", "--output", work / "latents")[0] == 0
    env = {"MODEL": str(other), "PYTHON": sys.executable, "RAVEKIT": str(ROOT)}
    ids = [cluster.call("sbatch", "--parsable", "--cpus-per-task=1", "--mem=500M", str(SLURM / script), cwd=work,
                        env={**env, **extra}).strip().split(";")[0]
           for script, extra in (("decode.sbatch", {"INPUT": "latents"}),
                                 ("transfer.sbatch", {"INPUT": "audio", "ENCODER": str(model)}))]
    states = cluster.wait(ids, TIMEOUT)
    assert set(states.values()) == {"COMPLETED"} and len(states) == 8, states
    for folder, step, args in (("decoded", "decode", ["--input", work / "latents"]),
                               ("transferred", "transfer", ["--input", work / "audio", "--encoder", model])):
        code, _, err = run_cli(capsys, decoder, "--model", other, *args, "--output", tmp_path / folder)
        assert code == 0, err
        wavs = sorted(p.name for p in (tmp_path / folder).glob("*.wav"))
        assert len(wavs) == 6 and wavs == sorted(p.name for p in (work / folder).glob("*.wav"))
        for name in wavs:
            assert (work / folder / name).read_bytes() == (tmp_path / folder / name).read_bytes(), (folder, name)
        runs = [json.loads(p.read_text()) for p in sorted((work / "runs" / step).glob("*.json"))]
        assert len(runs) == 4 and sum(r["counts"]["written"] for r in runs) == 6
