"""Discrete models: codebook indices as latents, from the model's facts to the decoder's refusals.

Runs on the ``discrete`` fixture (a demo model that keeps its codebook where
``DiscreteScriptedRAVE`` does) and on the real discrete export when
RAVE_TEST_MODELS holds it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import decoder
import encoder
import generator
import inspector
from conftest import load_latents, run_cli, save_latent_wav, save_npy
from ravekit.demo.model import demo_signal
from ravekit.engine.model import load_model, quiet_jit, read_codebook_size

FIXTURE_CODEBOOK = 32
REAL_DISCRETE = Path(os.environ.get("RAVE_TEST_MODELS", "/nonexistent")) / "kinds" / "discretecap16_mono_44k_seed0.ts"
real_discrete = pytest.mark.skipif(not REAL_DISCRETE.exists(), reason="real discrete export not in RAVE_TEST_MODELS")
PATTERNS = ("loop", "orale", "blender", "swapper", "fibo")


def encode(tmp_path, capsys, model, seconds=3.0, name="melody") -> Path:
    src = tmp_path / f"{name}.wav"
    sf.write(src, demo_signal(44100, seconds), 44100, subtype="FLOAT")
    code, out, err = run_cli(capsys, encoder, "-m", model, "-i", src, "-o", tmp_path / "lat", lines=True)
    assert code == 0, err
    return Path(out[0])


@pytest.fixture(scope="module")
def codes_dir(tmp_path_factory, fixture_models):
    """Codes of the discrete fixture for a 3 s melody, encoded once."""
    folder = tmp_path_factory.mktemp("codes")
    src = folder / "melody.wav"
    sf.write(src, demo_signal(44100, 3.0), 44100, subtype="FLOAT")
    assert encoder.main(["-m", str(fixture_models["discrete"]), "-i", str(src), "-o", str(folder / "lat"),
                         "-q"]) == 0
    return folder / "lat"


# -- the model's facts -------------------------------------------------------------------------------


class _WithEmbed(torch.nn.Module):
    """Only a codebook buffer, as the last place the loader looks."""

    def __init__(self):
        super().__init__()
        self.q = torch.nn.Module()
        self.q.register_buffer("_dummy", torch.zeros(1))
        self.register_buffer("codebook_embed_unrelated", torch.zeros(3, 2))
        self.rvq = _Layer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class _Layer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self._codebook = _Book()


class _Book(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("embed", torch.zeros(48, 4))


class _WithAttr(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.codebook_size = 200
        self.rvq = _Layer()  # the attribute wins over the buffer's 48 rows

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def test_codebook_size_lookup_order():
    with quiet_jit():
        assert read_codebook_size(torch.jit.script(_WithAttr())) == 200
        assert read_codebook_size(torch.jit.script(_WithEmbed())) == 48
        assert read_codebook_size(torch.jit.script(torch.nn.Identity())) is None


def test_fixture_and_continuous_models_say_what_their_latents_are(fixture_models):
    info = load_model(fixture_models["discrete"], "cpu", checksum=False).info
    assert info.discrete and info.codebook_size == FIXTURE_CODEBOOK and info.original_name == "DiscreteScriptedRAVE"
    plain = load_model(fixture_models["demo"], "cpu", checksum=False).info
    assert not plain.discrete and plain.codebook_size is None


@real_discrete
def test_real_discrete_export_codebook_is_read_from_its_quantizers():
    m = load_model(REAL_DISCRETE, "cpu", checksum=False)
    layer0 = getattr(m.module.encoder.rvq.layers, "0")
    assert m.info.discrete and m.info.codebook_size == layer0.codebook_size == 1024
    assert m.info.latent_size == 16


@pytest.mark.parametrize("which", ["fixture", pytest.param("real", marks=real_discrete)])
def test_inspector_shows_the_codebook(capsys, fixture_models, which):
    path, size = (fixture_models["discrete"], FIXTURE_CODEBOOK) if which == "fixture" else (REAL_DISCRETE, 1024)
    code, out, err = run_cli(capsys, inspector, "-i", path, lines=True)
    assert code == 0, err
    assert f"discrete: codebook indices 0 to {size - 1} (codebook of {size} per dim)" in "\n".join(out)
    code, out, _ = run_cli(capsys, inspector, "-i", path, "--json", lines=True)
    data = json.loads("\n".join(out))[0]
    assert data["discrete"] is True and data["codebook_size"] == size
    code, out, _ = run_cli(capsys, inspector, "-i", fixture_models["demo"], lines=True)
    assert any(line.split() == ["latents", "continuous"] for line in out)


# -- encoder and decoder -----------------------------------------------------------------------------


def test_encoder_writes_codes_and_says_so_in_the_sidecar(codes_dir):
    z, meta = load_latents(codes_dir / "melody.npy")
    assert meta["discrete"] is True and meta["codebook_size"] == FIXTURE_CODEBOOK
    assert (z == np.floor(z)).all() and z.min() >= 0 and z.max() < FIXTURE_CODEBOOK


@pytest.mark.parametrize("which", ["fixture", pytest.param("real", marks=real_discrete)])
def test_decoder_refuses_values_that_are_not_codes_and_goes_on(tmp_path, capsys, fixture_models, which):
    model = fixture_models["discrete"] if which == "fixture" else REAL_DISCRETE
    info = load_model(model, "cpu", checksum=False).info
    size, dims = info.codebook_size, info.latent_size
    good = np.zeros((1, dims, 6), np.float32)
    good[0, 0] = [0, 1, size - 1, 2, 3, size - 1]
    cases = {"negative": (2, 1, -5.0), "too_big": (3, 0, float(size)), "huge": (0, dims - 1, 99999.0),
             "fraction": (5, 2, 1.5)}
    save_npy(tmp_path / "in" / "good.npy", good)
    for name, (frame, dim, value) in cases.items():
        z = good.copy()
        z[0, dim, frame] = value
        z[0, dim, frame + 1:] = value + 0.25  # later offenders are not the one named
        save_npy(tmp_path / "in" / f"{name}.npy", z)
    code, out, err = run_cli(capsys, decoder, "-m", model, "-i", tmp_path / "in", "-o", tmp_path / "out", lines=True)
    assert code == 1
    assert [Path(p).name for p in out] == ["good.wav"]
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == len(cases)
    for name, (frame, dim, value) in cases.items():
        line = next(line for line in lines if f"{name}.npy" in line)
        assert f"value {value:g} at frame {frame + 1}, dim {dim + 1} is not a code of {Path(model).name}" in line
        assert f"whole numbers 0 to {size - 1}" in line
    assert not (tmp_path / "out" / "negative.wav").exists()


def test_decoder_refuses_too_few_code_dims(tmp_path, capsys, fixture_models):
    save_npy(tmp_path / "few.npy", np.zeros((1, 3, 4), np.float32))
    code, _, err = run_cli(capsys, decoder, "-m", fixture_models["discrete"], "-i", tmp_path / "few.npy",
                           "-o", tmp_path / "out", lines=True)
    assert code == 1 and "3 latent dims, but discrete.ts is a discrete model and needs all 8 code dims" in err


def test_latent_wav_carries_codes_exactly(tmp_path, capsys, fixture_models):
    """float32 holds whole numbers up to 2**24 exactly: a latent WAV of codes decodes like the .npy."""
    z = np.arange(8 * 5, dtype=np.float32).reshape(1, 8, 5) % FIXTURE_CODEBOOK
    save_latent_wav(tmp_path / "codes.wav", z, 44100, 1024)
    back, _ = load_latents(tmp_path / "codes.wav")
    assert np.array_equal(back, z)
    code, _, err = run_cli(capsys, decoder, "-m", fixture_models["discrete"], "-i", tmp_path / "codes.wav",
                           "-o", tmp_path / "out", lines=True)
    assert code == 0, err


# -- generator ---------------------------------------------------------------------------------------


def generate(capsys, *args):
    code, out, err = run_cli(capsys, generator, *args, lines=True)
    return code, out, err


@pytest.mark.parametrize("pattern", PATTERNS)
def test_every_pattern_emits_valid_codes(tmp_path, capsys, fixture_models, codes_dir, pattern):
    code, out, err = generate(capsys, "-i", codes_dir, "-m", fixture_models["discrete"], "--pattern", pattern,
                              "--num_latents", 4, "--embeddings", "--num_files", 2, "-o", tmp_path / "g",
                              *(["--orale_levels", 2] if pattern == "orale" else []))
    assert code == 0, err
    material = np.load(codes_dir / "melody.npy")[0]
    for path in out:
        z = np.load(path)[0]
        assert (z == np.floor(z)).all() and z.min() >= 0 and z.max() < FIXTURE_CODEBOOK
        # Without --smoothing, each dim only uses codes it has in the material.
        for d in range(z.shape[0]):
            assert set(np.unique(z[d])) <= set(np.unique(material[d]))
        assert Path(path).name.startswith(f"{pattern}_histogram_")
    code, decoded, err = run_cli(capsys, decoder, "-m", fixture_models["discrete"], "-i", *out, "-o", tmp_path / "d",
                                 lines=True)
    assert code == 0 and len(decoded) == 2, err


def test_orale_recolours_codes_instead_of_shifting_them(tmp_path, capsys, fixture_models, codes_dir):
    code, out, err = generate(capsys, "-i", codes_dir, "-m", fixture_models["discrete"], "--pattern", "orale",
                              "--orale_levels", 1, "--orale_amount", 4, "--num_latents", 6, "--embeddings",
                              "--seed", 2, "-o", tmp_path / "g")
    assert code == 0, err
    z = np.load(out[0])[0].T  # (24, dims): A A A A'
    a, varied = z[:6], z[18:]
    assert np.array_equal(z[6:12], a) and np.array_equal(z[12:18], a)
    for d in range(z.shape[1]):
        # the same code maps to the same new code throughout the block: the repetition pattern is kept
        pairs = set(zip(a[:, d], varied[:, d]))
        assert len(pairs) == len(set(a[:, d]))


def test_histogram_draws_follow_the_material_and_smoothing_opens_the_codebook(tmp_path, capsys, fixture_models,
                                                                              codes_dir):
    material = np.load(codes_dir / "melody.npy")[0]
    code, out, err = generate(capsys, "-i", codes_dir, "-m", fixture_models["discrete"], "--num_latents", 4000,
                              "--embeddings", "-o", tmp_path / "h")
    assert code == 0, err
    drawn = np.load(out[0])[0]
    stats = json.loads((tmp_path / "h" / "stats.json").read_text())
    assert stats["discrete"] is True and stats["codebook_size"] == FIXTURE_CODEBOOK
    hist = np.array(stats["histograms"])
    assert hist.shape == (8, FIXTURE_CODEBOOK)
    assert np.array_equal(hist, [np.bincount(row.astype(int), minlength=FIXTURE_CODEBOOK) for row in material])
    expected = hist / hist.sum(1, keepdims=True)
    freq = np.array([np.bincount(row.astype(int), minlength=FIXTURE_CODEBOOK) for row in drawn]) / drawn.shape[1]
    assert np.abs(freq - expected).max() < 0.05
    code, out, err = generate(capsys, "--stats", tmp_path / "h" / "stats.json", "--smoothing", 1,
                              "--num_latents", 4000, "--embeddings", "-o", tmp_path / "s")
    assert code == 0, err
    smoothed = np.load(out[0])[0]
    unseen = [c for c in range(FIXTURE_CODEBOOK) if hist[0, c] == 0]
    assert unseen and np.isin(smoothed[0], unseen).any() and smoothed.max() < FIXTURE_CODEBOOK
    code, out, err = generate(capsys, "--stats", tmp_path / "h" / "stats.json", "--distribution", "uniform",
                              "--num_latents", 4000, "--embeddings", "-o", tmp_path / "u")
    assert code == 0, err
    uni = np.load(out[0])[0]
    for d in range(8):
        assert set(np.unique(uni[d])) == set(np.flatnonzero(hist[d]).astype(np.float32))


def test_same_seed_same_codes(tmp_path, capsys, fixture_models, codes_dir):
    paths = []
    for run_dir in ("a", "b"):
        code, out, err = generate(capsys, "-i", codes_dir, "-m", fixture_models["discrete"], "--pattern", "orale",
                                  "--orale_levels", 1, "--seed", 9, "-o", tmp_path / run_dir)
        assert code == 0, err
        paths.append(Path(out[0]))
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_stats_of_the_wrong_kind_are_refused(tmp_path, capsys, fixture_models, codes_dir):
    code, _, err = generate(capsys, "-i", codes_dir, "-m", fixture_models["discrete"], "-o", tmp_path / "d")
    assert code == 0, err
    sf.write(tmp_path / "s.wav", demo_signal(44100, 1.0), 44100)
    code, _, err = run_cli(capsys, encoder, "-m", fixture_models["demo"], "-i", tmp_path / "s.wav",
                           "-o", tmp_path / "cont", lines=True)
    assert code == 0, err
    code, _, err = generate(capsys, "-i", tmp_path / "cont", "-o", tmp_path / "c")
    assert code == 0, err
    discrete_stats, continuous_stats = tmp_path / "d" / "stats.json", tmp_path / "c" / "stats.json"
    code, _, err = generate(capsys, "--stats", continuous_stats, "-m", fixture_models["discrete"], "-o", tmp_path / "x")
    assert code == 2 and "continuous latents, but" in err and "is a discrete model" in err
    assert err.count("\n") == 1
    code, _, err = generate(capsys, "--stats", discrete_stats, "-m", fixture_models["demo"], "-o", tmp_path / "x")
    assert code == 2 and "codes of a discrete model (codebook of 32)" in err and "continuous model" in err
    code, _, err = generate(capsys, "--stats", discrete_stats, "--distribution", "normal", "-o", tmp_path / "x")
    assert code == 2 and "--distribution normal" in err and "histogram or uniform" in err
    code, _, err = generate(capsys, "--stats", discrete_stats, "--iqr", "-o", tmp_path / "x")
    assert code == 2 and "--iqr" in err
    code, _, err = generate(capsys, "--stats", continuous_stats, "--distribution", "histogram", "-o", tmp_path / "x")
    assert code == 2 and "continuous latents" in err
    code, _, err = generate(capsys, "--stats", continuous_stats, "--smoothing", 1, "-o", tmp_path / "x")
    assert code == 2 and "--smoothing" in err
    assert not (tmp_path / "x").exists() or not list((tmp_path / "x").glob("*.wav"))


def test_non_codes_analysed_for_a_discrete_model_name_the_file(tmp_path, capsys, fixture_models):
    x = np.full((1, 8, 20), 3.0, np.float32)
    x[0, 4, 7] = 712.4
    save_npy(tmp_path / "lat" / "odd.npy", x)  # no sidecar: the model's codebook applies
    code, _, err = generate(capsys, "-i", tmp_path / "lat", "-m", fixture_models["discrete"], "-o", tmp_path / "g")
    assert code == 1 and "odd.npy: value 712.4 at frame 8, dim 5 is not a code of a codebook of 32" in err


def test_a_pattern_that_shifts_codes_is_refused(tmp_path, capsys, fixture_models, codes_dir):
    plug = tmp_path / "plug"
    plug.mkdir()
    (plug / "shift.py").write_text('"""Adds 0.5 to everything."""\nNUM_BASES = 1\n\n'
                                   "def generate(bases, num_loops, rng, stats, **options):\n"
                                   "    return bases[0] + 0.5\n")
    code, _, err = generate(capsys, "-i", codes_dir, "-m", fixture_models["discrete"], "--patterns_dir", plug,
                            "--pattern", "shift", "-o", tmp_path / "g")
    assert code == 1 and "pattern 'shift' produced" in err and "not a code of the discrete model" in err


@real_discrete
def test_real_discrete_export_round_trip_through_the_generator(tmp_path, capsys):
    lat = encode(tmp_path, capsys, REAL_DISCRETE, seconds=2.0)
    z, meta = load_latents(lat)
    assert meta["codebook_size"] == 1024 and (z == np.floor(z)).all() and z.min() >= 0 and z.max() < 1024
    code, out, err = generate(capsys, "-i", lat.parent, "-m", REAL_DISCRETE, "--pattern", "blender",
                              "--num_latents", 2, "--embeddings", "-o", tmp_path / "g")
    assert code == 0, err
    g = np.load(out[0])
    assert (g == np.floor(g)).all() and g.min() >= 0 and g.max() < 1024
    code, dec, err = run_cli(capsys, decoder, "-m", REAL_DISCRETE, "-i", out[0], "-o", tmp_path / "d", lines=True)
    assert code == 0, err
    audio, sr = sf.read(dec[0])
    assert sr == 44100 and np.isfinite(audio).all()


@real_discrete
def test_real_discrete_export_decodes_codes_alone_as_with_every_dim_filled(tmp_path, capsys):
    """No noise rows are added for a discrete model: the export ignores them, so the audio is the same."""
    lat = encode(tmp_path, capsys, REAL_DISCRETE, seconds=1.0)
    z = np.load(lat)
    save_npy(tmp_path / "in" / "codes.npy", z)
    save_npy(tmp_path / "in" / "wide.npy", np.concatenate([z, np.full((1, 2, z.shape[2]), 5.0, np.float32)], 1))
    code, _, err = run_cli(capsys, decoder, "-m", REAL_DISCRETE, "-i", tmp_path / "in", "-o", tmp_path / "d",
                           "--chunk", 0, "--seed", 3, lines=True)
    assert code == 0 and "wide.npy: dims 17-18 are ignored" in err, err
    codes, wide = (sf.read(tmp_path / "d" / f"{n}.wav", dtype="float32")[0] for n in ("codes", "wide"))
    with quiet_jit():
        module = torch.jit.load(str(REAL_DISCRETE), map_location="cpu")
    full = np.concatenate([z, np.random.default_rng(0).standard_normal((1, 128 - 16, z.shape[2]))], 1)
    torch.manual_seed(3)
    filled = module.decode(torch.from_numpy(full.astype(np.float32)))[0, 0].detach().numpy()
    np.testing.assert_array_equal(codes, filled)
    np.testing.assert_array_equal(wide, filled)
