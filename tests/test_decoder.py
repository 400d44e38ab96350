"""decoder.py, in-process, on latents made by encoder.py and by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf

import decoder
import encoder
from conftest import export_facts, real_models, run_cli, save_latent_wav, write_audio
from ravekit.io.latents import make_sidecar


def round_trip(tmp_path, capsys, model, sr, seconds, channels=1):
    src = write_audio(tmp_path / "src.wav", sr, seconds, channels)
    code, lat, _ = run_cli(capsys, encoder, "-m", model, "-i", src, "-o", tmp_path / "lat", lines=True)
    assert code == 0
    code, out, err = run_cli(capsys, decoder, "-m", model, "-i", lat[0], "-o", tmp_path / "dec", lines=True)
    assert code == 0, err
    return sf.read(out[0], always_2d=True), sf.info(out[0])


@pytest.mark.parametrize("name", ["demo", "stereo512", "rave_named"])
def test_round_trip_has_source_length_and_model_format(tmp_path, capsys, fixture_models, name):
    from ravekit.engine.model import load_model

    info = load_model(fixture_models[name], "cpu", checksum=False).info
    (audio, sr), finfo = round_trip(tmp_path, capsys, fixture_models[name], info.sr, 1.37, info.n_channels)
    assert sr == info.sr and audio.shape == (round(1.37 * info.sr), info.target_channels)
    assert finfo.subtype == "FLOAT" and np.isfinite(audio).all()


@real_models
def test_real_export_round_trip(tmp_path, capsys, real_model):
    facts = export_facts(real_model)
    (audio, sr), _ = round_trip(tmp_path, capsys, real_model, 44100, 1.0, facts["n_channels"])
    assert sr == facts["sr"] and audio.shape == (44100, facts["target_channels"]) and 0 < np.abs(audio).max() < 10
    if facts["target_channels"] > 1:  # a stereo export decodes two different channels, not one copied
        assert not np.array_equal(audio[:, 0], audio[:, 1])


def test_demo_model_decodes_something_related_to_the_source(tmp_path, capsys, demo_model):
    """Re-encoding the decoded audio gives back the band envelope of the source."""
    src = tmp_path / "melody.wav"
    from ravekit.demo.model import demo_signal

    sf.write(src, demo_signal(44100, 4.0), 44100, subtype="FLOAT")
    run_cli(capsys, encoder, "-m", demo_model, "-i", src, "-o", tmp_path / "a", lines=True)
    run_cli(capsys, decoder, "-m", demo_model, "-i", tmp_path / "a" / "melody.npy", "-o", tmp_path / "b", lines=True)
    run_cli(capsys, encoder, "-m", demo_model, "-i", tmp_path / "b" / "melody.wav", "-o", tmp_path / "c", lines=True)
    z1, z2 = np.load(tmp_path / "a" / "melody.npy")[0], np.load(tmp_path / "c" / "melody.npy")[0]
    loud = z1.max(axis=1) > -8  # bands that carry the melody
    r = np.corrcoef(z1[loud].ravel(), z2[loud].ravel())[0, 1]
    assert r > 0.9, r


def test_latent_wav_and_2d_npy_inputs(tmp_path, capsys, demo_model):
    z = np.random.default_rng(0).normal(-4, 1, (1, 8, 20)).astype(np.float32)
    meta = make_sidecar(sr=44100, ratio=2048, latent_dims=8, frames=20)
    save_latent_wav(tmp_path / "in" / "gen.wav", z, 44100, 2048, meta)
    np.save(tmp_path / "in" / "plain.npy", z[0])  # (latent_dims, frames), no sidecar
    code, out, _ = run_cli(capsys, decoder, "-m", demo_model, "-i", tmp_path / "in", "-o", tmp_path / "o", lines=True)
    assert code == 0 and len(out) == 2
    for path in out:
        assert sf.info(path).frames == 20 * 2048


def test_dims_checks(tmp_path, capsys, demo_model):
    np.save(tmp_path / "too_many.npy", np.zeros((1, 9, 4), np.float32))
    np.save(tmp_path / "fewer.npy", np.zeros((1, 5, 4), np.float32))
    code, out, err = run_cli(capsys, decoder, "-m", demo_model, "-i", tmp_path / "too_many.npy", tmp_path / "fewer.npy",
                             "-o", tmp_path / "o", lines=True)
    assert code == 1
    assert "too_many.npy" in err and "at most 8" in err
    assert "fewer.npy: 5 latent dims" in err and "noise" in err
    assert out == [str(tmp_path / "o" / "fewer.wav")]


def test_bad_latent_files(tmp_path, capsys, demo_model):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    np.save(tmp_path / "evil.npy", np.array([Evil()], dtype=object), allow_pickle=True)
    np.save(tmp_path / "nan.npy", np.full((1, 8, 3), np.nan, np.float32))
    np.save(tmp_path / "shape.npy", np.zeros((2, 8, 3), np.float32))
    (tmp_path / "trunc.npy").write_bytes(b"\x93NUMPY\x01\x00")
    (tmp_path / "text.npy").write_text("not numpy at all")
    code, out, err = run_cli(capsys, decoder, "-m", demo_model, "-i", tmp_path, "-o", tmp_path / "o",
                             "--extensions", ".npy", lines=True)
    assert code == 1 and not out and not marker.exists()
    for name, why in [("evil", "pickle"), ("nan", "NaN"), ("shape", "shape"), ("trunc", ""),
                      ("text", "no NumPy header")]:
        assert any(f"{name}.npy" in line and why in line for line in err.splitlines()), name


def test_seeded_noise_fill_is_reproducible(tmp_path, capsys, fixture_models):
    """Fewer dims than full_latent_size: the noise fill comes from --seed."""
    np.save(tmp_path / "z.npy", np.full((1, 4, 6), -3.0, np.float32))
    model = fixture_models["rave_named"]
    outs = []
    for seed, folder in [(1, "a"), (1, "b"), (2, "c")]:
        run_cli(capsys, decoder, "-m", model, "-i", tmp_path / "z.npy", "-o", tmp_path / folder, "--seed", seed,
                lines=True)
        outs.append((tmp_path / folder / "z.wav").read_bytes())
    assert outs[0] == outs[1] and outs[0] != outs[2]


def test_subtype_and_no_trim(tmp_path, capsys, demo_model):
    src = write_audio(tmp_path / "s.wav", 44100, 0.5)
    run_cli(capsys, encoder, "-m", demo_model, "-i", src, "-o", tmp_path / "lat", lines=True)
    run_cli(capsys, decoder, "-m", demo_model, "-i", tmp_path / "lat", "-o", tmp_path / "p", "--subtype", "PCM_16",
            "--no_trim", lines=True)
    out = next((tmp_path / "p").rglob("s.wav"))
    assert sf.info(out).subtype == "PCM_16"
    assert sf.info(out).frames == math.ceil(22050 / 2048) * 2048


def test_output_never_replaces_an_input(tmp_path, capsys, demo_model):
    z = np.zeros((1, 8, 4), np.float32) - 3
    save_latent_wav(tmp_path / "x.wav", z, 44100, 2048, None)
    before = (tmp_path / "x.wav").read_bytes()
    code, out, err = run_cli(capsys, decoder, "-m", demo_model, "-i", tmp_path / "x.wav", "-o", tmp_path, lines=True)
    assert code == 2 and "replace an input" in err and not out
    assert (tmp_path / "x.wav").read_bytes() == before


def test_sidecar_from_another_model_warns(tmp_path, capsys, fixture_models):
    src = write_audio(tmp_path / "a.wav", 44100, 0.3)
    run_cli(capsys, encoder, "-m", fixture_models["demo"], "-i", src, "-o", tmp_path / "lat", lines=True)
    code, out, err = run_cli(capsys, decoder, "-m", fixture_models["demo_b"], "-i", tmp_path / "lat",
                             "-o", tmp_path / "o", lines=True)
    assert code == 0 and out and "encoded with demo.ts" in err
    meta = json.loads((tmp_path / "lat" / "a.json").read_text())
    assert sf.info(out[0]).frames == meta["source"]["samples"]


def test_an_audio_wav_is_not_taken_for_latents(tmp_path, capsys, demo_model):
    """An audio-rate WAV is audio: run through the model, not decoded as hours of latent noise."""
    audio = write_audio(tmp_path / "song.wav", 44100, 1.0)
    code, out, err = run_cli(capsys, decoder, "-m", demo_model, "-i", audio, "-o", tmp_path / "o", lines=True)
    assert code == 0 and sf.info(out[0]).frames == 44100
    code, out, err = run_cli(capsys, decoder, "-m", demo_model, "-i", audio, "-o", tmp_path / "p",
                             "--wav_as", "latents", lines=True)
    assert code == 1 and not out and "44100 Hz is audio, not latents" in err


def test_no_trim_to_a_source_length_counted_at_another_rate(tmp_path, capsys, fixture_models):
    src = write_audio(tmp_path / "a.wav", 48000, 1.0)
    run_cli(capsys, encoder, "-m", fixture_models["stereo512"], "-i", src, "-o", tmp_path / "lat", lines=True)
    z = np.load(tmp_path / "lat" / "a.npy")
    code, out, err = run_cli(capsys, decoder, "-m", fixture_models["rave_named"], "-i", tmp_path / "lat" / "a.npy",
                             "-o", tmp_path / "o", lines=True)
    assert code == 0 and "ratio 512" in err
    assert sf.info(out[0]).frames == z.shape[-1] * 1024
