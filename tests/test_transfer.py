"""decoder.py on audio: one-step resynthesis and A-to-B transfer, latent bending, records, refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import decoder
import encoder
from conftest import run_cli, save_latent_wav, write_audio
from ravekit.io.latents import make_sidecar

SHARED = Path(os.environ.get("RAVE_TEST_MODELS", "/nonexistent"))
SEED0, SEED1 = SHARED / "v2cap16_mono_44k_seed0.ts", SHARED / "v2cap16_mono_44k_seed1.ts"
needs_shared = pytest.mark.skipif(not (SEED0.exists() and SEED1.exists()), reason="RAVE_TEST_MODELS not set")


def recordings(folder: Path, sr: int = 44100, channels: int = 1) -> Path:
    write_audio(folder / "a.wav", sr, 1.3, channels, seed=1)
    write_audio(folder / "sub" / "b.flac", 48000, 0.9, 2, seed=2, freq=220.0)
    return folder


def two_step(tmp_path, capsys, enc, dec, src, *flags):
    code, _, err = run_cli(capsys, encoder, "-m", enc, "-i", src, "-o", tmp_path / "lat", *flags, lines=True)
    assert code == 0, err
    code, out, err = run_cli(capsys, decoder, "-m", dec, "-i", tmp_path / "lat", "-o", tmp_path / "two", *flags,
                             lines=True)
    assert code == 0, err
    return sorted(out)


def one_step(tmp_path, capsys, enc, dec, src, *flags):
    code, out, err = run_cli(capsys, decoder, "-m", dec, "--encoder", enc, "-i", src, "-o", tmp_path / "one", *flags,
                             lines=True)
    assert code == 0, err
    return sorted(out), err


def assert_same_audio(a: list[str], b: list[str]) -> None:
    assert [Path(p).name for p in a] == [Path(p).name for p in b] and a
    for x, y in zip(a, b):
        xa, xsr = sf.read(x, dtype="float32", always_2d=True)
        ya, ysr = sf.read(y, dtype="float32", always_2d=True)
        assert xsr == ysr and xa.shape == ya.shape
        np.testing.assert_array_equal(xa, ya)


@pytest.mark.parametrize("enc, dec", [("demo", "demo"), ("demo", "demo_b"), ("streaming", "streaming"),
                                      ("stereo512", "stereo512")])
def test_one_step_equals_the_two_step_pipe(tmp_path, capsys, fixture_models, enc, dec):
    """Same files, seed and chunking: the same samples as encoder.py | decoder.py (streaming latency too)."""
    src = recordings(tmp_path / "rec")
    flags = ("--seed", 5, "--chunk", 0.2)
    two = two_step(tmp_path, capsys, fixture_models[enc], fixture_models[dec], src, *flags)
    one, _ = one_step(tmp_path, capsys, fixture_models[enc], fixture_models[dec], src, *flags)
    assert_same_audio(one, two)


@needs_shared
def test_transfer_between_shared_exports_equals_the_pipe(tmp_path, capsys):
    """Stochastic encoder A, decoder B: bit-identical to the pipe because the seeds are set the same way."""
    src = tmp_path / "rec"
    write_audio(src / "a.wav", 44100, 1.5, seed=3)
    two = two_step(tmp_path, capsys, SEED0, SEED1, src, "--seed", 9, "--chunk", 0.5)
    one, _ = one_step(tmp_path, capsys, SEED0, SEED1, src, "--seed", 9, "--chunk", 0.5)
    assert_same_audio(one, two)
    record = json.loads((tmp_path / "one" / "a.json").read_text())
    assert record["encoder"]["file"] == SEED0.name and record["model"]["file"] == SEED1.name
    assert record["seed"] == 9 and record["bending"] is None and record["frames"] == 66150


def test_resynthesis_without_encoder_uses_the_model(tmp_path, capsys, demo_model):
    src = recordings(tmp_path / "rec")
    two = two_step(tmp_path, capsys, demo_model, demo_model, src)
    code, one, err = run_cli(capsys, decoder, "-m", demo_model, "-i", src, "-o", tmp_path / "one", lines=True)
    assert code == 0 and "written" in err
    assert_same_audio(sorted(one), two)


def test_scale_0_bias_0_equals_decoding_zero_latents(tmp_path, capsys, demo_model):
    src = tmp_path / "rec"
    write_audio(src / "a.wav", 44100, 1.0)
    one, _ = one_step(tmp_path, capsys, demo_model, demo_model, src, "--scale", 0, "--bias", 0)
    frames = -(-44100 // 2048)
    z = tmp_path / "zero" / "a.npy"
    z.parent.mkdir()
    np.save(z, np.zeros((1, 8, frames), np.float32))
    (z.parent / "a.json").write_text(json.dumps(make_sidecar(sr=44100, ratio=2048, latent_dims=8, frames=frames,
                                                             source={"samples": 44100})))
    code, zero, _ = run_cli(capsys, decoder, "-m", demo_model, "-i", z, "-o", tmp_path / "zout", lines=True)
    assert code == 0
    assert_same_audio(one, zero)
    assert np.abs(sf.read(one[0])[0]).max() > 0


def test_dims_reorder_scale_and_bias_as_stated_on_npy_and_audio(tmp_path, capsys, demo_model):
    src = tmp_path / "rec"
    write_audio(src / "a.wav", 44100, 1.0)
    run_cli(capsys, encoder, "-m", demo_model, "-i", src, "-o", tmp_path / "lat", lines=True)
    z = np.load(tmp_path / "lat" / "a.npy")
    by_hand = tmp_path / "hand" / "a.npy"
    by_hand.parent.mkdir()
    bent = z[:, [2, 0, 1, 3, 4, 5, 6, 7]] * np.float32(0.5) + np.array([1, 0, 0, 0, 0, 0, 0, -1], np.float32)[:, None]
    np.save(by_hand, bent.astype(np.float32))
    (by_hand.parent / "a.json").write_bytes((tmp_path / "lat" / "a.json").read_bytes())
    flags = ("--dims", "3,1,2,4,5,6,7,8", "--scale", 0.5, "--bias", "1,0,0,0,0,0,0,-1")
    code, expected, _ = run_cli(capsys, decoder, "-m", demo_model, "-i", by_hand, "-o", tmp_path / "exp", lines=True)
    assert code == 0
    code, from_npy, _ = run_cli(capsys, decoder, "-m", demo_model, "-i", tmp_path / "lat" / "a.npy",
                                "-o", tmp_path / "npy", *flags, lines=True)
    assert code == 0
    from_audio, _ = one_step(tmp_path, capsys, demo_model, demo_model, src, *flags)
    assert_same_audio(from_npy, expected)
    assert_same_audio(from_audio, expected)
    plain, _ = one_step(tmp_path / "p", capsys, demo_model, demo_model, src)
    assert not np.array_equal(sf.read(plain[0])[0], sf.read(expected[0])[0])
    record = json.loads((tmp_path / "npy" / "a.json").read_text())
    assert record["bending"] == {"dims": [3, 1, 2, 4, 5, 6, 7, 8], "scale": [0.5], "bias": [1, 0, 0, 0, 0, 0, 0, -1]}
    assert record["encoder"] is None


def test_different_ratio_and_rate_needs_dims_then_follows_the_decoder(tmp_path, capsys, fixture_models):
    """stereo512 (48 kHz, ratio 512, 4 dims) into demo (44.1 kHz, 2048, 8 dims)."""
    src = tmp_path / "rec"
    write_audio(src / "a.wav", 48000, 1.0, 2)
    enc, dec = fixture_models["stereo512"], fixture_models["demo"]
    code, out, err = run_cli(capsys, decoder, "-m", dec, "--encoder", enc, "-i", src, "-o", tmp_path / "no", lines=True)
    lines = err.strip().splitlines()
    assert code == 2 and not out and len(lines) == 1
    assert "latent size (4 and 8 dims)" in err and "compression ratio (512 and 2048)" in err and "--dims" in err
    one, err = one_step(tmp_path, capsys, enc, dec, src, "--dims", "1,2,3,4")
    assert err.count("48000 Hz") == 1 and "outputs last" in err and "gets 4 of its 8" in err
    info = sf.info(one[0])
    assert info.samplerate == 44100 and info.frames == 48000 * 2048 // 512


@pytest.mark.parametrize("flags, words", [
    (("--scale", "1,2,3"), "--scale gives 3 values for 8 decoded dims"),
    (("--dims", "1,9"), "--dims asks for dim 9"),
])
def test_bending_that_does_not_fit_the_encoder_exits_2(tmp_path, capsys, demo_model, flags, words):
    src = recordings(tmp_path / "rec")
    code, out, err = run_cli(capsys, decoder, "-m", demo_model, "-i", src, "-o", tmp_path / "o", *flags, lines=True)
    assert code == 2 and not out and words in err and len(err.strip().splitlines()) == 1


def test_bending_that_does_not_fit_a_latent_file_fails_that_file(tmp_path, capsys, demo_model):
    np.save(tmp_path / "four.npy", np.zeros((1, 4, 3), np.float32))
    np.save(tmp_path / "eight.npy", np.zeros((1, 8, 3), np.float32))
    code, out, err = run_cli(capsys, decoder, "-m", demo_model, "-i", tmp_path / "four.npy", tmp_path / "eight.npy",
                             "-o", tmp_path / "o", "--dims", "5,6", lines=True)
    assert code == 1 and [Path(p).name for p in out] == ["eight.wav"]
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "four.npy: --dims asks for dims 5, 6, but there are only 4" in errors[0]


def test_discrete_models_refuse_bending_and_continuous_partners(tmp_path, capsys, fixture_models):
    src = recordings(tmp_path / "rec")
    for args, words in [(("--dims", "2,1"), "is a discrete model"), (("--scale", 2), "is a discrete model"),
                        (("--encoder", fixture_models["demo"]), "pair models of the same kind")]:
        code, out, err = run_cli(capsys, decoder, "-m", fixture_models["discrete"], "-i", src, "-o", tmp_path / "o",
                                 *args, lines=True)
        assert code == 2 and not out and words in err and len(err.strip().splitlines()) == 1
    # Its own codes go through, resynthesis of a discrete model works.
    code, out, err = run_cli(capsys, decoder, "-m", fixture_models["discrete"], "-i", src, "-o", tmp_path / "ok",
                             lines=True)
    assert code == 0 and len(out) == 2


def test_a_wav_is_audio_or_latents_by_what_it_is(tmp_path, capsys, demo_model):
    folder = tmp_path / "in"
    write_audio(folder / "song.wav", 44100, 0.5)
    z = np.random.default_rng(0).normal(-3, 1, (1, 8, 10)).astype(np.float32)
    save_latent_wav(folder / "gen.wav", z, 44100, 2048, make_sidecar(sr=44100, ratio=2048, latent_dims=8, frames=10))
    save_latent_wav(folder / "bare.wav", z, 44100, 2048)  # 8 channels at 22 Hz, no sidecar: latents
    sf.write(folder / "low.wav", np.zeros((300, 1), np.float32), 22, subtype="FLOAT")  # 1 channel: either
    code, out, err = run_cli(capsys, decoder, "-m", demo_model, "-i", folder, "-o", tmp_path / "o", lines=True)
    assert code == 1 and sorted(Path(p).name for p in out) == ["bare.wav", "gen.wav", "song.wav"]
    assert sf.info(tmp_path / "o" / "song.wav").frames == 22050
    assert sf.info(tmp_path / "o" / "gen.wav").frames == 10 * 2048
    assert "low.wav: a 22 Hz WAV of 1 channel" in err and "--wav_as audio or --wav_as latents" in err
    code, out, _ = run_cli(capsys, decoder, "-m", demo_model, "-i", folder / "low.wav", "-o", tmp_path / "l",
                           "--wav_as", "latents", lines=True)
    assert code == 0 and sf.info(out[0]).frames == 300 * 2048


def test_records_make_resume_tell_stale_from_finished(tmp_path, capsys, fixture_models):
    src = tmp_path / "rec"
    write_audio(src / "a.wav", 44100, 0.6)
    demo, other = fixture_models["demo"], fixture_models["demo_b"]
    base = ("-m", demo, "-i", src, "-o", tmp_path / "o", "--scale", 0.5)
    code, _, err = run_cli(capsys, decoder, *base, "--encoder", other, lines=True)
    assert code == 0
    record = json.loads((tmp_path / "o" / "a.json").read_text())
    assert record["encoder"]["file"] == "demo_b.ts" and record["encoder"]["processing"]["channel_mode"] == "auto"
    assert record["source"]["sidecar_sha256"] is None and record["source"]["samples"] == 26460
    assert record["bending"] == {"dims": None, "scale": [0.5], "bias": None}
    before = (tmp_path / "o" / "a.wav").stat().st_mtime_ns
    code, _, err = run_cli(capsys, decoder, *base, "--encoder", other, lines=True)
    assert code == 0 and "already there" in err and (tmp_path / "o" / "a.wav").stat().st_mtime_ns == before
    for flags, words in [(("--encoder", demo), "encoder demo_b.ts"), (("--encoder", other, "--scale", 2),
                                                                       "bending --scale 0.5"),
                         (("--encoder", other, "--chunk", 0.1), "chunk_frames")]:
        code, _, err = run_cli(capsys, decoder, *base, *flags, lines=True)
        assert code == 1 and "other settings" in err and words in err, err


def synthesize_long(path: Path, seconds: int, sr: int = 44100) -> Path:
    """A tone with a slow sweep, written block by block (never whole in memory)."""
    t0 = 0
    with sf.SoundFile(str(path), "w", sr, 1, "PCM_16", format="FLAC") as f:
        while t0 < seconds * sr:
            n = min(sr * 60, seconds * sr - t0)
            t = (t0 + np.arange(n)) / sr
            f.write((0.3 * np.sin(2 * np.pi * (220 + 20 * np.sin(t / 30)) * t)).astype(np.float32))
            t0 += n
    return path


PEAK_RSS = """
import resource, sys
sys.path.insert(0, {root!r})
import decoder
code = decoder.main(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, code)
"""


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("RAVEKIT_SLOW_TESTS") != "1", reason="an hour of audio; set RAVEKIT_SLOW_TESTS=1")
def test_an_hour_of_audio_runs_in_flat_memory(tmp_path, demo_model):
    """Peak RSS for an hour of audio stays within 1.3 times that of a minute."""
    import subprocess
    import sys

    root = str(Path(decoder.__file__).resolve().parent)
    peaks = {}
    for name, seconds in (("short", 60), ("long", 3600)):
        src = synthesize_long(tmp_path / f"{name}.flac", seconds)
        res = subprocess.run([sys.executable, "-c", PEAK_RSS.format(root=root), "-m", str(demo_model), "-i", str(src),
                              "-o", str(tmp_path / name), "--subtype", "PCM_16", "-q"],
                             capture_output=True, text=True, timeout=900, check=False)
        rss, code = res.stdout.split()[-2:]
        assert code == "0", res.stderr
        peaks[name] = int(rss)
        assert sf.info(tmp_path / name / f"{name}.wav").frames == seconds * 44100
    assert peaks["long"] < 1.3 * peaks["short"], peaks
