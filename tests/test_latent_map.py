"""decoder.py --map: a latent map from --encoder to --model, fitted on audio, saved, reused, refused otherwise."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import decoder
import encoder
from conftest import run_cli, write_audio
from ravekit.engine.latent_map import MeanEncoding
from ravekit.engine.latent_map_file import load_map
from ravekit.engine.model import load_model, quiet_jit

SHARED = Path(os.environ.get("RAVE_TEST_MODELS", "/nonexistent")).parent
PLUCKS_A, PLUCKS_B = SHARED / "trained-models" / "plucks_a.ts", SHARED / "trained-models" / "plucks_b.ts"
AUDIO = sorted((SHARED / "audio").glob("plucks_777_*.wav"))
DISCRETE = SHARED / "rave-models" / "kinds" / "discretecap16_mono_44k_seed0.ts"
needs_pair = pytest.mark.skipif(not (PLUCKS_A.exists() and PLUCKS_B.exists() and len(AUDIO) == 8),
                                reason="the trained pair and its audio (RAVE_TEST_MODELS/../trained-models, audio)")


def fit(capsys, tmp_path, enc, dec, *extra, inputs=None, out="out"):
    return run_cli(capsys, decoder, "-m", dec, "--encoder", enc, "--map", "fit", "--map_audio", *AUDIO[:6],
                   "--map_holdout", *AUDIO[6:], *extra, "-i", inputs or AUDIO[7], "-o", tmp_path / out, "-q")


@pytest.fixture(scope="module")
def rotated(tmp_path_factory):
    """plucks_a with its latent space rotated, scaled and shifted: ``z_B = M z_A + t`` over all 128 dims."""
    folder = tmp_path_factory.mktemp("rotated")
    with quiet_jit():
        m = torch.jit.load(str(PLUCKS_A))
    sd = m.state_dict()
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.standard_normal((128, 128)))
    M = (1.5 * q).astype(np.float32)
    d = (0.1 * rng.standard_normal(128)).astype(np.float32)
    # z_A = P (h - mean); with P_B = M P and mean_B = mean + d: z_B = M z_A - M P d.
    t = -M.astype(np.float64) @ sd["latent_pca"].numpy().astype(np.float64) @ d
    with torch.no_grad():
        sd["latent_pca"].copy_(torch.from_numpy(M) @ sd["latent_pca"])
        sd["latent_mean"].add_(torch.from_numpy(d))
    path = folder / "plucks_a_rotated.ts"
    with quiet_jit():
        torch.jit.save(m, str(path))
    return path, M.astype(np.float64), t


@needs_pair
def test_fit_recovers_a_known_rotation_and_mapped_transfer_equals_b_resynthesis(capsys, tmp_path, rotated):
    path, M, t = rotated
    code, out, err = fit(capsys, tmp_path, PLUCKS_A, path, "--map_ridge", "0")
    assert code == 0, err
    latent_map = load_map(tmp_path / "out" / f"plucks_a_to_{path.stem}.map.npz")
    assert (latent_map.audio.space_in, latent_map.audio.space_out) == ("full", "full")
    W, b = latent_map.audio.weight, latent_map.audio.bias
    # The dims A's audio moves are recovered; its faintest dims hardly move (std 0.005 against 3 for the
    # first), so their columns, and with them the bias, are not determined by any audio: the map's output is.
    assert np.abs(W[:, :16] - M[:, :16]).max() < 1e-3
    assert latent_map.meta["maps"]["audio"]["r2_holdout"] > 0.9999
    x, sr = sf.read(str(AUDIO[7]), dtype="float32")
    b_model = load_model(path, "cpu")
    za = MeanEncoding(load_model(PLUCKS_A, "cpu")).encode(torch.from_numpy(x)[None, None])[0].numpy()
    z = MeanEncoding(b_model).encode(torch.from_numpy(x)[None, None])
    assert np.abs(W @ za + b[:, None] - z[0].numpy()).max() < 1e-5 * np.abs(z.numpy()).max()  # 4e-7 measured
    assert np.abs(W @ za + b[:, None] - (M @ za + t[:, None])).max() < 1e-3 * np.abs(z.numpy()).max()
    # Mapped transfer A -> B plays what B itself makes of the audio (posterior means, all dims: no noise).
    own = b_model.decode(z)[0, 0].numpy()[:x.size]
    mapped = sf.read(str(tmp_path / "out" / "plucks_777_7.wav"), dtype="float32")[0]
    assert mapped.shape == own.shape
    assert np.abs(mapped - own).max() < 1e-5 * np.abs(own).max()  # 5e-7 measured


@needs_pair
def test_saved_map_reloads_bit_for_bit_and_is_refused_for_another_pair(capsys, tmp_path):
    code, _, err = fit(capsys, tmp_path, PLUCKS_A, PLUCKS_B)
    assert code == 0, err
    saved = tmp_path / "out" / "plucks_a_to_plucks_b.map.npz"
    first = load_map(saved)
    time.sleep(2)  # a zip's times have 2 s steps: a save stamped with the time would differ now
    again = load_map(first.save(tmp_path / "copy.npz").path)
    # The same map is the same bytes (what concurrent fits of --jobs workers rely on).
    assert (tmp_path / "copy.npz").read_bytes() == saved.read_bytes() and again.sha256 == first.sha256
    assert again.meta == first.meta
    for part in ("audio", "latents"):
        for key in ("weight", "bias", "r2_fit", "r2_holdout"):
            a, b = getattr(first.part(part), key), getattr(again.part(part), key)
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    meta = json.loads(str(np.load(saved, allow_pickle=False)["meta"]))
    assert meta["encoder"]["file"] == "plucks_a.ts" and len(meta["audio"]) == 6 and meta["seconds"] == 30.0
    assert len(meta["maps"]["audio"]["r2_holdout_exported_dims"]) == 8
    code, _, err = run_cli(capsys, decoder, "-m", PLUCKS_A, "--encoder", PLUCKS_B, "--map", saved,
                           "-i", AUDIO[7], "-o", tmp_path / "swapped")
    assert code == 2 and "plucks_a.ts -> plucks_b.ts" in err and "--encoder plucks_b.ts -> --model plucks_a.ts" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "swapped").exists()


@needs_pair
def test_another_map_or_none_makes_earlier_outputs_stale_and_latents_use_their_own_fit(capsys, tmp_path):
    assert fit(capsys, tmp_path, PLUCKS_A, PLUCKS_B)[0] == 0
    saved = tmp_path / "out" / "plucks_a_to_plucks_b.map.npz"
    record = json.loads((tmp_path / "out" / "plucks_777_7.json").read_text())
    assert record["map"]["sha256"] == load_map(saved).sha256 and record["map"]["fit"] == "audio"
    code, _, err = run_cli(capsys, decoder, "-m", PLUCKS_B, "--encoder", PLUCKS_A, "-i", AUDIO[7],
                           "-o", tmp_path / "out")
    assert code == 1 and "map plucks_a_to_plucks_b.map.npz" in err
    # Another map (fitted on other audio) is stale too.
    other = tmp_path / "other"
    code, _, err = run_cli(capsys, decoder, "-m", PLUCKS_B, "--encoder", PLUCKS_A, "--map", "fit", "--map_audio",
                           *AUDIO[1:7], "-i", AUDIO[7], "-o", other, "-q")
    assert code == 0, err
    code, _, err = run_cli(capsys, decoder, "-m", PLUCKS_B, "--encoder", PLUCKS_A, "--map",
                           other / "plucks_a_to_plucks_b.map.npz", "-i", AUDIO[7], "-o", tmp_path / "out")
    assert code == 1 and "map plucks_a_to_plucks_b.map.npz" in err
    # A's .npy latents (its 8 exported dims) go through the map's latents fit.
    assert run_cli(capsys, encoder, "-m", PLUCKS_A, "-i", AUDIO[7], "-o", tmp_path / "lat")[0] == 0
    code, _, err = run_cli(capsys, decoder, "-m", PLUCKS_B, "--encoder", PLUCKS_A, "--map", saved,
                           "-i", tmp_path / "lat", "-o", tmp_path / "fromlat")
    assert code == 0, err
    record = json.loads((tmp_path / "fromlat" / "plucks_777_7.json").read_text())
    assert record["map"]["fit"] == "latents" and record["map"]["dims_in"] == 8
    # B's own latents are not A's: refused with one line naming the file.
    assert run_cli(capsys, encoder, "-m", PLUCKS_B, "-i", AUDIO[7], "-o", tmp_path / "blat")[0] == 0
    code, _, err = run_cli(capsys, decoder, "-m", PLUCKS_B, "--encoder", PLUCKS_A, "--map", saved,
                           "-i", tmp_path / "blat", "-o", tmp_path / "fromb")
    assert code == 1 and "made by plucks_b.ts" in err


@needs_pair
def test_bad_input_gets_one_line(capsys, tmp_path):
    short = fit(capsys, tmp_path, PLUCKS_A, PLUCKS_B, out="short")
    code, _, err = run_cli(capsys, decoder, "-m", PLUCKS_B, "--encoder", PLUCKS_A, "--map", "fit", "--map_audio",
                           AUDIO[0], "-i", AUDIO[7], "-o", tmp_path / "one")
    assert short[0] == 0 and code == 1 and "--map_audio: 5.0 s of audio" in err and "give at least" in err
    nan = tmp_path / "nan.wav"
    x = sf.read(str(AUDIO[0]), dtype="float32")[0]
    x[1000] = np.nan
    sf.write(str(nan), x, 44100, subtype="FLOAT")
    code, _, err = run_cli(capsys, decoder, "-m", PLUCKS_B, "--encoder", PLUCKS_A, "--map", "fit", "--map_audio",
                           *AUDIO[1:6], nan, "-i", AUDIO[7], "-o", tmp_path / "nan")
    assert code == 1 and "nan.wav" in err and "NaN" in err
    # Audio at another rate is resampled, and said once for all such files.
    other = [write_audio(tmp_path / f"sr{i}.wav", 48000, 5.0, seed=i) for i in range(2)]
    code, _, err = run_cli(capsys, decoder, "-m", PLUCKS_B, "--encoder", PLUCKS_A, "--map", "fit", "--map_audio",
                           *AUDIO[:5], *other, "-i", AUDIO[7], "-o", tmp_path / "sr")
    assert code == 0, err
    assert len([line for line in err.splitlines() if "resampled" in line]) == 1
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    for flags in (["--map", corrupt], ["--map", "fit"], ["--map_audio", AUDIO[0]], ["--map", "fit", "--map_audio",
                                                                                     tmp_path / "missing.wav"]):
        code, _, err = run_cli(capsys, decoder, "-m", PLUCKS_B, "--encoder", PLUCKS_A, *flags, "-i", AUDIO[7],
                               "-o", tmp_path / "bad")
        assert code == 2 and len(err.strip().splitlines()) == 1 and "--input" not in err, (flags, err)
    code, _, err = run_cli(capsys, decoder, "-m", PLUCKS_B, "--map", "fit", "--map_audio", AUDIO[0],
                           "-i", AUDIO[7], "-o", tmp_path / "bad")
    assert code == 2 and "give --encoder" in err
    # nn~ applies no map: a live render through one would be a sound the patch cannot make.
    code, _, err = run_cli(capsys, decoder, "-m", PLUCKS_B, "--encoder", PLUCKS_A, "--map", "fit", "--map_audio",
                           *AUDIO[:6], "--live", 4096, "-i", AUDIO[7], "-o", tmp_path / "live")
    assert code == 2 and "--live" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.skipif(not DISCRETE.exists(), reason="RAVE_TEST_MODELS not set")
def test_discrete_models_are_refused_with_the_reason(capsys, tmp_path):
    audio = write_audio(tmp_path / "a.wav", 44100, 2.0)
    code, _, err = run_cli(capsys, decoder, "-m", DISCRETE, "--encoder", DISCRETE, "--map", "fit", "--map_audio",
                           audio, "-i", audio, "-o", tmp_path / "out")
    assert code == 2 and "discrete model" in err and "codebook indices" in err


@needs_pair
def test_short_or_poor_fits_are_said_with_what_to_do(capsys, tmp_path):
    code, _, err = run_cli(capsys, decoder, "-m", PLUCKS_B, "--encoder", PLUCKS_A, "--map", "fit", "--map_audio",
                           *AUDIO[:2], "-i", AUDIO[7], "-o", tmp_path / "short")
    assert code == 0 and "10.0 s (216 frames) for 129 values per dim is short" in err and "--map_holdout" in err
    # Fitted on steady tones, the map knows nothing of plucks: its R² on them says so.
    tones = [write_audio(tmp_path / f"tone{i}.wav", 44100, 10.0, seed=i, freq=110.0 * (i + 1)) for i in range(4)]
    code, _, err = run_cli(capsys, decoder, "-m", PLUCKS_B, "--encoder", PLUCKS_A, "--map", "fit", "--map_audio",
                           *tones, "--map_holdout", *AUDIO[6:], "-i", AUDIO[7], "-o", tmp_path / "poor")
    assert code == 0 and "a poor fit" in err and "held-out" in err, err


@needs_pair
def test_with_a_map_models_of_different_latent_size_need_no_dims(capsys, tmp_path):
    with quiet_jit():
        m = torch.jit.load(str(PLUCKS_B))
    m.latent_size = 4  # B exports 4 dims instead of 8: same weights, another latent size
    with torch.no_grad():
        m.encode_params[2], m.decode_params[0] = 4, 4
    small = tmp_path / "plucks_b4.ts"
    with quiet_jit():
        torch.jit.save(m, str(small))
    code, _, err = run_cli(capsys, decoder, "-m", small, "--encoder", PLUCKS_A, "-i", AUDIO[7], "-o", tmp_path / "raw")
    assert code == 2 and "--dims" in err
    code, _, err = fit(capsys, tmp_path, PLUCKS_A, small)
    assert code == 0, err
    assert sf.info(str(tmp_path / "out" / "plucks_777_7.wav")).frames == sf.info(str(AUDIO[7])).frames
