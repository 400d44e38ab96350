"""generator.py end to end: flags, tempo, outputs, reproducibility, models, Pure Data.

The analysis (statistics, degenerate inputs, distributions) is in test_generator_stats.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import generator
from conftest import ROOT, export_facts, full_disk_at_call, real_models, run_cli, save_latent_wav, save_npy
from ravekit.generate.stats import load_stats
from ravekit.io.latents import make_sidecar

SR, RATIO = 44100, 2048


def write_latents(folder: Path, arrays, sr=SR, ratio=RATIO, sidecar=True) -> list[Path]:
    """Save ``(dims, frames)`` arrays as .npy latents with (or without) sidecars."""
    paths = []
    for i, a in enumerate(arrays):
        meta = make_sidecar(sr=sr, ratio=ratio, latent_dims=a.shape[0], frames=a.shape[1]) if sidecar else None
        paths.append(save_npy(folder / f"part{i}.npy", a[None].astype(np.float32), meta))
    return paths


def corpus(seed=0, dims=6, sizes=(300, 500, 200)):
    """Correlated latents whose files differ in mean and spread, so pooling matters."""
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((dims, dims))
    return [(mix @ rng.standard_normal((dims, n)) * (1 + i) + 2 * i).astype(np.float32)
            for i, n in enumerate(sizes)]


@pytest.fixture
def latents(tmp_path) -> tuple[Path, np.ndarray]:
    arrays = corpus()
    write_latents(tmp_path / "lat", arrays)
    return tmp_path / "lat", np.concatenate(arrays, axis=1)


def run_python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          check=True, timeout=60).stdout


# --- start-up ---------------------------------------------------------------------------------

def test_help_and_list_patterns_import_neither_numpy_nor_patterns():
    out = run_python(
        "import sys, contextlib, io, generator\n"
        "for argv in (['--help'], ['--list_patterns']):\n"
        "    f = io.StringIO()\n"
        "    with contextlib.redirect_stdout(f):\n"
        "        try: generator.main(argv)\n"
        "        except SystemExit: pass\n"
        "    print(f.getvalue())\n"
        "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'torch') "
        "or m.startswith('_ravekit_pattern')))\n")
    assert "LOADED []" in out
    for name in ("fibo", "orale", "blender", "swapper", "loop"):
        assert name in out
    assert "Fibonacci" in out  # description from the docstring, read without importing


# --- flag checks ------------------------------------------------------------------------------

@pytest.mark.parametrize("flags, needle", [
    (["--seed", "-3"], "--seed -3"),
    (["--bpm", "0"], "--bpm 0"),
    (["--bpm", "-120"], "--bpm -120"),
    (["--bpm", "nan"], "--bpm nan"),
    (["--sample_rate", "0"], "--sample_rate 0"),
    (["--ratio", "0"], "--ratio 0"),
    (["--num_files", "0"], "--num_files 0"),
    (["--pattern", "swapper", "--swapper_steps", "0"], "--swapper_steps 0"),
    (["--pattern", "orale", "--orale_levels", "0"], "--orale_levels 0"),
    # No loop is faster than k = 1 frame (1291.99 BPM here): the message says which tempi work.
    (["--bpm", "100000"], "give --bpm 1291.99 or slower, or --num_latents"),
    # blender at 0.5 BPM needs k = 2584, far more than --max_frames: the slowest tempo that fits.
    (["--pattern", "blender", "--bpm", "0.5"], "give --bpm 2.24 or faster (k = 577)"),
    (["--pattern", "blender", "--num_latents", "600"], "--num_latents 600"),
])
def test_bad_flag_exits_2_before_reading_or_writing(latents, tmp_path, capsys, flags, needle):
    folder, _ = latents
    (folder / "part0.npy").write_bytes(b"corrupt: a run that analysed the inputs would name this file")
    code, out, err = run_cli(capsys, generator, "--input", folder, "--output", tmp_path / "o", *flags)
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1 and needle in lines[0], err
    assert "part0.npy" not in err and not (tmp_path / "o").exists()


def test_bpm_far_from_any_loop_warns_with_the_achieved_tempo(latents, tmp_path, capsys):
    folder, _ = latents
    top = 60 * SR / RATIO  # k = 1, the fastest loop
    code, out, err = run_cli(capsys, generator, "--input", folder, "--output", tmp_path, "--bpm", 1.04 * top)
    assert code == 0 and "warning" not in err  # within 5 % of k = 1
    assert json.loads(Path(out.split()[0]).with_suffix(".json").read_text())["generator"]["num_latents"] == 1
    code, out, err = run_cli(capsys, generator, "--input", folder, "--output", tmp_path / "a", "--bpm", 900)
    assert code == 0 and "warning" in err and f"{top / 2:.2f}" in err  # between k = 1 and 2: k = 2, 28 % off
    code, _, err = run_cli(capsys, generator, "--input", folder, "--output", tmp_path / "b", "--bpm", 120)
    assert code == 0 and "warning" not in err  # 120 BPM is reachable within 5 %


def test_swapper_steps_sets_the_length(latents, tmp_path, capsys):
    folder, _ = latents
    code, out, err = run_cli(capsys, generator, "--input", folder, "--output", tmp_path, "--pattern", "swapper",
                             "--num_latents", 4, "--swapper_steps", 1, "--embeddings")
    assert code == 0, err
    assert np.load(out.split()[0]).shape == (1, 6, 1 * 4 * 1)


# --- tempo ------------------------------------------------------------------------------------

def test_tempo_table_from_the_sidecars(latents, capsys):
    folder, _ = latents
    code, out, _ = run_cli(capsys, generator, "--input", folder, "--tempo_table")
    assert code == 0
    rows = {int(r.split()[0]): r.split()[1:] for r in out.splitlines() if r.strip()[:1].isdigit()}
    assert sorted(rows) == list(range(1, 65))
    assert rows[11] == ["117.45", "-"]  # 60 * 44100 / 2048 / 11, odd k: no double time
    assert rows[10] == [f"{60 * 44100 / 2048 / 10:.2f}", f"{120 * 44100 / 2048 / 10:.2f}"]


def test_tempo_table_follows_the_ratio_of_the_model(fixture_models, capsys):
    code, out, _ = run_cli(capsys, generator, "--tempo_table", "--model", fixture_models["stereo512"])
    assert code == 0 and "latent rate 93.7500 Hz" in out  # 48000 / 512
    code, out, _ = run_cli(capsys, generator, "--tempo_table", "--sample_rate", 44100, "--ratio", 512)
    assert "86.1328" in out


def test_bpm_picks_the_nearest_loop_length(latents, tmp_path, capsys):
    folder, _ = latents
    code, out, err = run_cli(capsys, generator, "--input", folder, "--bpm", 120, "--output", tmp_path, "--embeddings")
    assert code == 0, err
    # 60 * 21.533 / 120 = 10.77 frames: k = 11 gives 117.45 BPM, k = 10 129.20
    assert "k = 11" in err and "117.45 BPM" in err
    meta = json.loads(Path(out.split()[0]).with_suffix(".json").read_text())
    assert meta["generator"]["num_latents"] == 11 and abs(meta["generator"]["bpm"] - 117.4538) < 1e-3
    assert np.load(out.split()[0]).shape == (1, 6, 11)


def test_missing_rate_says_which_flag_to_pass(tmp_path, capsys):
    write_latents(tmp_path / "lat", corpus(sizes=(20,)), sidecar=False)
    code, _, err = run_cli(capsys, generator, "--input", tmp_path / "lat", "--output", tmp_path / "o")
    assert code == 2 and "--model" in err and "--sample_rate" in err and "--ratio" in err
    code, out, err = run_cli(capsys, generator, "--input", tmp_path / "lat", "--output", tmp_path / "o",
                             "--sample_rate", 48000, "--ratio", 1024)
    assert code == 0, err
    assert sf.info(out.split()[0]).samplerate == round(48000 / 1024)


# --- outputs ----------------------------------------------------------------------------------

def test_latent_wav_layout_sidecar_and_names(latents, tmp_path, capsys):
    folder, _ = latents
    code, out, err = run_cli(capsys, generator, "--input", folder, "--output", tmp_path / "o", "--num_latents", 7,
                             "--num_loops", 3, "--num_files", 2, "--seed", 5, "--distribution", "uniform")
    assert code == 0, err
    paths = [Path(p) for p in out.split()]
    assert [p.name for p in paths] == ["loop_uniform_k7_s5_000.wav", "loop_uniform_k7_s5_001.wav"]
    code, again, _ = run_cli(capsys, generator, "--input", folder, "--output", tmp_path / "d", "--num_latents", 7,
                             "--num_loops", 3, "--seed", 5, "--distribution", "uniform",
                             "--pattern", "default")  # UnRAVEl's name for loop
    assert code == 0 and Path(again.split()[0]).read_bytes() == paths[0].read_bytes()
    info = sf.info(str(paths[0]))
    assert (info.channels, info.frames, info.subtype, info.samplerate) == (6, 21, "FLOAT", round(SR / RATIO))
    data, _ = sf.read(str(paths[0]), dtype="float32")
    np.testing.assert_array_equal(data[:7], data[7:14])  # looped
    meta = json.loads(paths[0].with_suffix(".json").read_text())
    assert meta["latent_rate"] == SR / RATIO and meta["seed"] == 5 and meta["ratio"] == RATIO
    gen = meta["generator"]
    assert (gen["pattern"], gen["distribution"], gen["num_latents"], gen["num_loops"]) == ("loop", "uniform", 7, 3)
    assert not np.array_equal(data, sf.read(str(paths[1]), dtype="float32")[0])


def test_double_warns_about_pure_data(latents, tmp_path, capsys):
    folder, _ = latents
    code, out, err = run_cli(capsys, generator, "--input", folder, "--output", tmp_path, "--double")
    assert code == 0 and "Pure Data" in err
    assert sf.info(out.split()[0]).subtype == "DOUBLE"


def test_inputs_from_stdin_and_latent_wavs(latents, tmp_path, capsys, monkeypatch):
    folder, allz = latents
    wav = save_latent_wav(tmp_path / "w" / "x.wav", allz, SR, RATIO,
                          make_sidecar(sr=SR, ratio=RATIO, latent_dims=6, frames=allz.shape[1]))
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{wav}\n\n"))
    code, _, err = run_cli(capsys, generator, "--input", "-", "--output", tmp_path / "o")
    assert code == 0, err
    st = load_stats(tmp_path / "o" / "stats.json")
    assert st.frames == allz.shape[1] and st.sources == [str(wav)]
    np.testing.assert_allclose(st.mean, allz.astype(np.float64).mean(1), rtol=1e-9, atol=1e-12)


def test_outputs_inside_the_input_folder_are_not_reanalysed(latents, capsys):
    folder, allz = latents
    for again in ([], ["--force"]):
        code, _, err = run_cli(capsys, generator, "--input", folder, "--output", folder / "gen", "--embeddings", *again)
        assert code == 0, err
    assert load_stats(folder / "gen" / "stats.json").frames == allz.shape[1]


def test_a_second_run_into_the_same_folder_is_refused_unless_force(latents, tmp_path, capsys):
    folder, _ = latents
    args = ["--input", folder, "--output", tmp_path / "o", "--num_files", 2, "--plot"]
    code, out, err = run_cli(capsys, generator, *args)
    assert code == 0, err
    before = {p: p.read_bytes() for p in (tmp_path / "o").iterdir()}
    assert len(before) == 3 + 2 * 3  # stats.json, two stats plots; each pattern with its sidecar and plot
    (folder / "part1.npy").write_bytes(b"corrupt: a run that analysed the inputs would name this file")
    code, out, err = run_cli(capsys, generator, *args, "--seed", 0)
    lines = err.strip().splitlines()
    assert code == 1 and out == "" and len(lines) == 1, err
    assert f"{tmp_path / 'o' / 'stats.json'}: already exists (9 of the 9 files" in lines[0]
    assert "--force" in lines[0] and "--output" in lines[0] and "part1.npy" not in err
    assert {p: p.read_bytes() for p in (tmp_path / "o").iterdir()} == before
    # Another seed writes stats.json and its plots again: refused as well, naming the first.
    code, _, err = run_cli(capsys, generator, *args, "--seed", 1)
    assert code == 1 and "stats.json: already exists (3 of the 9" in err
    # --force redoes it (here failing on the corrupted input, which it now reads).
    code, _, err = run_cli(capsys, generator, *args, "--force")
    assert code == 1 and "part1.npy" in err


def test_default_output_folder_is_kept_and_not_overwritten(latents, tmp_path, capsys, monkeypatch):
    folder, _ = latents
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, generator, "--input", folder, "--embeddings")
    assert code == 0 and out.startswith("_generator-output/loop_normal_k10_s0_000.npy"), err
    code, out, err = run_cli(capsys, generator, "--input", folder, "--embeddings")
    assert code == 1 and "_generator-output/stats.json: already exists" in err


def test_output_that_is_an_input_is_refused_even_with_force(latents, tmp_path, capsys):
    folder, _ = latents
    gen = tmp_path / "gen"
    code, out, _ = run_cli(capsys, generator, "--input", folder, "--output", gen, "--embeddings")
    assert code == 0
    # Analyse a generated file into its own folder: its sidecar and itself would be rewritten.
    code, out, err = run_cli(capsys, generator, "--input", out.split()[0], "--output", gen, "--embeddings", "--force")
    assert code == 2 and "is one of the inputs" in err and len(err.strip().splitlines()) == 1, err


def test_unwritable_output_is_refused_before_reading(latents, tmp_path, capsys):
    folder, _ = latents
    (folder / "part0.npy").write_bytes(b"corrupt: a run that analysed the inputs would name this file")
    (tmp_path / "afile").write_text("x")
    code, _, err = run_cli(capsys, generator, "--input", folder, "--output", tmp_path / "afile" / "sub")
    assert code == 1 and "afile" in err and "part0.npy" not in err


def test_oversized_pattern_is_refused_with_its_size(latents, tmp_path, capsys):
    folder, _ = latents
    code, out, err = run_cli(capsys, generator, "--input", folder, "--pattern", "blender", "--num_latents", 64,
                             "--num_loops", 100, "--output", tmp_path)
    # (64 * 6 + 1) * 64 * 100 frames > the default --max_frames
    assert code == 2 and out == "" and str((64 * 6 + 1) * 64 * 100) in err


def test_plots_are_pngs(latents, tmp_path, capsys):
    folder, _ = latents
    code, out, err = run_cli(capsys, generator, "--input", folder, "--output", tmp_path, "--plot", "--iqr",
                             "--pattern", "fibo", "--num_latents", 8)
    assert code == 0, err
    for name in ("stats_distributions.png", "stats_correlation.png", Path(out.split()[0]).with_suffix(".png").name):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- reproducibility --------------------------------------------------------------------------

@pytest.mark.parametrize("pattern", ["loop", "fibo", "orale", "blender", "swapper"])
def test_same_seed_same_bytes_for_every_distribution(latents, tmp_path, capsys, pattern):
    folder, _ = latents
    run_cli(capsys, generator, "--input", folder, "--iqr", "--output", tmp_path / "s")
    stats = tmp_path / "s" / "stats.json"
    for dist in ("normal", "uniform", "iqr-uniform", "correlation-based"):
        outs = []
        for rep, seed in (("a", 9), ("b", 9), ("c", 10)):
            code, out, err = run_cli(capsys, generator, "--stats", stats, "--pattern", pattern, "--distribution", dist,
                                     "--num_latents", 3, "--num_loops", 2, "--num_files", 2, "--seed", seed,
                                     "--output", tmp_path / f"{pattern}{dist}{rep}")
            assert code == 0, err
            outs.append([Path(p).read_bytes() for p in out.split()])
        assert outs[0] == outs[1], f"{pattern}/{dist}: same seed, different files"
        assert outs[0] != outs[2], f"{pattern}/{dist}: seed ignored"


def test_file_i_does_not_depend_on_num_files(latents, tmp_path, capsys):
    folder, _ = latents
    _, one, _ = run_cli(capsys, generator, "--input", folder, "--output", tmp_path / "a", "--num_files", 1,
                        "--embeddings")
    _, three, _ = run_cli(capsys, generator, "--input", folder, "--output", tmp_path / "b", "--num_files", 3,
                          "--embeddings")
    assert Path(one.split()[0]).read_bytes() == Path(three.split()[0]).read_bytes()


# --- models -----------------------------------------------------------------------------------

def test_demo_flags_then_decoder(demo_model, tmp_path, capsys):
    """The Makefile's demo step: generate .npy from latents with a model, then decode them."""
    arrays = corpus(dims=8, sizes=(40, 60))
    write_latents(tmp_path / "lat", arrays)
    code, out, err = run_cli(capsys, generator, "--input", tmp_path / "lat", "--model", demo_model, "--num_latents", 11,
                             "--num_loops", 4, "--pattern", "loop", "--num_files", 2, "--output", tmp_path / "gen",
                             "--embeddings", "--seed", 1)
    assert code == 0, err
    assert len(out.split()) == 2 and all(np.load(p).shape == (1, 8, 44) for p in out.split())
    if not (ROOT / "decoder.py").exists():
        pytest.skip("decoder.py not there yet")
    import decoder

    assert decoder.main(["--model", str(demo_model), "--input", str(tmp_path / "gen"),
                         "--output", str(tmp_path / "audio")]) == 0
    assert len(list((tmp_path / "audio").rglob("*.wav"))) == 2


@real_models
def test_real_export_gives_rate_and_ratio(real_model, tmp_path, capsys):
    facts = export_facts(real_model)  # 2048 for v2, 512 for v2_small, 1024 for discrete
    arrays = corpus(dims=8, sizes=(30,))
    if facts["discrete"]:  # its latents are codes: give it codes
        rng = np.random.default_rng(0)
        arrays = [rng.integers(0, 8, (facts["latent_size"], 30)).astype(np.float32)]
    write_latents(tmp_path / "lat", arrays, sidecar=False)
    code, out, err = run_cli(capsys, generator, "--input", tmp_path / "lat", "--model", real_model,
                             "--output", tmp_path / "o", "--bpm", 90)
    assert code == 0, err
    meta = json.loads(Path(out.split()[0]).with_suffix(".json").read_text())
    assert (meta["sr"], meta["ratio"]) == (facts["sr"], facts["ratio"])
    assert meta["generator"]["num_latents"] == round(60 * facts["sr"] / facts["ratio"] / 90)


# --- Pure Data --------------------------------------------------------------------------------

def test_pure_data_reads_the_latent_wav_exactly(latents, tmp_path, capsys):
    if shutil.which("pd") is None:
        pytest.skip("Pure Data (`pd`) is not on PATH; install Debian's puredata-core to run this check")
    folder, _ = latents
    code, out, err = run_cli(capsys, generator, "--input", folder, "--output", tmp_path, "--num_latents", 4,
                             "--num_loops", 2, "--distribution", "uniform", "--seed", 2)
    assert code == 0, err
    wav = Path(out.split()[0])
    expected, _ = sf.read(str(wav), dtype="float32")  # (frames, dims)
    frames, dims = expected.shape
    assert np.abs(expected).max() > 1  # values beyond +-1 must survive too
    tables = " ".join(f"t{d}" for d in range(dims))
    lines = ["#N canvas 0 0 450 300 12;", "#X obj 10 10 loadbang;", f"#X msg 10 40 read -resize {wav} {tables};",
             "#X obj 10 70 soundfiler;", "#X obj 10 100 print frames;", "#X obj 10 130 t b b;",
             "#X msg 10 160 \\; pd quit;"]
    for d in range(dims):  # objects 6 + 3d: [table], [array get], [print]
        lines += [f"#X obj 200 {10 + 30 * d} table t{d};", f"#X obj 260 {10 + 30 * d} array get t{d};",
                  f"#X obj 360 {10 + 30 * d} print v{d};"]
    lines += ["#X connect 0 0 1 0;", "#X connect 1 0 2 0;", "#X connect 2 0 3 0;", "#X connect 2 0 4 0;",
              "#X connect 4 0 5 0;"]
    lines += [f"#X connect 4 1 {7 + 3 * d} 0;" for d in range(dims)]
    lines += [f"#X connect {7 + 3 * d} 0 {8 + 3 * d} 0;" for d in range(dims)]
    patch = tmp_path / "read_latents.pd"
    patch.write_text("\n".join(lines) + "\n")
    proc = subprocess.run(["timeout", "20", "pd", "-nogui", "-nosound", "-stderr", "-batch", "-open", str(patch)],
                          capture_output=True, text=True, timeout=30)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    assert "error" not in log.lower(), log
    assert f"frames: {frames}" in log, log
    printed = {}
    for line in log.splitlines():
        name, _, values = line.partition(":")
        if name.startswith("v") and name[1:].isdigit():
            printed[int(name[1:])] = np.array(values.split(), dtype=np.float64)
    assert sorted(printed) == list(range(dims)), log
    for d in range(dims):  # Pd prints 6 significant digits (%g)
        np.testing.assert_allclose(printed[d], expected[:, d], rtol=6e-6, atol=0)


def test_a_run_that_fails_part_way_leaves_nothing_that_refuses_the_next(latents, demo_model, tmp_path, capsys,
                                                                          monkeypatch):
    from ravekit.generate import pipeline

    folder, _ = latents
    out = tmp_path / "o"
    out.mkdir()
    (out / "mine.txt").write_text("a file of the user's, not of this run")
    real_write = pipeline.write_output
    monkeypatch.setattr(pipeline, "write_output", full_disk_at_call(real_write, 2))  # at the second file
    args = ["--input", folder, "--output", out, "--num_files", 3, "--plot", "--pd", "--model", demo_model]
    code, _, err = run_cli(capsys, generator, *args)
    assert code == 1 and "No space left" in err
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]  # stats.json, plots, file 0: gone
    monkeypatch.setattr(pipeline, "write_output", real_write)
    code, printed, err = run_cli(capsys, generator, *args)  # no --force needed
    assert code == 0, err
    assert len(printed.split()) == 3 and (out / "stats.json").exists() and (out / "mine.txt").exists()


def test_constant_dims_are_named_in_one_warning(tmp_path, capsys):
    z = np.random.default_rng(1).standard_normal((5, 40)).astype(np.float32)
    z[1], z[3] = 0.25, -2.0
    write_latents(tmp_path / "lat", [z])
    code, _, err = run_cli(capsys, generator, "--input", tmp_path / "lat", "--output", tmp_path / "o", "--embeddings")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "constant in" in line]
    assert warnings == ["generator.py: warning: latent dims 2 (0.25), 4 (-2) are constant in all inputs; "
                        "each is generated as that constant"]


def test_ctrl_c_says_what_is_left_and_leaves_nothing(latents, tmp_path, capsys, monkeypatch):
    from ravekit.generate import pipeline

    def interrupt(*_, **__):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "write_output", interrupt)
    code, _, err = run_cli(capsys, generator, "--input", latents[0], "--output", tmp_path / "o")
    assert code == 130 and not (tmp_path / "o").exists()  # its folder, made by this run, goes too
    assert err.strip().splitlines()[-1] == ("generator.py: error: interrupted; the files this run had written were "
                                            "removed, so running it again starts afresh")
