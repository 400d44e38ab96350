"""Rules every script shares: exit codes, --seed, files named on the command line, -0, folder walking.

2 = a wrong command line (checked before any work: nothing is read or written), 1 = failed work.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import averager
import decoder
import encoder
import generator
import inspector
from conftest import save_npy, write_audio
from ravekit.io.latents import make_sidecar

SCRIPTS = {"encoder": encoder, "decoder": decoder, "generator": generator, "inspector": inspector,
           "averager": averager}


@pytest.fixture
def files(tmp_path, fixture_models):
    """One valid input of each kind, and the paths the cases use."""
    lat = tmp_path / "lat"
    rng = np.random.default_rng(0)
    for i in range(2):
        z = rng.standard_normal((1, 8, 40)).astype(np.float32)
        save_npy(lat / f"z{i}.npy", z, make_sidecar(sr=44100, ratio=2048, latent_dims=8, frames=40))
    return {"model": fixture_models["demo"], "model_b": fixture_models["demo_b"],
            "audio": write_audio(tmp_path / "a.wav", seconds=0.3), "lat": lat, "out": tmp_path / "out",
            "missing": tmp_path / "missing.ts", "nope": tmp_path / "nope"}


def argv_for(script: str, case: str, f: dict) -> list:
    """The command line of ``case`` (ok, missing_model, missing_input, bad_seed) for ``script``."""
    model = f["missing"] if case == "missing_model" else f["model"]
    seed = ["--seed", "-1"] if case == "bad_seed" else []
    if script == "encoder":
        return ["-m", model, "-i", f["nope"] if case == "missing_input" else f["audio"], "-o", f["out"], *seed]
    if script == "decoder":
        return ["-m", model, "-i", f["nope"] if case == "missing_input" else f["lat"], "-o", f["out"], *seed]
    if script == "generator":
        return ["-m", model, "-i", f["nope"] if case == "missing_input" else f["lat"], "-o", f["out"], *seed]
    if script == "inspector":  # the model is its input; it has no --seed
        return ["-i", f["nope"] if case == "missing_input" else model, "--save", "-o", f["out"]]
    # averager: its models, and --audio as its other input
    audio = f["nope"] if case == "missing_input" else f["audio"]
    return ["--models", model, f["model_b"], "--audio", audio, "-o", f["out"] / "m.ts", *seed]


CASES = [(s, c) for s in SCRIPTS for c in ("ok", "missing_model", "missing_input", "bad_seed")
         if not (s == "inspector" and c == "bad_seed")]


@pytest.mark.parametrize("script, case", CASES, ids=[f"{s}-{c}" for s, c in CASES])
def test_exit_codes_are_the_same_in_every_script(script, case, files, capsys):
    code = SCRIPTS[script].main([str(a) for a in argv_for(script, case, files)])
    out, err = capsys.readouterr()
    if case == "ok":
        assert code == 0, err
        assert out and all(Path(p).exists() for p in out.splitlines())
        return
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1, err
    assert not files["out"].exists()  # refused before any work
    flag = {"missing_model": "--models" if script == "averager" else "--model", "bad_seed": "--seed -1",
            "missing_input": "--audio" if script == "averager" else "--input"}[case]
    if script == "inspector":
        flag = "--input"
    assert flag in lines[0] and ("not found" in lines[0] or "from 0 to 4294967295" in lines[0]), err


@pytest.mark.parametrize("seed, ok", [(0, True), (2**32 - 1, True), (2**32, False), (-1, False)])
def test_one_seed_rule(seed, ok, files, capsys):
    """0..2**32-1 everywhere: the encoder and decoder used to take -1, the generator refused it."""
    for script in ("encoder", "generator"):
        out = files["out"] / f"{script}{seed}"
        argv = argv_for(script, "ok", files)
        argv[argv.index(files["out"])] = out
        code = SCRIPTS[script].main([str(a) for a in argv + ["--seed", seed]])
        err = capsys.readouterr().err
        assert (code == 0) if ok else (code == 2 and f"--seed {seed}:" in err), (script, err)


def test_other_command_line_files_exit_2(files, tmp_path, capsys):
    stats_missing = ["--stats", tmp_path / "none.json", "-o", files["out"]]
    for argv, needle in ((stats_missing, "--stats"),
                         (["-i", files["lat"], "--patterns_dir", tmp_path / "none"], "--patterns_dir"),
                         (["-i", files["lat"], "-m", tmp_path], "is a folder")):
        code = generator.main([str(a) for a in argv])
        err = capsys.readouterr().err
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err


# ---------------------------------------------------------------- -0 / --null

def test_null_separated_paths_in_and_out(files, tmp_path, capsys, monkeypatch):
    """A file name with a line break goes through encoder -> decoder with -0, as find -print0 gives it."""
    odd = write_audio(tmp_path / "in" / "two\nlines.wav", seconds=0.2)
    plain = write_audio(tmp_path / "in" / "plain.wav", seconds=0.2)
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{odd}\0{plain}\0"))
    code = encoder.main(["-m", str(files["model"]), "-i", "-", "-0", "-o", str(tmp_path / "lat0")])
    out, err = capsys.readouterr()
    assert code == 0, err
    written = out.split("\0")
    assert written[-1] == "" and sorted(Path(p).name for p in written[:-1]) == ["plain.npy", "two\nlines.npy"]
    monkeypatch.setattr(sys, "stdin", io.StringIO(out))
    code = decoder.main(["-m", str(files["model"]), "-i", "-", "--null", "-o", str(tmp_path / "aud")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert sorted(Path(p).name for p in out.split("\0") if p) == ["plain.wav", "two\nlines.wav"]


def test_line_break_in_a_name_fails_that_file_without_null(files, tmp_path, capsys):
    write_audio(tmp_path / "in" / "two\nlines.wav", seconds=0.2)
    write_audio(tmp_path / "in" / "plain.wav", seconds=0.2)
    code = encoder.main(["-m", str(files["model"]), "-i", str(tmp_path / "in"), "-o", str(tmp_path / "o")])
    out, err = capsys.readouterr()
    assert code == 1
    assert out.splitlines() == [str(tmp_path / "o" / "plain.npy")]  # every line is a whole path
    assert "-0 (--null)" in err and r"two\nlines" in err
    assert not (tmp_path / "o" / "two\nlines.npy").exists()  # refused before the work, not after
    assert all(line.startswith("encoder.py: ") for line in err.strip().splitlines())


def test_newline_separated_stdin_with_null_is_one_line_with_a_hint(files, tmp_path, capsys, monkeypatch):
    """printf 'a.wav\\n' | encoder.py -i - -0: the name is shown as repr, and the likely cause is named."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{files['audio']}\n{files['audio']}\n"))
    code = encoder.main(["-m", str(files["model"]), "-i", "-", "-0", "-o", str(files["out"])])
    out, err = capsys.readouterr()
    assert code == 2 and not out and len(err.strip().splitlines()) == 1, err
    assert repr(f"{files['audio']}\n{files['audio']}\n") in err and "input not found" in err
    assert "NUL-separated" in err and "find -print0" in err


def test_a_failing_file_with_a_line_break_is_reported_on_one_line(files, tmp_path, capsys, monkeypatch):
    bad = tmp_path / "in" / "bro\rken\nfile.wav"
    bad.parent.mkdir()
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{bad}\0"))
    code = encoder.main(["-m", str(files["model"]), "-i", "-", "-0", "-o", str(tmp_path / "o")])
    _, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if "error:" in line]
    assert code == 1 and len(errors) == 1 and repr(str(bad)) in errors[0], err
    assert all(line.startswith("encoder.py: ") for line in err.strip().splitlines()), err


def test_generator_and_inspector_take_null(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("".join(f"{p}\0" for p in sorted(files["lat"].glob("*.npy")))))
    code = generator.main(["-i", "-", "-0", "--embeddings", "--num_files", "2", "-o", str(tmp_path / "g")])
    out, err = capsys.readouterr()
    assert code == 0 and out.count("\0") == 2 and "\n" not in out, err
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{files['model']}\0"))
    code = inspector.main(["-i", "-", "-0", "--save", "-o", str(tmp_path / "s")])
    out, err = capsys.readouterr()
    assert code == 0 and out.count("\0") == 3 and all(Path(p).is_file() for p in out.split("\0") if p), err


def test_negative_numbers_still_parse_beside_the_0_flag(files, capsys):
    """-0 is an option named like a number; --bpm -120 must still reach the check that explains it."""
    code = generator.main(["-i", str(files["lat"]), "--bpm", "-120"])
    assert code == 2 and "--bpm -120" in capsys.readouterr().err


# ---------------------------------------------------------------- folders and links

def test_symlinked_folders_are_followed_once_and_broken_links_reported(files, tmp_path, capsys):
    lib = tmp_path / "lib"
    write_audio(lib / "a.wav", seconds=0.2)
    elsewhere = tmp_path / "elsewhere"
    write_audio(elsewhere / "b.wav", seconds=0.2)
    os.symlink(elsewhere, lib / "linked")          # a symlinked subfolder: followed
    os.symlink(lib, lib / "linked" / "loop")       # a loop back up: walked once, no endless recursion
    os.symlink(tmp_path / "gone.wav", lib / "broken.wav")
    code = encoder.main(["-m", str(files["model"]), "-i", str(lib), "-o", str(tmp_path / "o")])
    out, err = capsys.readouterr()
    assert code == 1  # the broken link is a failed file, reported at the end
    assert sorted(out.split()) == [str(tmp_path / "o" / "a.npy"), str(tmp_path / "o" / "linked" / "b.npy")]
    assert f"{lib / 'broken.wav'}: broken symbolic link (to {tmp_path / 'gone.wav'})" in err
    assert "1 failed" in err


EMPTY_PATH_CASES = [("encoder", f) for f in ("-o", "-i", "-m")] + \
    [("decoder", f) for f in ("-o", "-i", "-m", "--encoder")] + \
    [("generator", f) for f in ("-o", "-i", "-m", "--stats", "--prior", "--patterns_dir")] + \
    [("inspector", f) for f in ("-o", "-i")] + \
    [("averager", f) for f in ("-o", "--models", "--audio", "--report")]
LONG = {"-o": "--output", "-i": "--input", "-m": "--model"}


@pytest.mark.parametrize("script, flag", EMPTY_PATH_CASES, ids=[f"{s}{f}" for s, f in EMPTY_PATH_CASES])
def test_an_empty_path_is_a_usage_error(script, flag, files, tmp_path, capsys, monkeypatch):
    """-o "" (an unset shell variable) used to write into the current folder; --encoder "" to mean --model."""
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    argv = [str(a) for a in argv_for(script, "ok", files)]
    if flag in argv:  # the flag's value (the first, for --models) becomes ""
        argv[argv.index(flag) + 1] = ""
    else:
        argv += [flag, ""]
    code = SCRIPTS[script].main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1, err
    assert f'{LONG.get(flag, flag)} "": the path is empty' in lines[0], err
    assert list(here.iterdir()) == [] and not files["out"].exists()
