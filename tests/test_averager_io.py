"""averager.py: refusals, where outputs go, and the --audio renders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import averager
from conftest import REAL_MODELS, run_cli, write_audio
from test_averager import demo_c, jit_load, state  # noqa: F401 (demo_c is a fixture)


@pytest.mark.parametrize("other", ["stereo512", "rave_named"])
def test_different_architectures_refused(fixture_models, other, tmp_path, capsys):
    out = tmp_path / "m.ts"
    code, stdout, err = run_cli(capsys, averager, "--models", fixture_models["demo"], fixture_models[other], "-o", out)
    assert code == 1 and stdout == ""
    assert "not compatible" in err and "ratio differs" in err and "--force" in err
    code, stdout, err = run_cli(capsys, averager, "--models", fixture_models["demo"], fixture_models[other], "-o", out,
                                "--force")
    assert code == 1 and "nothing to merge" in err and "nothing was written" in err
    assert list(tmp_path.iterdir()) == []


def test_force_merges_other_sample_rate_and_says_what_breaks(fixture_models, tmp_path, capsys):
    from ravekit.demo.model import build_demo_model

    other = build_demo_model(tmp_path / "demo48k.ts", sr=48000, gain_seed=2)
    out = tmp_path / "m.ts"
    code, _, err = run_cli(capsys, averager, "--models", fixture_models["demo"], other, "-o", out)
    assert code == 1 and "sr differs" in err and not out.exists()
    code, _, err = run_cli(capsys, averager, "--models", fixture_models["demo"], other, "-o", out, "--force")
    assert code == 0 and out.exists()
    assert "warning: sr differs" in err and "A's rate" in err
    assert jit_load(out).sr == 44100


def test_bad_inputs_and_outputs(fixture_models, demo_c, tmp_path, capsys):
    a = fixture_models["demo"]
    junk = tmp_path / "junk.ts"
    junk.write_bytes(b"not a model")
    out = tmp_path / "m.ts"
    code, _, err = run_cli(capsys, averager, "--models", a, junk, "-o", out)
    assert code == 1 and str(junk) in err and "Traceback" not in err
    code, _, err = run_cli(capsys, averager, "--models", a, tmp_path / "nope.ts", "-o", out)
    assert code == 2 and "--models" in err and "not found" in err
    # An output equal to an input is refused even with --force.
    code, _, err = run_cli(capsys, averager, "--models", a, demo_c, "-o", demo_c, "--force")
    assert code == 2 and "also an input" in err
    before = a.read_bytes()
    code, _, err = run_cli(capsys, averager, "--models", a, demo_c, "-o", out, "--report", a, "--force")
    assert code == 2 and a.read_bytes() == before
    code, _, err = run_cli(capsys, averager, "--models", a, demo_c, "--weights", 1, "-o", out)
    assert code == 2 and "one per model" in err
    code, _, err = run_cli(capsys, averager, "--models", a, demo_c, "--weights", 1, -1, "-o", out)
    assert code == 2
    code, _, err = run_cli(capsys, averager, "--models", a, demo_c, "--include", "(", "-o", out)
    assert code == 2 and "--include" in err
    code, _, err = run_cli(capsys, averager, "--models", a, demo_c, "--include", "no_such_entry", "-o", out)
    assert code == 1 and "nothing to merge" in err
    assert not out.exists() and not out.with_suffix(".csv").exists()
    # An existing output is kept unless --force.
    assert run_cli(capsys, averager, "--models", a, demo_c, "-o", out)[0] == 0
    first = out.read_bytes()
    code, _, err = run_cli(capsys, averager, "--models", a, demo_c, "--weights", 1, 3, "-o", out)
    assert code == 1 and "already exists" in err and out.read_bytes() == first
    assert run_cli(capsys, averager, "--models", a, demo_c, "--weights", 1, 3, "-o", out, "--force")[0] == 0
    assert out.read_bytes() != first


def test_default_output_folder(fixture_models, demo_c, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, stdout, _ = run_cli(capsys, averager, "--models", fixture_models["demo"], demo_c)
    assert code == 0
    assert stdout.split() == ["_averager-output/merged.ts", "_averager-output/merged.csv",
                              "_averager-output/merged.json"]
    # An existing folder as --output: merged.ts inside it.
    code, stdout, _ = run_cli(capsys, averager, "--models", fixture_models["demo"], demo_c, "-o", "_averager-output",
                              "--report", "other.csv")
    assert code == 1 and "merged.ts: already exists" in _
    (tmp_path / "folder").mkdir()
    code, stdout, _ = run_cli(capsys, averager, "--models", fixture_models["demo"], demo_c, "-o", "folder")
    assert code == 0 and stdout.split() == ["folder/merged.ts", "folder/merged.csv", "folder/merged.json"]


@pytest.mark.parametrize("chunk_seconds", [None, 0.2])
def test_audio_renders_each_parent_and_the_merge(fixture_models, demo_c, tmp_path, capsys, monkeypatch,
                                                 chunk_seconds):
    if chunk_seconds:  # long-file path: chunks with measured context, as encoder.py does
        monkeypatch.setattr("ravekit.engine.chunks.DEFAULT_CHUNK_SECONDS", chunk_seconds)
    song = write_audio(tmp_path / "in" / "song.flac", sr=22050, seconds=1.3, channels=2)
    out = tmp_path / "out" / "hybrid.ts"
    args = ["--models", fixture_models["demo"], demo_c, "-o", out, "--audio", song, "--seed", 4]
    code, stdout, err = run_cli(capsys, averager, *args, "--weights", 1, 0)
    assert code == 0, err
    renders = [out.parent / f"song.{x}.wav" for x in ("A", "B", "hybrid")]
    assert stdout.split() == [str(out.with_suffix(x)) for x in (".ts", ".csv", ".json")] + [str(p) for p in renders] \
        + [str(out.parent / "hybrid.listen.html")]
    data = [sf.read(str(p), dtype="float32") for p in renders]
    for y, sr in data:
        assert sr == 44100 and y.shape == (round(1.3 * 44100),)
    # Weights 1 0: the merged model is A, and the same seed gives the same audio.
    assert np.array_equal(data[0][0], data[2][0])
    assert not np.array_equal(data[0][0], data[1][0])
    code, _, err = run_cli(capsys, averager, *args, "--weights", 1, 1)
    assert code == 1 and "already exists" in err


def test_unreadable_audio_fails_before_anything_is_written(fixture_models, demo_c, tmp_path, capsys):
    bad = tmp_path / "song.wav"
    bad.write_bytes(b"RIFF garbage")
    out = tmp_path / "out" / "m.ts"
    code, stdout, err = run_cli(capsys, averager, "--models", fixture_models["demo"], demo_c, "-o", out, "--audio", bad)
    assert code == 1 and str(bad) in err and stdout == ""
    assert not out.exists() and not out.with_suffix(".csv").exists()


@pytest.mark.parametrize("given", ["newdir/", "newdir"])
def test_output_folder_that_does_not_exist_yet(fixture_models, demo_c, tmp_path, capsys, monkeypatch, given):
    monkeypatch.chdir(tmp_path)
    code, stdout, err = run_cli(capsys, averager, "--models", fixture_models["demo"], demo_c, "-o", given)
    assert code == 0, err
    assert stdout.split() == ["newdir/merged.ts", "newdir/merged.csv", "newdir/merged.json"]
    assert (tmp_path / "newdir").is_dir() and jit_load(tmp_path / "newdir" / "merged.ts").sr == 44100


def test_output_paths_takes_plain_values(tmp_path):
    from ravekit.merging.outputs import output_paths

    a, b = str(tmp_path / "a.ts"), str(tmp_path / "b.ts")
    out, report, recipe, renders = output_paths(str(tmp_path / "x") + "/", None, [a, b], None, False)
    assert (out, report, recipe, renders) == (tmp_path / "x" / "merged.ts", tmp_path / "x" / "merged.csv",
                                              tmp_path / "x" / "merged.json", [])


def _files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_merging_a_model_with_itself_is_refused(fixture_models, tmp_path, capsys):
    a = fixture_models["demo"]
    for extra in ([], ["--force"]):  # --force overwrites outputs; it does not make a copy of A a merge
        code, stdout, err = run_cli(capsys, averager, "--models", a, a, "-o", tmp_path / "o" / "m.ts", *extra)
        assert code == 1 and stdout == ""
        assert "nothing to merge" in err and "identical in every model" in err and "nothing was written" in err
        assert len(err.strip().splitlines()) == 1
    assert _files(tmp_path / "o") == []


def test_models_that_differ_only_where_shapes_differ_are_refused(fixture_models, tmp_path, capsys):
    from ravekit.demo.model import build_demo_model

    # Same sample rate and latent size, another ratio: the band matrix differs in shape; every entry
    # of one shape (smoothing, gains, band edges) is identical, as in two capacities of one RAVE config.
    other = build_demo_model(tmp_path / "demo_ratio1024.ts", ratio=1024)
    out = tmp_path / "o" / "m.ts"
    code, _, err = run_cli(capsys, averager, "--models", fixture_models["demo"], other, "-o", out, "--force")
    assert code == 1 and "nothing to merge" in err
    assert "identical in every model" in err and "1 differ in shape" in err and "architectures" in err
    assert _files(tmp_path / "o") == []


@pytest.mark.skipif(not REAL_MODELS, reason="RAVE_TEST_MODELS not set")
def test_real_export_merged_with_itself_is_refused(tmp_path, capsys):
    a = REAL_MODELS[0]
    code, _, err = run_cli(capsys, averager, "--models", a, a, "-o", tmp_path / "m.ts")
    assert code == 1 and "nothing to merge" in err and "identical in every model" in err
    assert _files(tmp_path) == []


def test_every_merge_says_what_share_of_a_it_changed(fixture_models, tmp_path, capsys):
    a_path, b_path = fixture_models["demo"], fixture_models["demo_b"]
    a, b = state(a_path), state(b_path)
    # demo and demo_b differ only in the decoder's band gains: those are all the merge can change.
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert differ == ["decoder.gain"]
    total = sum(t.numel() for t in a.values())
    gain = a["decoder.gain"].numel()
    out = tmp_path / "m.ts"
    code, _, err = run_cli(capsys, averager, "--models", a_path, b_path, "-o", out)
    assert code == 0, err
    share = f"changed in A: 1 of {len(a)} entries ({100 / len(a):.1f}%), {gain} of {total:,} values " \
            f"({100 * gain / total:.1f}%)"
    assert share in err
    recipe = json.loads(out.with_suffix(".json").read_text())
    assert (recipe["changed_entries"], recipe["changed_values"]) == (1, gain)
    assert recipe["merged_entries"] == 4  # smoothing and band edges are merged too, but are equal
    # Weights 1 0 are allowed (A back bit for bit) and say that they changed nothing.
    code, _, err = run_cli(capsys, averager, "--models", a_path, b_path, "--weights", 1, 0, "-o", out, "--force")
    assert code == 0 and f"changed in A: 0 of {len(a)} entries (0.0%), 0 of {total:,} values (0.0%)" in err


def test_interrupted_merge_leaves_nothing_or_a_set_known_to_be_unfinished(fixture_models, tmp_path, capsys,
                                                                         monkeypatch):
    import os

    import ravekit.io.files
    import ravekit.merging.report

    a, b = fixture_models["demo"], fixture_models["demo_b"]
    song = write_audio(tmp_path / "song.wav", seconds=0.3)
    out = tmp_path / "o" / "m.ts"
    args = ["--models", a, b, "-o", out, "--audio", song]

    def interrupt(*_, **__):
        raise KeyboardInterrupt

    # Interrupted while the set is being made (here: writing the recipe): nothing is left, not even temporaries.
    with monkeypatch.context() as m:
        m.setattr(ravekit.merging.report, "write_recipe", interrupt)
        code, stdout, err = run_cli(capsys, averager, *args)
    assert code == 130 and stdout == "" and _files(tmp_path / "o") == []
    assert err.strip().endswith("error: interrupted; the merge was not finished and nothing resumes it: run it "
                                "again (with --force if it left a model without its .json recipe)")

    # Interrupted while renaming the set into place, just before the recipe: model, report and renders
    # are there, the recipe is not.
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst).name == "m.json":  # the final name, not the staged one
            raise KeyboardInterrupt
        return real_replace(src, dst)

    with monkeypatch.context() as m:
        m.setattr(ravekit.io.files.os, "replace", replace)
        code, _, err = run_cli(capsys, averager, *args)
    assert code == 130
    assert _files(tmp_path / "o") == ["m.csv", "m.listen.html", "m.ts", "song.A.wav", "song.B.wav",
                                        "song.m.wav"]
    # A re-run does not take that for a finished merge, nor call it merely "already exists".
    code, stdout, err = run_cli(capsys, averager, *args)
    assert code == 1 and stdout == ""
    assert "earlier merge was interrupted" in err and "m.json is missing" in err and "--force" in err
    assert "already exists" not in err
    code, stdout, err = run_cli(capsys, averager, *args, "--force")
    assert code == 0, err
    assert _files(tmp_path / "o") == ["m.csv", "m.json", "m.listen.html", "m.ts", "song.A.wav",
                                        "song.B.wav", "song.m.wav"]
    recipe = json.loads((tmp_path / "o" / "m.json").read_text())
    assert recipe["renders"] == [str(tmp_path / "o" / f"song.{x}.wav") for x in ("A", "B", "m")]
    # A finished set is "already exists", as before.
    code, _, err = run_cli(capsys, averager, *args)
    assert code == 1 and "already exists" in err


def _edited_copy(src: Path, dst: Path, edit) -> Path:
    """A copy of export ``src`` whose state_dict entries ``edit(name, tensor)`` changed in place."""
    import warnings

    m = jit_load(src)
    with torch.no_grad():
        for name, t in m.state_dict().items():
            edit(name, t)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(m, str(dst))
    return dst


DISCRETE = next((p for p in REAL_MODELS if p.stem.startswith("discrete")), None)


def test_discrete_models_with_other_codebook_sizes_are_refused(fixture_models, tmp_path, capsys):
    from ravekit.demo.model import build_demo_model

    other = build_demo_model(tmp_path / "discrete64.ts", discrete=True, ratio=1024, codebook_size=64, gain_seed=1)
    a = fixture_models["discrete"]
    out = tmp_path / "o" / "m.ts"
    for force in ([], ["--force"]):
        code, stdout, err = run_cli(capsys, averager, "--models", a, other, "-o", out, *force)
        assert code == 1 and stdout == "" and len(err.strip().splitlines()) == 1, err
        assert f"{a} and {other}: their codebooks differ (codebooks of 32 and 64 codes)" in err
        assert not out.parent.exists()


@pytest.mark.skipif(DISCRETE is None, reason="RAVE_TEST_MODELS has no discrete export")
def test_real_discrete_export_with_another_codebook_is_refused(tmp_path, capsys):
    assert DISCRETE is not None
    gen = torch.Generator().manual_seed(0)

    def new_codebook(name, t):
        if name.endswith("_codebook.embed") or name.endswith("_codebook.embed_avg"):
            t.copy_(torch.randn(t.shape, generator=gen) * t.std())

    def new_decoder(name, t):
        if name.startswith("decoder.") and t.is_floating_point() and t.numel():
            t.mul_(1.1)

    other = _edited_copy(DISCRETE, tmp_path / "other_codebook.ts", new_codebook)
    out = tmp_path / "o" / "m.ts"
    code, _, err = run_cli(capsys, averager, "--models", DISCRETE, other, "-o", out, "--force")
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert f"{DISCRETE} and {other}: their codebooks differ (encoder.rvq.layers.0._codebook." in err
    assert not out.parent.exists()
    # The same codebook, another decoder: a merge that keeps every code's meaning goes through.
    same = _edited_copy(DISCRETE, tmp_path / "same_codebook.ts", new_decoder)
    code, _, err = run_cli(capsys, averager, "--models", DISCRETE, same, "-o", out)
    assert code == 0 and out.exists(), err
