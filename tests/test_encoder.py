"""encoder.py, run in-process through main([...]) on synthesized audio."""

from __future__ import annotations

import io
import json
import math
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

import encoder
from conftest import export_facts, real_models, run_cli, synth, write_audio
from ravekit.engine.model import sha256_of


def info_of(path):
    import torch

    from ravekit.engine.model import load_module, read_info

    return read_info(load_module(path), str(path)), torch


@pytest.mark.parametrize("name", ["demo", "stereo512", "rave_named"])
def test_shapes_frames_and_sidecar(tmp_path, capsys, fixture_models, name):
    model = fixture_models[name]
    info, _ = info_of(model)
    samples = 3 * info.ratio + 5  # not a whole number of frames
    src = tmp_path / "in.wav"
    sf.write(src, synth(info.sr, samples / info.sr, info.n_channels), info.sr, subtype="FLOAT")
    code, out, _ = run_cli(capsys, encoder, "--model", model, "--input", src, "--output", tmp_path / "out", lines=True)
    assert code == 0 and len(out) == 1
    z = np.load(out[0])
    assert z.dtype == np.float32 and z.shape == (1, info.latent_size, math.ceil(samples / info.ratio))
    meta = json.loads((tmp_path / "out" / "in.json").read_text())
    assert meta["sr"] == info.sr and meta["ratio"] == info.ratio
    assert meta["latent_rate"] == info.sr / info.ratio
    assert meta["latent_dims"] == info.latent_size and meta["seed"] == 0
    assert meta["source"]["samples"] == samples
    assert meta["model"]["sha256"] == sha256_of(model)


@real_models
def test_real_export_encodes_and_is_seeded(tmp_path, capsys, real_model):
    src = write_audio(tmp_path / "a.wav", 44100, 2.0)
    outs = []
    for seed, folder in [(7, "s7"), (7, "s7b"), (8, "s8")]:
        code, out, _ = run_cli(capsys, encoder, "--model", real_model, "--input", src, "-o", tmp_path / folder,
                               "--seed", seed, lines=True)
        assert code == 0
        outs.append(np.load(out[0]))
    facts = export_facts(real_model)
    assert outs[0].shape == (1, facts["latent_size"], math.ceil(88200 / facts["ratio"]))
    assert np.array_equal(outs[0], outs[1])  # same seed: bit-identical
    # Variational encoders sample their posterior; a discrete one returns codes, the same for every seed,
    # and a spherical one the angles of its unit vector, sampled from nothing.
    assert np.array_equal(outs[0], outs[2]) == (facts["discrete"] or facts["spherical"])
    if facts["discrete"]:
        assert np.array_equal(outs[0], np.round(outs[0])) and outs[0].min() >= 0
    assert json.loads((tmp_path / "s8" / "a.json").read_text())["seed"] == 8


@pytest.mark.parametrize("rate", [48000, 22050])
def test_resamples_to_model_rate(tmp_path, capsys, demo_model, rate):
    src = write_audio(tmp_path / "x.flac", rate, 1.5)
    code, out, _ = run_cli(capsys, encoder, "-m", demo_model, "-i", src, "-o", tmp_path / "o", lines=True)
    meta = json.loads((tmp_path / "o" / "x.json").read_text())
    assert code == 0 and meta["source"]["sr"] == rate
    assert abs(meta["source"]["samples"] - round(1.5 * 44100)) <= 1
    assert np.load(out[0]).shape[-1] == math.ceil(meta["source"]["samples"] / 2048)


def test_channel_conversions(tmp_path, capsys, fixture_models):
    stereo = synth(44100, 1.0, 2)
    sf.write(tmp_path / "st.wav", stereo, 44100, subtype="FLOAT")
    sf.write(tmp_path / "mix.wav", stereo.mean(1), 44100, subtype="FLOAT")
    sf.write(tmp_path / "left.wav", stereo[:, 0], 44100, subtype="FLOAT")
    demo = fixture_models["demo"]
    inputs = [tmp_path / "st.wav", tmp_path / "mix.wav", tmp_path / "left.wav"]
    run_cli(capsys, encoder, "-m", demo, "-i", *inputs, "-o", tmp_path / "o", lines=True)
    o = tmp_path / "o"
    # A stereo file into a mono model is mixed down.
    np.testing.assert_allclose(np.load(o / "st.npy"), np.load(o / "mix.npy"), atol=1e-5)
    # split: each channel on its own, named .ch1/.ch2.
    code, out, _ = run_cli(capsys, encoder, "-m", demo, "-i", tmp_path / "st.wav", "-o", tmp_path / "s",
                           "--channel_mode", "split", lines=True)
    assert code == 0 and sorted(p.rsplit("/", 1)[1] for p in out) == ["st.ch1.npy", "st.ch2.npy"]
    np.testing.assert_allclose(np.load(tmp_path / "s" / "st.ch1.npy"), np.load(o / "left.npy"), atol=1e-5)
    assert json.loads((tmp_path / "s" / "st.ch2.json").read_text())["source"]["channels_used"] == [2]
    # A mono file into a stereo model is duplicated on both channels.
    st_model = fixture_models["stereo512"]
    mono = synth(48000, 1.0, 1)
    sf.write(tmp_path / "m.wav", mono, 48000, subtype="FLOAT")
    sf.write(tmp_path / "dup.wav", np.repeat(mono, 2, 1), 48000, subtype="FLOAT")
    code, out, _ = run_cli(capsys, encoder, "-m", st_model, "-i", tmp_path / "m.wav", tmp_path / "dup.wav",
                           "-o", tmp_path / "t", lines=True)
    assert code == 0
    np.testing.assert_array_equal(np.load(tmp_path / "t" / "m.npy"), np.load(tmp_path / "t" / "dup.npy"))


def test_mirrors_folders_and_pipes(tmp_path, capsys, monkeypatch, demo_model):
    monkeypatch.chdir(tmp_path)
    write_audio(tmp_path / "lib" / "a" / "b" / "song.wav", seconds=0.3)
    write_audio(tmp_path / "lib" / "top.flac", seconds=0.3)
    (tmp_path / "lib" / "notes.txt").write_text("not audio")
    code, out, _ = run_cli(capsys, encoder, "-m", demo_model, "-i", "lib", "-o", "out", lines=True)
    assert code == 0
    assert sorted(out) == ["out/a/b/song.npy", "out/top.npy"]
    assert (tmp_path / "out/a/b/song.json").exists()
    # Paths on stdin (as `find` prints them) come out on stdout, ready for the next script.
    monkeypatch.setattr("sys.stdin", io.StringIO("lib/a/b/song.wav\n\nlib/top.flac\n"))
    code, out, _ = run_cli(capsys, encoder, "-m", demo_model, "-i", "-", "-o", "piped", lines=True)
    assert code == 0 and sorted(out) == ["piped/lib/a/b/song.npy", "piped/lib/top.npy"]


def test_resume_and_force(tmp_path, capsys, demo_model):
    write_audio(tmp_path / "in" / "a.wav", seconds=0.3)
    args = ("-m", demo_model, "-i", tmp_path / "in", "-o", tmp_path / "o")
    run_cli(capsys, encoder, *args, lines=True)
    target = next((tmp_path / "o").rglob("a.npy"))
    target.write_bytes(b"marker: must survive a resumed run")
    code, out, err = run_cli(capsys, encoder, *args, lines=True)
    assert code == 0 and out == [str(target)] and "already there" in err
    assert target.read_bytes().startswith(b"marker")
    code, out, _ = run_cli(capsys, encoder, *args, "--force", lines=True)
    assert code == 0 and np.load(target).shape[1] == 8


def test_shards_partition_the_inputs(tmp_path, capsys, demo_model):
    for i in range(5):
        write_audio(tmp_path / "in" / f"f{i}.wav", seconds=0.1, seed=i)
    seen = []
    for k in (1, 2):
        code, out, _ = run_cli(capsys, encoder, "-m", demo_model, "-i", tmp_path / "in", "-o", tmp_path / "o",
                               "--shard", f"{k}/2", lines=True)
        assert code == 0 and out
        seen.append(set(out))
    assert not seen[0] & seen[1] and len(seen[0] | seen[1]) == 5
    code, _, err = run_cli(capsys, encoder, "-m", demo_model, "-i", tmp_path / "in", "--shard", "3/2", lines=True)
    assert code == 2 and "--shard" in err


def test_bad_files_in_a_batch(tmp_path, capsys, demo_model):
    folder = tmp_path / "in"
    write_audio(folder / "good1.wav", seconds=0.2)
    write_audio(folder / "good2.wav", seconds=0.2)
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
    (folder / "empty.flac").write_bytes(b"")
    code, out, err = run_cli(capsys, encoder, "-m", demo_model, "-i", folder, "-o", tmp_path / "o", lines=True)
    assert code == 1
    assert len(out) == 2 and all(np.load(p).shape[1] == 8 for p in out)
    assert "corrupt.wav" in err and "empty.flac" in err and "2 failed" in err
    assert not list((tmp_path / "o").rglob("corrupt*")) and not list((tmp_path / "o").rglob(".*"))


def test_command_line_mistakes(tmp_path, capsys, demo_model):
    src = write_audio(tmp_path / "a.wav", seconds=0.2)
    notmodel = tmp_path / "fake.ts"
    notmodel.write_bytes(b"this is not a model")
    code, out, err = run_cli(capsys, encoder, "-m", notmodel, "-i", src, "-o", tmp_path / "o", lines=True)
    assert code == 1 and str(notmodel) in err and len(err.strip().splitlines()) == 1 and not out
    code, _, err = run_cli(capsys, encoder, "-m", tmp_path / "missing.ts", "-i", src, lines=True)
    assert code == 2 and "--model" in err and "not found" in err
    code, _, err = run_cli(capsys, encoder, "-m", demo_model, "-i", tmp_path / "nope.wav", lines=True)
    assert code == 2 and "nope.wav" in err
    # Two inputs that would become one output: refused before any work.
    write_audio(tmp_path / "d" / "x.wav", seconds=0.1)
    write_audio(tmp_path / "d" / "x.flac", seconds=0.1)
    code, out, err = run_cli(capsys, encoder, "-m", demo_model, "-i", tmp_path / "d", "-o", tmp_path / "c", lines=True)
    assert code == 2 and "x.npy" in err and not (tmp_path / "c").exists()
    # An output folder that cannot be created.
    (tmp_path / "afile").write_text("x")
    code, _, err = run_cli(capsys, encoder, "-m", demo_model, "-i", src, "-o", tmp_path / "afile" / "sub", lines=True)
    assert code == 1 and "afile" in err


@pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg not installed: m4a input untested")
def test_m4a_through_ffmpeg(tmp_path, capsys, demo_model):
    wav = write_audio(tmp_path / "a.wav", 48000, 1.0)
    m4a = tmp_path / "a.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "aac", str(m4a)], check=True)
    code, out, _ = run_cli(capsys, encoder, "-m", demo_model, "-i", m4a, "-o", tmp_path / "o", lines=True)
    assert code == 0
    meta = json.loads((tmp_path / "o" / "a.json").read_text())
    assert meta["source"]["sr"] == 48000 and abs(meta["source"]["samples"] - 44100) < 3000


def test_resume_refuses_outputs_made_with_other_settings(tmp_path, capsys, demo_model):
    src = write_audio(tmp_path / "in" / "a.wav", seconds=0.3)
    write_audio(tmp_path / "in" / "b.wav", seconds=0.3, seed=1)
    run_cli(capsys, encoder, "-m", demo_model, "-i", tmp_path / "in", "-o", tmp_path / "o", "--seed", 1, lines=True)
    old = (tmp_path / "o" / "a.npy").read_bytes()
    (tmp_path / "o" / "b.npy").unlink()
    code, out, err = run_cli(capsys, encoder, "-m", demo_model, "-i", tmp_path / "in", "-o", tmp_path / "o",
                             "--seed", 2, lines=True)
    assert code == 1 and "seed 1" in err and "--force" in err
    assert out == [str(tmp_path / "o" / "b.npy")]  # the missing one is still made
    assert (tmp_path / "o" / "a.npy").read_bytes() == old
    assert src.exists()


def test_resume_names_a_missing_sidecar_instead_of_a_seed_none(tmp_path, capsys, demo_model):
    src = write_audio(tmp_path / "in" / "a.wav", seconds=0.3)
    run_cli(capsys, encoder, "-m", demo_model, "-i", src, "-o", tmp_path / "o", lines=True)
    (tmp_path / "o" / "a.json").unlink()
    old = (tmp_path / "o" / "a.npy").read_bytes()
    code, out, err = run_cli(capsys, encoder, "-m", demo_model, "-i", src, "-o", tmp_path / "o", lines=True)
    errors = [line for line in err.splitlines() if "error:" in line]
    assert code == 1 and not out and len(errors) == 1, err
    assert "a.npy: its sidecar a.json is missing" in errors[0] and "--force" in errors[0], err
    assert "None" not in err and (tmp_path / "o" / "a.npy").read_bytes() == old


def test_resume_refuses_latents_of_audio_that_changed_since(tmp_path, capsys, monkeypatch, demo_model):
    import os

    import ravekit.engine.encode

    src = write_audio(tmp_path / "in" / "a.wav", seconds=0.3)
    args = ("-m", demo_model, "-i", src, "-o", tmp_path / "o")
    run_cli(capsys, encoder, *args, lines=True)
    npy = tmp_path / "o" / "a.npy"
    source = json.loads(npy.with_suffix(".json").read_text())["source"]
    assert source["sha256"] == sha256_of(src) and source["bytes"] == src.stat().st_size
    hashed = []
    real = ravekit.engine.encode.sha256_of
    monkeypatch.setattr(ravekit.engine.encode, "sha256_of", lambda p: hashed.append(p) or real(p))
    # unchanged: kept, and the audio is not read again to tell
    code, out, err = run_cli(capsys, encoder, *args, lines=True)
    assert code == 0 and out == [str(npy)] and "already there" in err and not hashed
    os.utime(src, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns + 10**9))  # touched, same bytes: kept
    code, out, err = run_cli(capsys, encoder, *args, lines=True)
    assert code == 0 and out == [str(npy)] and "already there" in err and hashed
    old = npy.read_bytes()
    write_audio(src, seconds=0.3, seed=5)  # same length, other audio
    code, out, err = run_cli(capsys, encoder, *args, lines=True)
    assert code == 1 and not out and npy.read_bytes() == old
    assert f"{src}: {npy}: {src} has changed since it was encoded; use --force" in err
    assert "other settings" not in err
    code, out, err = run_cli(capsys, encoder, *args, "--force", lines=True)
    assert code == 0 and out == [str(npy)] and npy.read_bytes() != old
    # Sidecars of older runs hold no identity: resumed as before, unchecked.
    side = npy.with_suffix(".json")
    meta = json.loads(side.read_text())
    for key in ("bytes", "mtime_ns", "sha256"):
        del meta["source"][key]
    side.write_text(json.dumps(meta))
    write_audio(src, seconds=0.4, seed=6)
    code, out, err = run_cli(capsys, encoder, *args, lines=True)
    assert code == 0 and out == [str(npy)] and "already there" in err


def test_split_mode_goes_on_past_a_corrupt_file(tmp_path, capsys, demo_model):
    write_audio(tmp_path / "in" / "good.wav", seconds=0.3, channels=2)
    (tmp_path / "in" / "bad.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    for _ in range(2):  # the second run resumes: the good file is kept, the bad one fails again
        code, out, err = run_cli(capsys, encoder, "-m", demo_model, "-i", tmp_path / "in", "-o", tmp_path / "o",
                                 "--channel_mode", "split", lines=True)
        assert code == 1 and "bad.wav" in err
        assert sorted(p.rsplit("/", 1)[1] for p in out) == ["good.ch1.npy", "good.ch2.npy"]


def test_hidden_folders_nan_audio_and_chunk_values(tmp_path, capsys, demo_model):
    write_audio(tmp_path / "in" / ".git" / "x.wav", seconds=0.1)
    write_audio(tmp_path / "in" / "ok.wav", seconds=0.1)
    sf.write(tmp_path / "in" / "nan.wav", np.full(4410, np.nan, np.float32), 44100, subtype="FLOAT")
    code, out, err = run_cli(capsys, encoder, "-m", demo_model, "-i", tmp_path / "in", "-o", tmp_path / "o", lines=True)
    assert code == 1 and out == [str(tmp_path / "o" / "ok.npy")]
    assert "nan.wav: the audio contains NaN" in err and "x.wav" not in err
    with pytest.raises(SystemExit) as exit_info:
        encoder.main(["-m", str(demo_model), "-i", str(tmp_path / "in"), "--chunk", "-1"])
    assert exit_info.value.code == 2 and "--chunk" in capsys.readouterr().err


def test_outputs_get_ordinary_file_permissions(tmp_path, capsys, demo_model):
    import os
    import stat

    src = write_audio(tmp_path / "a.wav", seconds=0.1)
    old = os.umask(0o022)
    try:
        run_cli(capsys, encoder, "-m", demo_model, "-i", src, "-o", tmp_path / "o", lines=True)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "o" / "a.npy").stat().st_mode) & 0o044 == 0o044


def test_jobs_split_the_files_between_workers(tmp_path, capsys, monkeypatch, demo_model):
    for i in range(4):
        write_audio(tmp_path / "in" / f"f{i}.wav", seconds=0.2, seed=i)
    code, single, _ = run_cli(capsys, encoder, "-m", demo_model, "-i", tmp_path / "in", "-o", tmp_path / "one",
                              lines=True)
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(str(p) for p in sorted((tmp_path / "in").iterdir()))))
    code, out, err = run_cli(capsys, encoder, "-m", demo_model, "-i", "-", "-o", tmp_path / "two", "--jobs", "2",
                             lines=True)
    assert code == 0 and sorted(out) == sorted(p.replace("/one/", "/two/") for p in single)
    for path in single:  # same seed, same bytes, whichever worker made it
        assert np.array_equal(np.load(path), np.load(path.replace("/one/", "/two/")))


def test_jobs_report_a_failing_file_and_exit_non_zero(tmp_path, capsys, demo_model):
    write_audio(tmp_path / "in" / "good.wav", seconds=0.2)
    (tmp_path / "in" / "bad.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    code, out, err = run_cli(capsys, encoder, "-m", demo_model, "-i", tmp_path / "in", "-o", tmp_path / "o", "-j", "2",
                             lines=True)
    assert code == 1 and out == [str(tmp_path / "o" / "good.npy")] and "bad.wav" in err


def test_a_model_without_a_latent_size_is_named(tmp_path, capsys):
    """A scripted module with nn~'s buffers but a latent size of 0 (a broken export): one line, no traceback."""
    import warnings

    import torch

    class NoLatents(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("encode_params", torch.tensor([1, 2048, 0, 2048]))
            self.register_buffer("decode_params", torch.tensor([0, 2048, 1, 1]))
            self.sr = 44100

        @torch.jit.export
        def encode(self, x: torch.Tensor) -> torch.Tensor:
            return x[..., ::2048]

        @torch.jit.export
        def decode(self, z: torch.Tensor) -> torch.Tensor:
            return z.repeat_interleave(2048, -1)

    path = tmp_path / "broken.ts"
    with warnings.catch_warnings():  # torch 2.13 calls TorchScript deprecated; nn~ still loads only it
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(NoLatents()).save(str(path))
    src = write_audio(tmp_path / "a.wav", seconds=0.2)
    code, out, err = run_cli(capsys, encoder, "-m", path, "-i", src, "-o", tmp_path / "o", lines=True)
    assert code == 1 and not out
    assert "broken.ts" in err and "latent size" in err and len(err.strip().splitlines()) == 1
