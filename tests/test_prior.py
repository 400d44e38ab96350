"""generator.py --prior on the real MSPrior export and its RAVE model: reproducible, in tempo, checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import decoder
import generator
import inspector
from conftest import ROOT, full_disk_at_call, write_audio

MODELS = Path(os.environ.get("RAVE_TEST_MODELS", "/nonexistent"))
PRIOR = Path(os.environ.get("RAVE_TEST_PRIOR", MODELS.parent / "priors" / "prior_small_v2cap16_mono_44k_seed0.ts"))
MODEL = MODELS / "v2cap16_mono_44k_seed0.ts"
pytestmark = pytest.mark.skipif(not (PRIOR.is_file() and MODEL.is_file()),
                                reason="the shared MSPrior export and its RAVE model are not here")


def gen(capsys, out: Path, *args) -> tuple[int, str]:
    code = generator.main(["--prior", str(PRIOR), "--model", str(MODEL), "-o", str(out), *map(str, args)])
    return code, capsys.readouterr().err


def wavs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.wav"))}


@pytest.fixture(scope="module")
def prompt_latents(tmp_path_factory) -> Path:
    """Latents of two synthesized sounds, encoded by the RAVE model the prior belongs to."""
    import encoder

    folder = tmp_path_factory.mktemp("prompt")
    write_audio(folder / "a.wav", seconds=2.0, freq=220.0)
    write_audio(folder / "b.wav", seconds=1.0, freq=330.0, seed=1)
    assert encoder.main(["-i", str(folder / "a.wav"), str(folder / "b.wav"), "-m", str(MODEL),
                         "-o", str(folder / "latents"), "--quiet"]) == 0
    return folder / "latents"


def test_done_command_writes_pd_ready_loops(capsys, tmp_path, prompt_latents):
    code, err = gen(capsys, tmp_path / "out", "--input", prompt_latents, "--pattern", "loop", "--bpm", 120,
                    "--num_files", 4, "--seed", 1, "--num_loops", 3)
    assert code == 0, err
    files = sorted((tmp_path / "out").glob("loop_prior_k*_s1_*.wav"))
    assert len(files) == 4
    for f in files:
        info = sf.info(str(f))
        assert info.subtype == "FLOAT" and info.channels == 8  # what Pd's soundfiler reads
        meta = json.loads(f.with_suffix(".json").read_text())
        k = meta["generator"]["num_latents"]
        assert abs(meta["generator"]["bpm"] - 120) < 0.05 * 120
        assert meta["prior"]["file"] == PRIOR.name and len(meta["prior"]["sha256"]) == 64
        assert meta["prior"]["temperature"] == 1.0
        assert [p["file"] for p in meta["prior"]["prompt"]["files"]] == [
            str(prompt_latents / "a.npy"), str(prompt_latents / "b.npy")]
        data, _ = sf.read(str(f), dtype="float32", always_2d=True)
        assert data.shape == (3 * k, 8)
        for j in (1, 2):  # an exact loop of k frames
            assert np.array_equal(data[j * k:(j + 1) * k], data[:k])
        assert np.ptp(data[:k], axis=0).max() > 0  # the k frames are generated, not one held frame


def test_same_seed_same_bytes_in_one_process_whatever_came_before(capsys, tmp_path, prompt_latents):
    args = ("--input", prompt_latents, "--num_latents", 6, "--num_files", 2, "--seed", 5)
    assert gen(capsys, tmp_path / "a", *args)[0] == 0
    # Other work in between leaves the prior's caches full: the next run must not hear it.
    assert gen(capsys, tmp_path / "other", "--num_latents", 300, "--pattern", "continuation", "--seed", 9)[0] == 0
    assert gen(capsys, tmp_path / "b", *args)[0] == 0
    assert wavs(tmp_path / "a") == wavs(tmp_path / "b")
    assert gen(capsys, tmp_path / "seed6", *args[:-1], 6)[0] == 0
    assert gen(capsys, tmp_path / "silence", *args[2:])[0] == 0
    first = (tmp_path / "a" / "loop_prior_k6_s5_000.wav").read_bytes()
    assert (tmp_path / "seed6" / "loop_prior_k6_s6_000.wav").read_bytes() != first
    assert (tmp_path / "silence" / "loop_prior_k6_s5_000.wav").read_bytes() != first
    a, b = (tmp_path / "a" / f"loop_prior_k6_s5_00{i}.wav" for i in (0, 1))
    assert a.read_bytes() != b.read_bytes()  # each file is its own generation


def test_same_seed_same_bytes_across_processes(capsys, tmp_path, prompt_latents):
    args = ["--prior", str(PRIOR), "--model", str(MODEL), "--input", str(prompt_latents), "--num_latents", "5",
            "--pattern", "orale", "--orale_levels", "1", "--seed", "3", "--temperature", "0.7"]
    assert generator.main(args + ["-o", str(tmp_path / "here")]) == 0
    capsys.readouterr()
    subprocess.run([sys.executable, "generator.py", *args, "-o", str(tmp_path / "there")], cwd=ROOT, check=True,
                   capture_output=True, timeout=300)
    assert wavs(tmp_path / "here") == wavs(tmp_path / "there") != {}


def test_audio_prompt_is_encoded_and_changes_the_output(capsys, tmp_path):
    audio = write_audio(tmp_path / "tone.wav", seconds=1.5, freq=110.0)
    assert gen(capsys, tmp_path / "a", "--input", audio, "--num_latents", 4)[0] == 0
    assert gen(capsys, tmp_path / "s", "--num_latents", 4)[0] == 0
    meta = json.loads((tmp_path / "a" / "loop_prior_k4_s0_000.json").read_text())
    assert meta["prior"]["prompt"]["files"][0]["audio"] is True
    assert meta["prior"]["prompt"]["frames"] == -(-int(1.5 * 44100) // 2048)
    assert wavs(tmp_path / "a").values() != wavs(tmp_path / "s").values()


def test_generated_latents_decode_to_finite_audio(capsys, tmp_path):
    assert gen(capsys, tmp_path / "lat", "--num_latents", 8, "--pattern", "swapper", "--swapper_steps", 2,
               "--embeddings")[0] == 0
    assert decoder.main(["-i", str(tmp_path / "lat"), "-m", str(MODEL), "-o", str(tmp_path / "audio"),
                         "--quiet"]) == 0
    capsys.readouterr()
    (out,) = (tmp_path / "audio").glob("*.wav")
    audio, sr = sf.read(str(out), dtype="float32")
    assert sr == 44100 and audio.shape[0] == 2 * 8 * 2048 and np.isfinite(audio).all()


class _FakePrior(torch.nn.Module):
    """Just enough of an MSPrior export to be recognised: a prior for ``n`` latent dims."""

    def __init__(self, n: int):
        super().__init__()
        self.register_buffer("forward_params", torch.tensor([n, 2048, n + 1, 2048]))
        self.temperature = 1.0
        self.listen = True

    @torch.jit.export
    def set_temperature(self, value: float) -> int:
        self.temperature = value
        return 0

    @torch.jit.export
    def set_listen(self, value: bool) -> int:
        self.listen = value
        return 0

    def forward(self, x):
        return torch.cat([x, x[:, :1]], 1)


def test_prior_for_another_latent_count_is_refused(capsys, tmp_path):
    from ravekit.engine.model import quiet_jit

    fake = tmp_path / "prior16.ts"
    with quiet_jit():
        torch.jit.save(torch.jit.script(_FakePrior(16)), str(fake))
    code = generator.main(["--prior", str(fake), "--model", str(MODEL), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert str(fake) in err and str(MODEL) in err and "16 latent dims" in err and "has 8" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("which", ["rave", "fixture"])
def test_a_model_that_is_not_a_prior_is_refused(capsys, tmp_path, demo_model, which):
    path = MODEL if which == "rave" else demo_model
    code = generator.main(["--prior", str(path), "--model", str(MODEL), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "not an MSPrior prior" in err and str(path) in err


def test_long_generation_rolls_over_in_flat_memory():
    from ravekit.generate.prior import load_prior

    prior = load_prior(PRIOR, checksum=False)
    rss = []

    def progress(done: int) -> None:
        with open("/proc/self/statm") as f:
            rss.append((done, int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")))

    start = time.perf_counter()
    out = prior.generate(2000, seed=0, prompt=None, progress=progress)
    seconds = time.perf_counter() - start
    print(f"2000 frames in {seconds:.1f} s ({seconds / 2000 * 1000:.2f} ms per frame)")
    assert out.shape == (2000, 8) and np.isfinite(out).all()
    assert np.ptp(out[1500:], axis=0).min() > 0  # still generating long past the 256-frame context
    assert [d for d, _ in rss][-1] == 2000 and len(rss) >= 2000 // 64
    settled = [r for d, r in rss if d >= 500]
    assert max(settled) - min(settled) < 20e6  # no growth with length beyond the output itself
    assert seconds < 2000 * 0.05  # ~0.7 ms per frame alone on 2 cores; 50 ms allows a loaded machine


def test_continuation_writes_one_unlooped_stretch_with_progress(capsys, tmp_path, monkeypatch):
    from ravekit.generate import pipeline

    seen = []
    real = pipeline.generate
    monkeypatch.setattr(pipeline, "generate",
                        lambda req, **kw: real(req, **{**kw, "progress": lambda d, t: seen.append((d, t))}))
    code, err = gen(capsys, tmp_path, "--pattern", "continuation", "--num_latents", 10, "--num_loops", 30)
    assert code == 0, err
    data, _ = sf.read(str(tmp_path / "continuation_prior_k10_s0_000.wav"), dtype="float32", always_2d=True)
    assert data.shape == (300, 8)
    assert not np.array_equal(data[:10], data[10:20])  # a continuation, not a loop
    rate = 44100 / 2048
    assert seen[-1] == pytest.approx((300 / rate, 300 / rate)) and len(seen) == 5


def test_flag_clashes_and_missing_model(capsys, tmp_path):
    out = str(tmp_path / "out")
    assert generator.main(["--prior", str(PRIOR), "-o", out]) == 2
    assert "--prior needs --model" in capsys.readouterr().err
    assert generator.main(["--prior", str(PRIOR), "--model", str(MODEL), "--distribution", "uniform", "-o", out]) == 2
    assert "give one or the other" in capsys.readouterr().err
    assert generator.main(["--prior", str(PRIOR), "--model", str(MODEL), "--temperature", "nan", "-o", out]) == 2
    assert "--temperature" in capsys.readouterr().err


def test_inspector_reports_the_prior(capsys):
    assert inspector.main(["-i", str(PRIOR)]) == 0
    text = capsys.readouterr().out
    assert "MSPrior" in text and "8 latent dims at ratio 2048" in text and "64 tokens" in text
    assert "context 256 frames" in text and "no encode() method" not in text
    assert inspector.main(["-i", str(PRIOR), "--json"]) == 0
    (s,) = json.loads(capsys.readouterr().out)
    assert s["msprior"]["latent_size"] == 8 and s["msprior"]["seq_len"] == 256
    assert s["msprior"]["attributes"]["temperature"] == 1.0
    from ravekit.io.files import sha256_of

    assert s["msprior"]["sha256"] == s["sha256"] == sha256_of(PRIOR)


def test_a_prompt_longer_than_the_context_is_heard_by_its_end(capsys, tmp_path):
    from conftest import save_npy

    rng = np.random.default_rng(0)
    long = rng.standard_normal((1, 8, 600)).astype(np.float32)
    save_npy(tmp_path / "long.npy", long)
    save_npy(tmp_path / "end.npy", np.ascontiguousarray(long[:, :, -256:]))
    assert gen(capsys, tmp_path / "a", "--input", tmp_path / "long.npy", "--num_latents", 4)[0] == 0
    assert gen(capsys, tmp_path / "b", "--input", tmp_path / "end.npy", "--num_latents", 4)[0] == 0
    meta = json.loads((tmp_path / "a" / "loop_prior_k4_s0_000.json").read_text())
    assert meta["prior"]["prompt"]["frames"] == 600 and meta["prior"]["prompt"]["heard"] == 256
    assert wavs(tmp_path / "a") == wavs(tmp_path / "b")


def test_pd_patch_plays_prior_loops(capsys, tmp_path, prompt_latents):
    code, err = gen(capsys, tmp_path / "out", "--input", prompt_latents, "--pattern", "loop", "--bpm", 120,
                    "--num_files", 2, "--seed", 1, "--pd")
    assert code == 0, err
    patches = list((tmp_path / "out").glob("loop_prior_k*_s1.pd"))
    assert len(patches) == 1 and f"Pure Data patch: {patches[0]}" in err
    text = patches[0].read_text()
    assert f"nn~ {MODEL.resolve()} decode" in text
    assert all(w.name in text for w in (tmp_path / "out").glob("*.wav"))
    code, err = gen(capsys, tmp_path / "out", "--input", prompt_latents, "--pattern", "loop", "--bpm", 120,
                    "--num_files", 2, "--seed", 1, "--pd")
    assert code == 1 and "already exists" in err  # the patch is one of the run's outputs


def test_a_prompt_encoded_by_another_model_is_named(capsys, tmp_path, prompt_latents):
    other = tmp_path / "other.npy"
    other.write_bytes((prompt_latents / "b.npy").read_bytes())
    meta = json.loads((prompt_latents / "b.json").read_text())
    meta["model"] = {"file": "v2cap16_mono_44k_seed1.ts", "sha256": "0" * 64}
    other.with_suffix(".json").write_text(json.dumps(meta))
    code, err = gen(capsys, tmp_path / "out", "--input", other, "--num_latents", 4)
    assert code == 0, err
    said = [line for line in err.splitlines() if "warning" in line]
    assert len(said) == 1 and str(other) in said[0] and "encoded with v2cap16_mono_44k_seed1.ts" in said[0]
    assert MODEL.name in said[0]
    # Its own model's latents say nothing.
    code, err = gen(capsys, tmp_path / "own", "--input", prompt_latents / "b.npy", "--num_latents", 4)
    assert code == 0 and "warning" not in err, err


def test_a_prior_run_that_fails_part_way_leaves_nothing_that_refuses_the_next(capsys, tmp_path, monkeypatch):
    from ravekit.generate import pipeline

    real_write = pipeline.write_output
    monkeypatch.setattr(pipeline, "write_output", full_disk_at_call(real_write, 2))  # at the second file
    args = ("--num_latents", 4, "--num_files", 3, "--plot", "--pd")
    code, err = gen(capsys, tmp_path / "out", *args)
    assert code == 1 and "No space left" in err
    assert not (tmp_path / "out").exists()  # the folder the failed run made goes with what it wrote
    monkeypatch.setattr(pipeline, "write_output", real_write)
    code, err = gen(capsys, tmp_path / "out", *args)
    assert code == 0, err
    assert len(list((tmp_path / "out").glob("*.wav"))) == 3


def test_messages_go_above_the_progress_bar_not_into_it(capsys, tmp_path, prompt_latents, monkeypatch):
    import io

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    code = generator.main(["--prior", str(PRIOR), "--model", str(MODEL), "-o", str(tmp_path / "o"), "--input",
                           str(prompt_latents), "--num_latents", "4", "--double"])
    assert code == 0, term.getvalue()
    text = term.getvalue()
    # What the terminal shows of each line: what follows its last carriage return.
    shown = [line.rsplit("\r", 1)[-1] for line in text.split("\n")]
    said = [line for line in shown if any(m in line for m in ("BPM at", "warning: --double", "prompt: "))]
    assert len(said) == 3, text
    assert not any("s of audio" in line for line in said), said  # each on a line of its own, none in the bar's
    assert "s of audio" in text  # the bar was drawn
