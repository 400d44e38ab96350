"""The spherical export (``SphericalScriptedRAVE``): its decode takes exactly its 15 angles, never 16.

RAVE turns the 15 angles into a 16-dim unit vector (its ``full_latent_size``),
so the toolkit gives decode ``decode_dims`` (15) rows: noise fills up to it,
and more is refused in one line before the model sees it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_transfer import assert_same_audio, one_step, two_step

import decoder
from conftest import REAL_MODELS, run_cli, write_audio

SPHERICAL = next((p for p in REAL_MODELS if p.stem == "sphericalcap16_mono_44k_seed0"), None)
V2 = next((p for p in REAL_MODELS if p.stem == "v2cap16_mono_44k_seed0"), None)
pytestmark = pytest.mark.skipif(SPHERICAL is None, reason="no spherical export (more-kinds/) among the test models")


def test_one_step_resynthesis_equals_the_pipe_and_keeps_the_length(tmp_path, capsys):
    src = tmp_path / "rec"
    write_audio(src / "a.wav", 44100, 1.3, seed=1)
    two = two_step(tmp_path, capsys, SPHERICAL, SPHERICAL, src, "--seed", 4, "--chunk", 0.5)
    code, one, err = run_cli(capsys, decoder, "-m", SPHERICAL, "-i", src, "-o", tmp_path / "one", "--seed", 4,
                             "--chunk", 0.5, lines=True)
    assert code == 0, err
    assert_same_audio(sorted(one), two)
    audio, sr = sf.read(one[0], always_2d=True)
    assert sr == 44100 and audio.shape == (round(1.3 * 44100), 1) and np.isfinite(audio).all() and audio.any()


def test_more_dims_than_decode_takes_fail_that_file_in_one_line(tmp_path, capsys):
    angles = np.random.default_rng(0).uniform(0, 3, (1, 16, 5)).astype(np.float32)
    np.save(tmp_path / "sixteen.npy", angles)
    np.save(tmp_path / "fifteen.npy", angles[:, :15])
    np.save(tmp_path / "twelve.npy", angles[:, :12])
    code, out, err = run_cli(capsys, decoder, "-m", SPHERICAL, "-i", tmp_path, "-o", tmp_path / "o", lines=True)
    assert code == 1 and sorted(Path(p).name for p in out) == ["fifteen.wav", "twelve.wav"]
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1
    assert f"sixteen.npy: 16 latent dims, but {SPHERICAL.name} decodes at most 15" in errors[0]
    assert "twelve.npy: 12 latent dims, the model's latent_size is 15; the missing dims are filled with noise" in err
    assert not (tmp_path / "o" / "sixteen.wav").exists()
    # Three angles filled from --seed: the same seed gives the same audio, another seed other audio.
    twelve = [sf.read(tmp_path / "o" / "twelve.wav")[0]]
    for seed, folder in ((0, "again"), (1, "other")):
        assert run_cli(capsys, decoder, "-m", SPHERICAL, "-i", tmp_path / "twelve.npy", "-o", tmp_path / folder,
                       "--seed", seed)[0] == 0
        twelve.append(sf.read(tmp_path / folder / "twelve.wav")[0])
    assert np.array_equal(twelve[0], twelve[1]) and not np.array_equal(twelve[0], twelve[2])


def test_dims_beyond_what_decode_takes_exit_2(tmp_path, capsys):
    src = write_audio(tmp_path / "rec" / "a.wav", 44100, 0.5)
    sixteen = ",".join(str(1 + d % 15) for d in range(16))
    code, out, err = run_cli(capsys, decoder, "-m", SPHERICAL, "-i", src, "-o", tmp_path / "o", "--dims", sixteen,
                             lines=True)
    assert code == 2 and not out and len(err.strip().splitlines()) == 1
    assert f"--dims lists 16 dims, but {SPHERICAL.name} decodes at most 15" in err
    assert not list(tmp_path.glob("o/*"))


@pytest.mark.skipif(V2 is None, reason="RAVE_TEST_MODELS not set")
def test_transfer_from_a_v2_export_fills_the_other_angles(tmp_path, capsys):
    src = tmp_path / "rec"
    write_audio(src / "a.wav", 44100, 0.7, seed=2)
    one, err = one_step(tmp_path, capsys, V2, SPHERICAL, src, "--dims", "1,2,3,4,5,6,7,8")
    assert f"{SPHERICAL.name} gets 8 of its 15 latent dims" in err
    audio, sr = sf.read(one[0], always_2d=True)
    assert sr == 44100 and audio.shape == (round(0.7 * 44100), 1) and np.isfinite(audio).all()
