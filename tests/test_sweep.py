"""averager.py --sweep N: renders of merges evenly spaced from A to B, and the page that plays them."""

from __future__ import annotations

import re
import warnings

import soundfile as sf
import torch

import averager
from conftest import run_cli, write_audio
from test_averager import perturbed


def test_sweep_endpoints_are_the_parents_and_the_page_plays_them_in_order(fixture_models, tmp_path, capsys):
    a = fixture_models["demo"]
    b = perturbed(a, tmp_path / "b.ts", seed=5)
    audio = write_audio(tmp_path / "in.wav", seconds=1.0)
    out = tmp_path / "out" / "m.ts"
    code, stdout, err = run_cli(capsys, averager, "--models", a, b, "--audio", audio, "--sweep", 4, "-o", out,
                                lines=True)
    assert code == 0, err
    steps = [out.parent / f"in.m.sweep{k}.wav" for k in range(4)]
    assert all(str(p) in stdout for p in steps)
    renders = [sf.read(str(p), dtype="float32")[0] for p in steps]
    parent_a, parent_b = (sf.read(str(out.parent / f"in.{x}.wav"), dtype="float32")[0] for x in "AB")
    assert (renders[0] == parent_a).all() and (renders[-1] == parent_b).all()
    assert not (renders[1] == parent_a).all() and not (renders[1] == renders[2]).all()
    page = (out.parent / "m.listen.html").read_text()
    srcs = re.findall(r'src="(in\.m\.sweep\d\.wav)"', page)
    assert srcs == [p.name for p in steps]
    assert "From A to B: 4 merges" in page and "spectral distance and loudness along the sweep" in page
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        merged, parent = torch.jit.load(str(out)), torch.jit.load(str(a))
    assert merged.get_methods() == parent.get_methods()


def test_with_live_the_sweep_renders_as_nn_plays_like_the_parents(fixture_models, tmp_path, capsys):
    # One listening page: the steps must be rendered the way A, B and the merge are, or they would not compare.
    a = fixture_models["demo"]
    b = perturbed(a, tmp_path / "b.ts", seed=5)
    audio = write_audio(tmp_path / "in.wav", seconds=1.0)
    out = tmp_path / "out" / "m.ts"
    code, _, err = run_cli(capsys, averager, "--models", a, b, "--audio", audio, "--sweep", 3, "--live", 4096,
                           "-o", out)
    assert code == 0, err
    parent_a = sf.read(str(out.parent / "in.A.wav"), dtype="float32")[0]
    first, middle = (sf.read(str(out.parent / f"in.m.sweep{k}.wav"), dtype="float32")[0] for k in (0, 1))
    assert len(parent_a) > 44100 and (first == parent_a).all() and len(middle) == len(parent_a)


def test_sweep_one_is_refused_before_anything_is_written(fixture_models, tmp_path, capsys):
    audio = write_audio(tmp_path / "in.wav", seconds=1.0)
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, averager, "--models", fixture_models["demo"], fixture_models["demo_b"],
                           "--audio", audio, "--sweep", 1, "-o", out / "m.ts")
    lines = [line for line in err.splitlines() if line]
    assert code == 2 and len(lines) == 1 and "--sweep 1" in lines[0] and "--sweep 2 or more" in lines[0]
    assert not out.exists()
