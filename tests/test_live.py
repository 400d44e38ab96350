"""``--live BUFFER``: encoder.py and decoder.py render exactly as nn~ plays.

The references below are a plain Python loop of what nn~ does (docs/rave-exports.md),
written from the model file alone: calls on ``BUFFER`` samples, the caches of a
streaming export carried, the output late by two buffers less one Pd block,
step-held, a latent signal read at the last sample of each ratio block.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import decoder
import encoder
from conftest import export_facts, real_models, run_cli, write_audio

KINDS = Path(os.environ.get("RAVE_TEST_MODELS", "/nonexistent")) / "kinds"
STREAMING = KINDS / "v2cap16_mono_44k_seed2_streaming.ts"
PLAIN = KINDS / "v2cap16_mono_44k_seed2.ts"
needs_real = pytest.mark.skipif(not (STREAMING.exists() and PLAIN.exists()),
                                reason="real v2 exports not in RAVE_TEST_MODELS/kinds")


def load_fresh(path: Path):
    """The model as nn~ would load it, with a streaming export's caches zeroed (= a fresh load)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        m = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        for name, b in m.named_buffers():
            if name.endswith((".pad", ".cache")):
                b.zero_()
    return m


def nn_decode(path: Path, z: np.ndarray, buffer: int, seed: int, calls: int) -> np.ndarray:
    """What ``[nn~ MODEL decode BUFFER]`` outputs from DSP start for latents ``(1, dims, frames)`` held step-wise.

    The latent inlets get ``decode_params[0]`` dims, the last frame held after
    the end; ravekit fills the dims nn~ does not feed with numpy's seeded
    normal rows, one row per frame (docs/decoder.md).
    """
    facts = export_facts(path)
    m = load_fresh(path)
    inlets, r = int(m.decode_params[0]), int(m.decode_params[1])
    per = buffer // r
    z = z[0, :inlets].astype(np.float32)
    z = np.concatenate([z, np.repeat(z[:, -1:], calls * per - z.shape[1], axis=1)], axis=1)
    missing = 0 if facts["discrete"] else facts["decode_dims"] - inlets
    if missing:
        z = np.concatenate([z, np.random.default_rng(seed).standard_normal((z.shape[1], missing),
                                                                          dtype=np.float32).T])
    torch.manual_seed(seed)
    out = []
    with torch.inference_mode():
        for k in range(calls):
            out.append(m.decode(torch.from_numpy(np.ascontiguousarray(z[:, k * per:(k + 1) * per]))[None])[0].numpy())
    y = np.concatenate(out, axis=1)
    return np.concatenate([np.zeros((y.shape[0], 2 * buffer - 64), np.float32), y], axis=1)


def nn_encode(path: Path, x: np.ndarray, buffer: int, seed: int, calls: int) -> np.ndarray:
    """The frames a ``[nn~ ... decode]`` reads from ``[nn~ MODEL encode BUFFER]``'s output, for audio ``(ch, n)``
    followed by silence: ``(latent_size, frames)``."""
    m = load_fresh(path)
    r = int(m.encode_params[3])
    x = np.concatenate([x, np.zeros((x.shape[0], calls * buffer - x.shape[1]), np.float32)], axis=1)
    torch.manual_seed(seed)
    out = []
    with torch.inference_mode():
        for k in range(calls):
            out.append(m.encode(torch.from_numpy(np.ascontiguousarray(x[:, k * buffer:(k + 1) * buffer]))[None])[0])
    held = np.repeat(torch.cat(out, dim=1).numpy(), r, axis=1)  # step-held
    signal = np.concatenate([np.zeros((held.shape[0], 2 * buffer - 64), np.float32), held], axis=1)
    return signal[:, r - 1::r]  # the last sample of each block of ratio samples


def latents_for(path: Path, frames: int, seed: int = 3) -> np.ndarray:
    facts = export_facts(path)
    rng = np.random.default_rng(seed)
    if facts["discrete"]:  # codes every codebook has
        return rng.integers(0, 8, (1, facts["latent_size"], frames)).astype(np.float32)
    return rng.standard_normal((1, facts["latent_size"], frames)).astype(np.float32)


def record_of(wav: Path) -> dict:
    return json.loads(wav.with_suffix(".json").read_text())


@real_models
@pytest.mark.parametrize("latency", ["keep", "trim"])
def test_live_decode_equals_the_nn_loop(real_model, latency, tmp_path, capsys):
    facts = export_facts(real_model)
    buffer = 4096
    z = latents_for(real_model, 13)
    np.save(tmp_path / "z.npy", z)
    code, _, err = run_cli(capsys, decoder, "-m", real_model, "-i", tmp_path / "z.npy", "-o", tmp_path / "o",
                           "--live", buffer, "--live_latency", latency)
    assert code == 0, err
    y, sr = sf.read(tmp_path / "o" / "z.wav", dtype="float32", always_2d=True)
    record = record_of(tmp_path / "o" / "z.wav")
    model_delay = record["processing"]["latency_samples"]
    n = 13 * facts["ratio"]
    start = 0 if latency == "keep" else 2 * buffer - 64 + model_delay
    assert len(y) == n + (2 * buffer - 64 + model_delay if latency == "keep" else 0)
    patch = nn_decode(real_model, z, buffer, 0, math.ceil((start + len(y)) / buffer) + 1)
    np.testing.assert_allclose(y.T, patch[:, start:start + len(y)], atol=2e-6)
    assert record["processing"]["live"]["buffer"] == buffer


@real_models
@pytest.mark.parametrize("latency", ["keep", "trim"])
def test_live_encode_equals_the_nn_loop(real_model, latency, tmp_path, capsys):
    facts = export_facts(real_model)
    buffer, r = 4096, facts["ratio"]
    src = write_audio(tmp_path / "a.wav", facts["sr"], 1.0, facts["n_channels"])
    code, _, err = run_cli(capsys, encoder, "-m", real_model, "-i", src, "-o", tmp_path / "o", "--live", buffer,
                           "--live_latency", latency)
    assert code == 0, err
    z = np.load(tmp_path / "o" / "a.npy")
    x = sf.read(src, dtype="float32", always_2d=True)[0].T
    meta = json.loads((tmp_path / "o" / "a.json").read_text())
    frames = math.ceil(x.shape[1] / r)
    late = math.ceil((2 * buffer - 64 - r + 1) / r)  # nn~'s delay, as a downstream decode reads it
    model_delay = meta["processing"]["latency_samples"] // r
    ref = nn_encode(real_model, x, buffer, 0, math.ceil((frames + late + model_delay) * r / buffer) + 1)
    if latency == "keep":
        assert z.shape[2] == frames + late + model_delay
        np.testing.assert_allclose(z[0], ref[:, :z.shape[2]], atol=2e-6)
    else:
        assert z.shape[2] == frames
        np.testing.assert_allclose(z[0], ref[:, late + model_delay:late + model_delay + frames], atol=2e-6)
    assert meta["processing"]["live"]["latency"] == latency


@needs_real
@pytest.mark.parametrize("model", [PLAIN, STREAMING], ids=["non-streaming", "streaming"])
def test_live_audio_in_is_encode_then_decode_in_nn(model, tmp_path, capsys):
    """Audio in: ``[nn~ M encode 4096] -> [nn~ M decode 4096]``, every frame of the delay kept."""
    src = write_audio(tmp_path / "a.wav", 44100, 1.0)
    code, _, err = run_cli(capsys, decoder, "-m", model, "-i", src, "-o", tmp_path / "o", "--live", 4096)
    assert code == 0, err
    y = sf.read(tmp_path / "o" / "a.wav", dtype="float32", always_2d=True)[0].T
    x = sf.read(src, dtype="float32", always_2d=True)[0].T
    z = nn_encode(model, x, 4096, 0, 30)[None]
    patch = nn_decode(model, z, 4096, 0, 40)
    np.testing.assert_allclose(y, patch[:, :y.shape[1]], atol=2e-6)
    # Nothing of the source is cut: it lasts the source plus both objects' delays.
    record = record_of(tmp_path / "o" / "a.wav")
    enc_delay = math.ceil((2 * 4096 - 64 - 2048 + 1) / 2048) * 2048 + record["encoder"]["processing"]["latency_samples"]
    assert y.shape[1] == x.shape[1] + enc_delay + 2 * 4096 - 64 + record["processing"]["latency_samples"]


@needs_real
@pytest.mark.parametrize("buffer", [2048, 4096, 8192])
def test_streaming_live_is_the_offline_render_shifted(buffer, tmp_path, capsys):
    """A streaming export carries its state, so nn~ plays the clean render, late by its whole delay."""
    z = latents_for(STREAMING, 29)
    np.save(tmp_path / "z.npy", z)
    outs = {}
    for name, extra in (("offline", []), ("keep", ["--live", buffer]),
                        ("trim", ["--live", buffer, "--live_latency", "trim"])):
        code, _, err = run_cli(capsys, decoder, "-m", STREAMING, "-i", tmp_path / "z.npy", "-o", tmp_path / name,
                               *extra)
        assert code == 0, err
        assert "clicks" not in err  # no boundary warning for a streaming export
        outs[name] = sf.read(tmp_path / name / "z.wav", dtype="float32")[0]
    delay = 2 * buffer - 64 + record_of(tmp_path / "keep" / "z.wav")["processing"]["latency_samples"]
    offline = outs["offline"]
    assert delay > 2 * buffer  # the export's own delay is part of it
    np.testing.assert_allclose(outs["keep"][delay:], offline, atol=1e-6)
    np.testing.assert_allclose(outs["trim"], offline, atol=1e-6)
    assert not outs["keep"][:2 * buffer - 64].any()  # nn~'s silence before its first buffer comes out


@needs_real
def test_non_streaming_live_jumps_at_every_boundary_and_says_how_much(tmp_path, capsys):
    z = latents_for(PLAIN, 29)
    np.save(tmp_path / "z.npy", z)
    code, _, _ = run_cli(capsys, decoder, "-m", PLAIN, "-i", tmp_path / "z.npy", "-o", tmp_path / "off")
    assert code == 0
    code, _, err = run_cli(capsys, decoder, "-m", PLAIN, "-i", tmp_path / "z.npy", "-o", tmp_path / "live",
                           "--live", 4096, "--live_latency", "trim")
    assert code == 0
    live = sf.read(tmp_path / "live" / "z.wav", dtype="float32")[0]
    offline = sf.read(tmp_path / "off" / "z.wav", dtype="float32")[0]
    assert np.abs(live - offline).max() > 1e-3  # every buffer restarts from zero padding
    boundaries = np.arange(4096, len(live), 4096)
    jumps = np.abs(live[boundaries] - live[boundaries - 1])
    said = record_of(tmp_path / "live" / "z.wav")["output"]["live_jumps"]
    assert said["boundary"] == pytest.approx(float(jumps.max()), abs=1e-6)
    assert said["at"] == int(boundaries[jumps.argmax()])
    assert f"largest jump at a buffer boundary {said['boundary']:.4g} (sample {said['at']})" in err
    # Each buffer's start is where the live render leaves the clean one: at the first samples of a
    # buffer it is further from the offline render than in the buffer's middle.
    edge = np.abs(live - offline)[np.concatenate([boundaries + i for i in range(16)])].mean()
    middle = np.abs(live - offline)[np.concatenate([boundaries - 2048 + i for i in range(16)])].mean()
    assert edge > middle


@pytest.mark.parametrize("buffer", ["0", "3000", "-4096"])
def test_a_buffer_nn_cannot_use_is_one_line_exit_2(buffer, demo_model, tmp_path, capsys):
    np.save(tmp_path / "z.npy", np.zeros((1, 8, 4), np.float32))
    for command, src in ((decoder, tmp_path / "z.npy"), (encoder, write_audio(tmp_path / "a.wav"))):
        code, _, err = run_cli(capsys, command, "-m", demo_model, "-i", src, "-o", tmp_path / "o", "--live", buffer)
        assert code == 2
        assert len(err.strip().splitlines()) == 1
        assert f"--live {buffer}:" in err and "multiple of its compression ratio 2048" in err


def test_a_model_without_the_method_is_one_line_exit_2(demo_model, tmp_path, capsys, monkeypatch):
    from ravekit.engine import model as model_module

    monkeypatch.setattr(model_module, "_methods", lambda module: ["forward"])
    np.save(tmp_path / "z.npy", np.zeros((1, 8, 4), np.float32))
    code, _, err = run_cli(capsys, decoder, "-m", demo_model, "-i", tmp_path / "z.npy", "-o", tmp_path / "o",
                           "--live", 4096)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "has no decode method nn~ could call" in err


def test_resume_tells_a_live_render_from_an_offline_one(demo_model, tmp_path, capsys):
    np.save(tmp_path / "z.npy", np.random.default_rng(0).standard_normal((1, 8, 6)).astype(np.float32))
    args = ["-m", demo_model, "-i", tmp_path / "z.npy", "-o", tmp_path / "o"]
    assert run_cli(capsys, decoder, *args)[0] == 0
    code, _, err = run_cli(capsys, decoder, *args, "--live", 4096)
    assert code == 1 and "an offline render (no --live)" in err
    assert run_cli(capsys, decoder, *args, "--live", 4096, "--force")[0] == 0
    before = (tmp_path / "o" / "z.wav").stat().st_mtime_ns
    assert run_cli(capsys, decoder, *args, "--live", 4096)[0] == 0  # the same live render: kept
    assert (tmp_path / "o" / "z.wav").stat().st_mtime_ns == before
    code, _, err = run_cli(capsys, decoder, *args, "--live", 8192)
    assert code == 1 and "--live 4096 (latency keep)" in err
    code, _, err = run_cli(capsys, decoder, *args)
    assert code == 1 and "--live 4096 (latency keep)" in err


def test_encoder_resume_tells_live_from_offline(demo_model, tmp_path, capsys):
    src = write_audio(tmp_path / "a.wav")
    args = ["-m", demo_model, "-i", src, "-o", tmp_path / "o"]
    assert run_cli(capsys, encoder, *args, "--live", 4096)[0] == 0
    code, _, err = run_cli(capsys, encoder, *args)
    assert code == 1 and "--live 4096 (latency keep)" in err
    code, _, err = run_cli(capsys, encoder, *args, "--live", 4096, "--live_latency", "trim")
    assert code == 1


def test_averager_audio_renders_live_as_decoder_py_does(fixture_models, tmp_path, capsys):
    import averager

    song = write_audio(tmp_path / "in" / "song.wav", 44100, 1.0)
    out = tmp_path / "out" / "hybrid.ts"
    code, _, err = run_cli(capsys, averager, "--models", fixture_models["demo"], fixture_models["demo_b"], "-o", out,
                           "--audio", song, "--seed", 4, "--live", 4096)
    assert code == 0, err
    clicks = [line for line in err.splitlines() if "boundar" in line]
    assert len(clicks) == 3 and "song.A.wav:" in clicks[0], err
    assert not any(".part" in line for line in err.splitlines()), err  # the files' final names, not temporaries
    code, _, err = run_cli(capsys, decoder, "-m", fixture_models["demo"], "-i", song, "-o", tmp_path / "dec",
                           "--seed", 4, "--live", 4096)
    assert code == 0, err
    rendered = sf.read(out.parent / "song.A.wav", dtype="float32")[0]
    decoded = sf.read(tmp_path / "dec" / "song.wav", dtype="float32")[0]
    assert np.array_equal(rendered, decoded)
    offline = tmp_path / "off" / "hybrid.ts"
    assert run_cli(capsys, averager, "--models", fixture_models["demo"], fixture_models["demo_b"], "-o", offline,
                   "--audio", song, "--seed", 4)[0] == 0
    assert len(sf.read(offline.parent / "song.A.wav")[0]) < len(rendered)  # the patch's delay is kept


@pytest.mark.parametrize("extra, says", [(["--live", "4096"], "--live applies to the --audio renders"),
                                         (["--live", "1000", "--audio", "SONG"], "--live 1000: ")])
def test_averager_live_refusals_come_before_the_merge(fixture_models, tmp_path, capsys, extra, says):
    import averager

    song = write_audio(tmp_path / "song.wav")
    out = tmp_path / "out" / "m.ts"
    extra = [str(song) if e == "SONG" else e for e in extra]
    code, stdout, err = run_cli(capsys, averager, "--models", fixture_models["demo"], fixture_models["demo_b"],
                                "-o", out, *extra)
    assert code == 2 and stdout == "" and says in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_live_progress_counts_the_audio_rendered(fixture_models, tmp_path):
    """Progress bars move with every nn~ buffer and add up to what is written."""
    from ravekit.engine.decode import Decoder
    from ravekit.engine.live import Live
    from ravekit.engine.model import load_model

    np.save(tmp_path / "z.npy", np.random.default_rng(0).standard_normal((1, 8, 9)).astype(np.float32))
    model = load_model(fixture_models["streaming"], "cpu", checksum=False)
    seen: list[float] = []
    out, _ = Decoder(model, live=Live(4096)).decode_file(tmp_path / "z.npy", tmp_path / "z.wav", seen.append)
    frames = sf.info(str(out)).frames
    assert len(seen) >= 2 and sum(seen) == pytest.approx((frames - (2 * 4096 - 64)) / 44100)


@pytest.mark.parametrize("latency", ["keep", "trim"])
def test_live_latents_decoded_offline_keep_their_whole_length(demo_model, tmp_path, capsys, latency):
    # Kept, nn~'s delay puts silence first and the source's end that many frames later: trimming the decode to
    # the source's length alone would cut the end of what was played.
    song = write_audio(tmp_path / "in" / "song.wav", 44100, 1.0)
    code, _, err = run_cli(capsys, encoder, "-m", demo_model, "-i", song, "-o", tmp_path / "lat", "--live", 4096,
                           "--live_latency", latency)
    assert code == 0, err
    side = json.loads((tmp_path / "lat" / "song.json").read_text())
    delay = side["processing"]["live"]["delay_frames"]
    assert (delay > 0) == (latency == "keep")
    code, _, err = run_cli(capsys, decoder, "-m", demo_model, "-i", tmp_path / "lat" / "song.npy", "-o",
                           tmp_path / "dec")
    assert code == 0, err
    out = sf.read(tmp_path / "dec" / "song.wav", dtype="float32")[0]
    assert len(out) == side["source"]["samples"] + delay * side["ratio"]
