"""Statistics per shard, pooled exactly (generator.py --stats_only, --shard, --stats a.json b.json ...)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_generator import corpus, write_latents

import generator
from conftest import run_cli
from conftest import save_npy as save_latents
from ravekit.io.latents import make_sidecar

MOMENTS = ("mean", "std", "cov", "corr", "min", "max")


def rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def shard_stats(capsys, folder: Path, out: Path, n: int, *extra) -> list[Path]:
    paths = []
    for k in range(1, n + 1):
        code, _, err = run_cli(capsys, generator, "--input", folder, "--stats_only", "--shard", f"{k}/{n}",
                               "--output", out / f"shard-{k}", *extra)
        assert code == 0, err
        paths.append(out / f"shard-{k}" / "stats.json")
    return paths


@pytest.fixture
def many(tmp_path) -> Path:
    """Seven files that differ in mean and spread (an average of averages would be far off)."""
    write_latents(tmp_path / "lat", corpus(seed=3, dims=5, sizes=(40, 300, 7, 120, 55, 260, 90)))
    return tmp_path / "lat"


def test_pooled_shards_equal_one_machine_analysis(many, tmp_path, capsys):
    code, out, err = run_cli(capsys, generator, "--input", many, "--stats_only", "--output", tmp_path / "one")
    assert code == 0, err
    assert out.split() == [str(tmp_path / "one" / "stats.json")]
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["stats.json"]  # statistics only
    one = json.loads((tmp_path / "one" / "stats.json").read_text())
    parts = shard_stats(capsys, many, tmp_path, 3)
    # Each shard counts its own files, and together they count each file once.
    counted = [json.loads(p.read_text())["sources"] for p in parts]
    assert sorted(s for c in counted for s in c) == sorted(one["sources"]) and all(counted)
    code, _, err = run_cli(capsys, generator, "--stats", *parts, "--stats_only", "--output", tmp_path / "pooled")
    assert code == 0, err
    pooled = json.loads((tmp_path / "pooled" / "stats.json").read_text())
    assert pooled["frames"] == one["frames"] and pooled["files"] == 7
    assert (pooled["sr"], pooled["ratio"]) == (one["sr"], one["ratio"])
    for key in MOMENTS:
        assert rel_err(pooled[key], one[key]) < 1e-9, key
    # An average of the shards' means is not the pooled mean: the test would see it.
    naive = np.mean([json.loads(p.read_text())["mean"] for p in parts], axis=0)
    assert rel_err(naive, one["mean"]) > 1e-3


def test_several_stats_generate_from_the_pool(many, tmp_path, capsys):
    parts = shard_stats(capsys, many, tmp_path, 2)
    assert run_cli(capsys, generator, "--input", many, "--output", tmp_path / "one", "--seed", "5")[0] == 0
    code, out, err = run_cli(capsys, generator, "--stats", *parts, "--output", tmp_path / "two", "--seed", "5")
    assert code == 0, err
    pooled = json.loads((tmp_path / "two" / "stats.json").read_text())
    one = json.loads((tmp_path / "one" / "stats.json").read_text())
    assert rel_err(pooled["cov"], one["cov"]) < 1e-9
    name = Path(out.split()[0]).name
    assert (tmp_path / "one" / name).exists() and (tmp_path / "two" / name).exists()
    meta = json.loads((tmp_path / "two" / name).with_suffix(".json").read_text())
    assert meta["generator"]["stats_source"] == str(tmp_path / "two" / "stats.json")


def test_quartiles_refused_when_pooling_with_the_reason(many, tmp_path, capsys):
    parts = shard_stats(capsys, many, tmp_path, 2, "--iqr")
    code, _, err = run_cli(capsys, generator, "--stats", *parts, "--stats_only", "--iqr", "--output", tmp_path / "p")
    assert code == 2
    assert "do not pool" in err and "--input ALL --iqr --stats_only" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "p").exists()
    # Without --iqr the moments pool, and the quartiles are left out rather than guessed.
    assert run_cli(capsys, generator, "--stats", *parts, "--stats_only", "--output", tmp_path / "p")[0] == 0
    assert "median" not in json.loads((tmp_path / "p" / "stats.json").read_text())


def write_one(folder: Path, array: np.ndarray, *, sr=44100, ratio=2048, model=None) -> Path:
    meta = make_sidecar(sr=sr, ratio=ratio, latent_dims=array.shape[0], frames=array.shape[1], model=model)
    folder.mkdir(parents=True, exist_ok=True)
    return save_latents(folder / "z.npy", array[None].astype(np.float32), meta)


@pytest.mark.parametrize("change, named", [
    (dict(dims=4), "latent dims 4"),
    (dict(sr=48000), "sr 48000"),
    (dict(model={"file": "other.ts", "sha256": "b" * 64}), "other.ts"),
])
def test_pooling_different_latents_is_refused_naming_the_difference(tmp_path, capsys, change, named):
    rng = np.random.default_rng(0)
    same = {"file": "m.ts", "sha256": "a" * 64}
    write_one(tmp_path / "a", rng.standard_normal((5, 50)), model=same)
    write_one(tmp_path / "b", rng.standard_normal((change.get("dims", 5), 50)), sr=change.get("sr", 44100),
              model=change.get("model", same))
    for x in "ab":
        assert run_cli(capsys, generator, "--input", tmp_path / x, "--stats_only", "--output",
                       tmp_path / f"s{x}")[0] == 0
    assert json.loads((tmp_path / "sa" / "stats.json").read_text())["model"] == same
    code, _, err = run_cli(capsys, generator, "--stats", tmp_path / "sa" / "stats.json", tmp_path / "sb" / "stats.json",
                           "--stats_only", "--output", tmp_path / "p")
    assert code == 1 and named in err and "sb" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "p").exists()


def test_a_file_counted_by_two_shards_is_refused(many, tmp_path, capsys):
    parts = shard_stats(capsys, many, tmp_path, 2)
    code, _, err = run_cli(capsys, generator, "--input", many, "--stats_only", "--output", tmp_path / "whole")
    assert code == 0, err
    # Shard 1's files are in the whole analysis too: pooling both would count them twice.
    code, _, err = run_cli(capsys, generator, "--stats", parts[0], tmp_path / "whole" / "stats.json", "--stats_only",
                           "--output", tmp_path / "p")
    assert code == 1 and "pooled twice" in err


def test_shard_without_stats_only_is_refused_and_an_empty_shard_writes_nothing(many, tmp_path, capsys):
    code, _, err = run_cli(capsys, generator, "--input", many, "--shard", "1/2", "--output", tmp_path / "o")
    assert code == 2 and "--stats_only" in err
    # A job array sized above the number of files: its extra tasks succeed with nothing to write, as the
    # encoder's do, so the pooling step that waits on all of them (afterok) still runs.
    code, out, err = run_cli(capsys, generator, "--input", many, "--stats_only", "--shard", "8/8", "--output",
                             tmp_path / "o")
    assert code == 0 and out == "" and "holds no latent file" in err and not (tmp_path / "o").exists()


def test_code_histograms_of_a_discrete_model_add_up(tmp_path, capsys):
    rng = np.random.default_rng(1)
    folder = tmp_path / "codes"
    folder.mkdir()
    for i, frames in enumerate((30, 70, 45)):
        codes = rng.integers(0, 8, (3, frames)).astype(np.float32)
        meta = make_sidecar(sr=44100, ratio=1024, latent_dims=3, frames=frames, codebook_size=8)
        save_latents(folder / f"c{i}.npy", codes[None], meta)
    assert run_cli(capsys, generator, "--input", folder, "--stats_only", "--output", tmp_path / "one")[0] == 0
    parts = shard_stats(capsys, folder, tmp_path, 2)
    assert run_cli(capsys, generator, "--stats", *parts, "--stats_only", "--output", tmp_path / "p")[0] == 0
    one, pooled = (json.loads((tmp_path / d / "stats.json").read_text()) for d in ("one", "p"))
    assert pooled["discrete"] and pooled["codebook_size"] == 8
    assert pooled["histograms"] == one["histograms"] and sum(pooled["histograms"][0]) == 145


@pytest.mark.parametrize("flags", [("--num_files", "3"), ("--pattern", "orale"), ("--bpm", "120"), ("--plot",)])
def test_stats_only_refuses_the_flags_of_patterns_it_does_not_make(many, tmp_path, capsys, flags):
    code, out, err = run_cli(capsys, generator, "--input", many, "--stats_only", *flags, "--output", tmp_path / "o")
    assert code == 2 and out == "" and f"{flags[0]} makes patterns" in err and not (tmp_path / "o").exists(), err


def test_one_statistics_file_named_twice_is_a_command_line_error(many, tmp_path, capsys):
    code, _, err = run_cli(capsys, generator, "--input", many, "--stats_only", "--output", tmp_path / "s")
    assert code == 0, err
    stats = tmp_path / "s" / "stats.json"
    code, out, err = run_cli(capsys, generator, "--stats", stats, stats, "--stats_only", "--output", tmp_path / "p")
    assert code == 2 and out == "" and "given twice" in err and not (tmp_path / "p").exists(), err
