"""Same inputs and flags, same bytes, on every layout of the work (ravekit.engine.layout).

One file encoded and decoded alone, in a batch of four, with --jobs 1 and 2 (files
shared out, or one file's chunks shared by a process pool), with OMP_NUM_THREADS 1
and 4, and as one shard of several: its latents and its audio must be the same
bytes every time, on every export kind under RAVE_TEST_MODELS.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import decoder
import encoder
from conftest import ROOT, real_models, run_cli, write_audio
from ravekit.engine.layout import LAYOUT_VERSION
from ravekit.seeds import chunk_seed

# Half-second calls on 2 s of audio: four chunks, so the pool has chunks of one file to share.
CHUNK = ["--chunk", "0.5"]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def batch(folder: Path, channels: int) -> list[Path]:
    """f0 (2 s, the file followed through every layout) and three shorter companions."""
    files = [write_audio(folder / "f0.wav", seconds=2.0, channels=channels, seed=0)]
    files += [write_audio(folder / f"f{k}.wav", seconds=0.25 * k, channels=channels, seed=k) for k in (1, 2, 3)]
    return files


def run_script(script: str, *args, env: dict | None = None) -> None:
    """The script as a user runs it, in its own process (its threads are set at start-up)."""
    env = {**os.environ, **(env or {})}
    env.pop("RAVEKIT_JOBS", None)
    done = subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


def layouts(capsys, command, script: str, model: Path, alone: Path, folder: Path, out: Path,
            extra: list[str]) -> dict[str, Path]:
    """Run ``command`` on f0 in every layout; return where each layout wrote f0's output folder."""
    common = ["-m", model, *CHUNK, "-q", *extra]
    runs = {
        "alone, --jobs 1": ["-i", alone, "--jobs", 1],
        "batch, --jobs 1": ["-i", folder, "--jobs", 1],
        "alone, --jobs 2 (chunk pool)": ["-i", alone, "--jobs", 2],
        "batch, --jobs 2 (files shared out)": ["-i", folder, "--jobs", 2],
    }
    where = {}
    for name, args in runs.items():
        where[name] = out / name.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "")
        code, _, err = run_cli(capsys, command, *common, *args, "-o", where[name])
        assert code == 0, (name, err)
    for threads in (1, 4):
        name = f"shard 1/2 of the batch, OMP_NUM_THREADS={threads}"
        where[name] = out / f"shard_omp{threads}"
        run_script(script, *common, "-i", folder, "--shard", "1/2", "--jobs", 1, "-o", where[name],
                   env={"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)})
    return where


@real_models
def test_every_layout_gives_the_same_bytes(real_model, tmp_path, capsys):
    from conftest import export_facts

    channels = export_facts(real_model)["n_channels"]
    folder = tmp_path / "in"
    files = batch(folder, channels)
    alone = tmp_path / "alone" / "f0.wav"
    alone.parent.mkdir()
    alone.write_bytes(files[0].read_bytes())
    where = layouts(capsys, encoder, "encoder.py", real_model, alone, folder, tmp_path / "enc", [])
    latents = {name: path / "f0.npy" for name, path in where.items()}
    found = {name: digest(p) for name, p in latents.items()}
    assert len(set(found.values())) == 1, found
    meta = json.loads(latents["alone, --jobs 1"].with_suffix(".json").read_text())
    assert meta["processing"]["layout"] == {"version": LAYOUT_VERSION, "threads": 1}

    # Decoding: the same latents (with their sidecar) alone and beside three others.
    dec_in = tmp_path / "dec_in"
    for k in range(4):
        for ext in (".npy", ".json"):
            src = where["batch, --jobs 1"] / f"f{k}{ext}"
            (dec_in / src.name).parent.mkdir(exist_ok=True)
            (dec_in / src.name).write_bytes(src.read_bytes())
    dec_alone = tmp_path / "dec_alone" / "f0.npy"
    dec_alone.parent.mkdir()
    for ext in (".npy", ".json"):
        dec_alone.with_suffix(ext).write_bytes((dec_in / f"f0{ext}").read_bytes())
    where = layouts(capsys, decoder, "decoder.py", real_model, dec_alone, dec_in, tmp_path / "dec", [])
    found = {name: digest(path / "f0.wav") for name, path in where.items()}
    assert len(set(found.values())) == 1, found


def test_one_file_shares_its_chunks_with_a_pool(tmp_path, capsys, demo_model, monkeypatch):
    """--jobs 2 on one file: a second process computes chunks, and the bytes are those of --jobs 1."""
    import ravekit.engine.pool as pool

    helped = []
    real = pool._helper_call

    monkeypatch.setattr(pool.ChunkPool, "_started", lambda self: _Recording(self, helped, real))
    monkeypatch.setattr("ravekit.commands.parallel.usable_cores", lambda: 2)
    src = write_audio(tmp_path / "long.wav", seconds=6.0)
    for jobs in (1, 2):
        code, _, err = run_cli(capsys, encoder, "-m", demo_model, "-i", src, "-o", tmp_path / f"j{jobs}", "--jobs",
                               jobs, *CHUNK)
        assert code == 0, err
    assert helped, "no chunk went to a helper"
    assert digest(tmp_path / "j1" / "long.npy") == digest(tmp_path / "j2" / "long.npy")


class _Recording:
    """A stand-in executor that runs helper calls in this process (no spawn), recording them."""

    def __init__(self, pool_, helped, real):
        self.helped, self.real = helped, real

    def submit(self, fn, *args):
        from concurrent.futures import Future

        if fn is self.real:
            self.helped.append(args[2])
        future: Future = Future()
        future.set_result(fn(*args))
        return future


def test_chunk_seeds_are_keyed_by_seed_and_chunk():
    assert chunk_seed(7, 0) == 7  # a one-chunk file is seeded as torch.manual_seed(seed) would
    assert chunk_seed(None, 3) is None
    seeds = {chunk_seed(s, k) for s in (0, 1) for k in range(50)}
    assert len(seeds) == 100 and all(0 <= s < 2**63 for s in seeds)
    assert chunk_seed(1, 5) == chunk_seed(1, 5)


def test_outputs_of_an_earlier_layout_are_stale(tmp_path, capsys, demo_model):
    src = write_audio(tmp_path / "in" / "a.wav", seconds=1.0)
    code, out, err = run_cli(capsys, encoder, "-m", demo_model, "-i", src, "-o", tmp_path / "lat", lines=True)
    assert code == 0, err
    lat = Path(out[0])
    code, out, err = run_cli(capsys, decoder, "-m", demo_model, "-i", lat, "-o", tmp_path / "wav", lines=True)
    assert code == 0, err
    wav = Path(out[0])
    for made, command, source in ((lat, encoder, src), (wav, decoder, lat)):
        side = made.with_suffix(".json")
        record = json.loads(side.read_text())
        del record["processing"]["layout"]  # as an earlier ravekit wrote it
        side.write_text(json.dumps(record))
        before = made.read_bytes()
        code, _, err = run_cli(capsys, command, "-m", demo_model, "-i", source, "-o", made.parent)
        assert code == 1 and "arithmetic layout of an earlier ravekit" in err and "--force" in err, err
        assert made.read_bytes() == before
        code, _, err = run_cli(capsys, command, "-m", demo_model, "-i", source, "-o", made.parent, "--force")
        assert code == 0, err
        assert json.loads(side.read_text())["processing"]["layout"]["version"] == LAYOUT_VERSION


def test_threads_are_recorded_and_other_threads_are_stale(tmp_path, capsys, demo_model):
    src = write_audio(tmp_path / "a.wav", seconds=1.0)
    code, out, err = run_cli(capsys, encoder, "-m", demo_model, "-i", src, "-o", tmp_path / "o", "--threads", 2,
                             lines=True)
    assert code == 0, err
    assert json.loads(Path(out[0]).with_suffix(".json").read_text())["processing"]["layout"]["threads"] == 2
    code, _, err = run_cli(capsys, encoder, "-m", demo_model, "-i", src, "-o", tmp_path / "o")
    assert code == 1 and "--threads 2" in err, err


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_bad_threads_is_a_command_line_error(tmp_path, capsys, demo_model, monkeypatch, value):
    src = write_audio(tmp_path / "a.wav", seconds=0.2)
    with pytest.raises(SystemExit) as stop:
        encoder.main(["-m", str(demo_model), "-i", str(src), "-o", str(tmp_path / "o"), "--threads", value])
    assert stop.value.code == 2 and "--threads" in capsys.readouterr().err
    monkeypatch.setenv("RAVEKIT_THREADS", value)
    with pytest.raises(SystemExit) as stop:
        decoder.main(["-m", str(demo_model), "-i", str(src), "-o", str(tmp_path / "o")])
    assert stop.value.code == 2 and "RAVEKIT_THREADS" in capsys.readouterr().err
