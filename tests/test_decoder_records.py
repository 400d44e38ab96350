"""decoder.py's record beside each WAV: resume keeps what matches, reports what does not; clipping."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

import decoder
import encoder
from conftest import run_cli, write_audio
from ravekit.io.files import sha256_of


@pytest.fixture
def latents(tmp_path, capsys, demo_model):
    src = write_audio(tmp_path / "src" / "a.wav", 44100, 0.6)
    code, out, _ = run_cli(capsys, encoder, "-m", demo_model, "-i", src, "-o", tmp_path / "lat", lines=True)
    assert code == 0
    return tmp_path / "lat" / "a.npy"


def test_the_record_says_how_the_wav_was_made(tmp_path, capsys, demo_model, latents):
    code, out, _ = run_cli(capsys, decoder, "-m", demo_model, "-i", latents, "-o", tmp_path / "o", "--seed", 3,
                           lines=True)
    assert code == 0 and out == [str(tmp_path / "o" / "a.wav")]
    record = json.loads((tmp_path / "o" / "a.json").read_text())
    wav = tmp_path / "o" / "a.wav"
    assert record["format"] == "ravekit.audio" and record["created_by"] == "decoder.py"
    assert record["model"]["sha256"] == sha256_of(demo_model) and record["seed"] == 3
    assert record["source"]["file"] == str(latents) and record["source"]["sha256"] == sha256_of(latents)
    assert record["source"]["sidecar_sha256"] == sha256_of(latents.with_suffix(".json"))
    assert record["processing"]["subtype"] == "FLOAT" and record["processing"]["trim"] is True
    assert record["output"]["frames"] == sf.info(wav).frames == record["frames"]
    assert record["output"]["bytes"] == wav.stat().st_size and record["output"]["container"] == "WAV"
    assert record["output"]["clipped"] == 0


def test_a_record_written_under_the_earlier_format_id_still_counts(tmp_path, capsys, demo_model, latents):
    """Records were once written as "ravekit.io.audio": a resumed run keeps their WAVs."""
    args = ("-m", demo_model, "-i", latents, "-o", tmp_path / "o")
    run_cli(capsys, decoder, *args)
    side = tmp_path / "o" / "a.json"
    side.write_text(json.dumps({**json.loads(side.read_text()), "format": "ravekit.io.audio"}))
    before = (tmp_path / "o" / "a.wav").read_bytes()
    code, out, err = run_cli(capsys, decoder, *args, lines=True)
    assert code == 0 and out == [str(tmp_path / "o" / "a.wav")] and "already there" in err, err
    assert (tmp_path / "o" / "a.wav").read_bytes() == before


def test_the_manual_names_the_format_ids_the_code_writes():
    """One name per file kind: the manual once said "ravekit.audio" where records said "ravekit.io.audio"."""
    import re
    from pathlib import Path

    from ravekit.io import formats

    manual = (Path(__file__).resolve().parents[1] / "docs" / "formats.md").read_text()
    named = set(re.findall(r'"format": "([^"]+)"', manual))
    assert named and named <= {formats.LATENTS, formats.AUDIO_RECORD, formats.STATS, formats.RUN_SUMMARY,
                               formats.LATENT_MAP}, named


def test_resume_keeps_the_same_and_reports_other_settings(tmp_path, capsys, fixture_models, latents):
    args = ("-i", latents, "-o", tmp_path / "o")
    demo = fixture_models["demo"]
    run_cli(capsys, decoder, "-m", demo, *args, lines=True)
    wav = tmp_path / "o" / "a.wav"
    before = wav.read_bytes()
    code, out, err = run_cli(capsys, decoder, "-m", demo, *args, lines=True)
    assert code == 0 and out == [str(wav)] and "already there" in err
    for extra, said in [(("--seed", 1), "seed 0"), (("--subtype", "PCM_16"), "subtype FLOAT"),
                        (("--no_trim",), "trim True"), (("--chunk", 0), "chunk_frames")]:
        code, out, err = run_cli(capsys, decoder, "-m", demo, *args, *extra, lines=True)
        assert code == 1 and not out and said in err and "--force" in err and "a.wav" in err, extra
        assert wav.read_bytes() == before
    code, out, err = run_cli(capsys, decoder, "-m", fixture_models["demo_b"], *args, lines=True)
    assert code == 1 and "model demo.ts" in err and wav.read_bytes() == before
    code, out, _ = run_cli(capsys, decoder, "-m", demo, *args, "--seed", 1, "--force", lines=True)
    assert code == 0 and out == [str(wav)]
    assert json.loads((tmp_path / "o" / "a.json").read_text())["seed"] == 1


def test_changed_latents_are_not_taken_for_done(tmp_path, capsys, demo_model, latents):
    args = ("-m", demo_model, "-i", latents, "-o", tmp_path / "o")
    run_cli(capsys, decoder, *args, lines=True)
    z = np.load(latents)
    np.save(latents, z + 0.5)
    code, out, err = run_cli(capsys, decoder, *args, lines=True)
    wav = tmp_path / "o" / "a.wav"
    assert code == 1 and not out and f"{latents}: {wav}: the latents {latents} have changed since it was decoded" in err
    assert "other settings" not in err
    run_cli(capsys, decoder, *args, "--force", lines=True)
    side = latents.with_suffix(".json")
    meta = json.loads(side.read_text())
    meta["source"]["samples"] -= 100
    side.write_text(json.dumps(meta))
    code, out, err = run_cli(capsys, decoder, *args, lines=True)
    assert code == 1 and f"{latents}: {wav}: their sidecar {side} has changed since" in err
    assert "other settings" not in err
    run_cli(capsys, decoder, *args, "--force", lines=True)
    with open(wav, "r+b") as f:  # cut short, as a full disk or a killed copy leaves it
        f.truncate(wav.stat().st_size - 400)
    code, out, err = run_cli(capsys, decoder, *args, lines=True)
    assert code == 1 and f"{latents}: {wav}: it is " in err and "cut short or replaced" in err
    assert "other settings" not in err
    code, out, err = run_cli(capsys, decoder, *args, "--seed", 3, "--force",
                             lines=True)  # other settings: named as such
    assert code == 0
    code, out, err = run_cli(capsys, decoder, *args, lines=True)
    assert code == 1 and f"{latents}: {wav}: made by an earlier run with other settings (seed 3)" in err


def test_a_wav_without_record_is_reported_not_kept(tmp_path, capsys, demo_model, latents):
    (tmp_path / "o").mkdir()
    sf.write(tmp_path / "o" / "a.wav", np.zeros(100, np.float32), 44100)
    code, out, err = run_cli(capsys, decoder, "-m", demo_model, "-i", latents, "-o", tmp_path / "o", lines=True)
    assert code == 1 and not out and "no record (a.json)" in err and "--force" in err


def test_an_interrupted_forced_run_leaves_no_record_that_lies(tmp_path, capsys, monkeypatch, demo_model, latents):
    """--force with another seed fails half-way: the old WAV stays with its own record, which claims the old seed."""
    from ravekit.engine import decode as decoding

    args = ("-m", demo_model, "-i", latents, "-o", tmp_path / "o")
    run_cli(capsys, decoder, *args, lines=True)
    old = (tmp_path / "o" / "a.wav").read_bytes()
    old_record = (tmp_path / "o" / "a.json").read_bytes()

    def failing(*a, **k):
        yield np.zeros((1, 2048), np.float32)
        raise RuntimeError("killed")

    monkeypatch.setattr(decoding, "decode_chunks", failing)
    code, _, err = run_cli(capsys, decoder, *args, "--seed", 5, "--force", lines=True)
    assert code == 1 and "killed" in err
    monkeypatch.undo()
    assert (tmp_path / "o" / "a.wav").read_bytes() == old
    assert (tmp_path / "o" / "a.json").read_bytes() == old_record
    assert not [p for p in (tmp_path / "o").iterdir() if p.name.startswith(".")]
    code, out, err = run_cli(capsys, decoder, *args, "--seed", 5, lines=True)
    assert code == 1 and not out and "seed 0" in err


def test_a_record_never_replaces_a_latents_sidecar(tmp_path, capsys, demo_model, latents):
    side = latents.with_suffix(".json").read_bytes()
    code, out, err = run_cli(capsys, decoder, "-m", demo_model, "-i", latents, "-o", latents.parent, lines=True)
    assert code == 2 and not out and "would replace the sidecar" in err
    assert latents.with_suffix(".json").read_bytes() == side and not latents.with_suffix(".wav").exists()


def loud_latents(path):
    """Latents the demo model decodes into audio that is partly beyond [-1, 1] (0 is loud, -3 is quiet)."""
    z = np.full((1, 8, 40), -3.0, np.float32)
    z[:, :, 10:25] = 0.0
    np.save(path, z)
    return path


def loud_model(path, demo_model):
    """The demo model edited, as users edit exports, to play 3x louder: peaks beyond +-1."""
    import torch

    from ravekit.engine.model import quiet_jit

    with quiet_jit():
        m = torch.jit.load(str(demo_model))
        m.decoder.out_gain = 3.0
        torch.jit.save(m, str(path))
    return path


def test_pcm_clipping_is_counted_across_chunks_warned_and_recorded(tmp_path, capsys, demo_model):
    src = loud_latents(tmp_path / "loud.npy")
    demo_model = loud_model(tmp_path / "loud.ts", demo_model)
    code, out, err = run_cli(capsys, decoder, "-m", demo_model, "-i", src, "-o", tmp_path / "f", "--chunk", 0.2,
                             lines=True)
    assert code == 0 and "clipped" not in err
    y = sf.read(out[0], dtype="float32")[0]
    expected = int(np.count_nonzero(np.abs(y) > 1))
    assert expected > 0
    for subtype in ("PCM_16", "PCM_24"):
        code, out, err = run_cli(capsys, decoder, "-m", demo_model, "-i", src, "-o", tmp_path / subtype,
                                 "--subtype", subtype, "--chunk", 0.2, lines=True)
        assert code == 0
        lines = [line for line in err.splitlines() if "clipped" in line]
        assert len(lines) == 1 and "warning" in lines[0] and out[0] in lines[0]
        assert f"{expected} of {y.size} samples ({expected / y.size:.1%})" in lines[0]
        assert f"peak {np.abs(y).max():.3g}" in lines[0] and "--subtype FLOAT" in lines[0]
        record = json.loads((tmp_path / subtype / "loud.json").read_text())
        assert record["output"]["clipped"] == expected
        assert record["output"]["peak"] == pytest.approx(float(np.abs(y).max()), rel=1e-4)
