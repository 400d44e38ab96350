"""Outputs too long for a WAV's 32-bit sizes are written whole as RF64 (tested with a lowered limit)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

import decoder
from conftest import load_latents, run_cli, save_latent_wav
from ravekit.errors import RavekitError
from ravekit.io import writer as audio_write
from ravekit.io.latents import make_sidecar
from ravekit.io.writer import HEADER_ALLOWANCE, WAV_MAX_BYTES, AudioWriter, choose_container, wav_data_bytes


@pytest.mark.parametrize("channels, subtype", [(1, "FLOAT"), (2, "PCM_24"), (1, "PCM_24"), (3, "PCM_16")])
def test_container_switches_to_rf64_exactly_past_the_wav_limit(channels, subtype):
    per_frame = channels * {"FLOAT": 4, "PCM_24": 3, "PCM_16": 2}[subtype]
    room = WAV_MAX_BYTES - HEADER_ALLOWANCE
    last_wav = room // per_frame
    while wav_data_bytes(last_wav, channels, subtype) > room:  # odd byte counts are padded
        last_wav -= 1
    assert choose_container(last_wav, channels, subtype) == "WAV"
    assert choose_container(last_wav + 1, channels, subtype) == "RF64"
    assert choose_container(None, channels, subtype) == "WAV"


def test_the_issue_s_case_float_mono_longer_than_6_8_hours():
    assert choose_container(1_100_736_000, 1, "FLOAT") == "RF64"  # 6.93 h at 44.1 kHz
    assert choose_container(1_073_741_823, 1, "FLOAT") == "RF64"  # the count libsndfile clamped it to
    assert choose_container(6 * 3600 * 44100, 1, "FLOAT") == "WAV"


@pytest.mark.parametrize("subtype", ["FLOAT", "PCM_16", "PCM_24", "DOUBLE"])
@pytest.mark.parametrize("channels", [1, 2, 3, 64])
def test_headers_fit_in_the_allowance(tmp_path, subtype, channels):
    """The allowance must cover every header libsndfile writes, or a file just under the limit would clamp."""
    for frames in (101, 100):
        path = tmp_path / "h.wav"
        with AudioWriter(path, 44100, channels, subtype, frames=frames) as w:
            w.write(np.zeros((channels, frames), np.float32))
        header = path.stat().st_size - wav_data_bytes(frames, channels, subtype)
        assert 0 < header < HEADER_ALLOWANCE // 4


def lower_the_limit(monkeypatch, data_bytes):
    monkeypatch.setattr(audio_write, "WAV_MAX_BYTES", data_bytes + HEADER_ALLOWANCE)


def test_a_long_decode_is_written_whole_as_rf64_with_a_warning(tmp_path, capsys, monkeypatch, demo_model):
    z = np.random.default_rng(0).normal(-4, 1, (1, 8, 30)).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    code, out, _ = run_cli(capsys, decoder, "-m", demo_model, "-i", tmp_path / "z.npy", "-o", tmp_path / "wav",
                           "--chunk", 0.3, lines=True)
    reference = sf.read(out[0], dtype="float32")[0]
    lower_the_limit(monkeypatch, 30 * 2048 * 4 - 4)  # the output is 4 bytes too long for a "WAV"
    code, out, err = run_cli(capsys, decoder, "-m", demo_model, "-i", tmp_path / "z.npy", "-o", tmp_path / "rf",
                             "--chunk", 0.3, lines=True)
    assert code == 0
    info = sf.info(out[0])
    assert info.format == "RF64" and info.frames == 30 * 2048
    np.testing.assert_array_equal(sf.read(out[0], dtype="float32")[0], reference)
    warnings = [line for line in err.splitlines() if "RF64" in line]
    assert len(warnings) == 1 and out[0] in warnings[0] and "Pure Data cannot read" in warnings[0]
    assert '"container": "RF64"' in (tmp_path / "rf" / "z.json").read_text()


def test_latent_wavs_use_the_same_writer(tmp_path, monkeypatch):
    z = np.random.default_rng(1).normal(0, 1, (1, 8, 50)).astype(np.float32)
    lower_the_limit(monkeypatch, 8 * 50 * 4 - 1)
    heard = []
    path = save_latent_wav(tmp_path / "g.wav", z, 44100, 2048, make_sidecar(sr=44100, ratio=2048, latent_dims=8,
                                                                               frames=50), warn=heard.append)
    assert sf.info(path).format == "RF64" and len(heard) == 1 and "g.wav" in heard[0]
    back, _ = load_latents(path)
    np.testing.assert_array_equal(back, z)


def test_a_writer_not_told_the_length_refuses_to_clamp(tmp_path, monkeypatch):
    lower_the_limit(monkeypatch, 4000)
    with pytest.raises(RavekitError, match="more audio than a WAV holds"):  # noqa: SIM117 - the raise is on exit
        with AudioWriter(tmp_path / "x.wav", 44100, 1) as w:
            for _ in range(3):
                w.write(np.zeros((1, 500), np.float32))
    assert list(tmp_path.iterdir()) == []
