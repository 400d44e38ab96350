"""decoder.py --dims as a flag of its own: its entries, and how many the decoding model takes."""

from __future__ import annotations

import pytest
from test_transfer import SEED0, needs_shared

import decoder
from conftest import run_cli, write_audio


@pytest.mark.parametrize("dims, words", [
    ("1,2,,3", "entry 3 is empty"),  # used to be read as 1,2,3: every later dim one decoder dim early
    ("1,x", "entry 2 ('x') is not a whole number"),
    ("2,0", "entry 2 (0) is below 1"),
    (",", "entry 1 is empty"),
])
def test_a_malformed_dims_list_is_a_usage_error(dims, words, tmp_path, capsys, demo_model):
    src = write_audio(tmp_path / "a.wav", seconds=0.3)
    with pytest.raises(SystemExit) as stop:
        decoder.main(["-m", str(demo_model), "-i", str(src), "-o", str(tmp_path / "o"), "--dims", dims])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "--dims" in err and words in err, err
    assert not (tmp_path / "o").exists()


def test_repeated_dims_are_allowed(tmp_path, capsys, demo_model):
    """The README allows repeats: one input dim may feed several decoder dims."""
    src = write_audio(tmp_path / "a.wav", seconds=0.3)
    code, out, err = run_cli(capsys, decoder, "-m", demo_model, "-i", src, "-o", tmp_path / "o",
                             "--dims", "1,1,2,2,3,3,4,4", lines=True)
    assert code == 0 and len(out) == 1, err


def test_dims_the_encoder_does_not_make_blame_dims(tmp_path, capsys, fixture_models):
    """stereo512 makes 4 dims: asking for a fifth is --dims' fault, not --encoder's."""
    src = write_audio(tmp_path / "a.wav", 48000, 0.3, 2)
    code, out, err = run_cli(capsys, decoder, "-m", fixture_models["demo"], "--encoder", fixture_models["stereo512"],
                             "-i", src, "-o", tmp_path / "o", "--dims", "1,2,3,4,5", lines=True)
    lines = err.strip().splitlines()
    assert code == 2 and not out and len(lines) == 1, err
    assert lines[0].startswith("decoder.py: error: --dims asks for dim 5, but --encoder stereo512.ts makes only 4"), err


@pytest.mark.parametrize("inputs", ["audio", "latents"])
def test_more_dims_than_the_model_decodes_is_one_usage_error(inputs, tmp_path, capsys, demo_model):
    """The demo model decodes at most 8 dims: 16 entries used to fail every file, naming the file."""
    import numpy as np

    if inputs == "audio":
        src = write_audio(tmp_path / "in" / "a.wav", seconds=0.3)
    else:
        src = tmp_path / "in" / "z.npy"
        src.parent.mkdir()
        np.save(src, np.zeros((1, 8, 5), np.float32))
    code, out, err = run_cli(capsys, decoder, "-m", demo_model, "-i", src, "-o", tmp_path / "o",
                             "--dims", ",".join(["1,2,3,4,5,6,7,8"] * 2), lines=True)
    lines = err.strip().splitlines()
    assert code == 2 and not out and len(lines) == 1, err
    assert "--dims lists 16 dims, but demo.ts decodes at most 8" in lines[0], err


@needs_shared
def test_dims_past_the_latent_size_warn_once_what_they_replace(tmp_path, capsys):
    """A real v2 export: latent size 8, decodes up to 128; entries 9..16 replace the noise it adds."""
    src = tmp_path / "in"
    for i in range(2):
        write_audio(src / f"a{i}.wav", seconds=0.3, seed=i)
    code, out, err = run_cli(capsys, decoder, "-m", SEED0, "-i", src, "-o", tmp_path / "o",
                             "--dims", ",".join(["1,2,3,4,5,6,7,8"] * 2), lines=True)
    assert code == 0 and len(out) == 2, err
    warnings = [line for line in err.splitlines() if "warning:" in line]
    assert len(warnings) == 1 and "--dims lists 16 dims" in warnings[0] and "entries 9 to 16" in warnings[0], err
    code, out, err = run_cli(capsys, decoder, "-m", SEED0, "-i", src, "-o", tmp_path / "o2",
                             "--dims", ",".join(["1"] * 129), lines=True)
    assert code == 2 and "decodes at most 128" in err and len(err.strip().splitlines()) == 1, err
