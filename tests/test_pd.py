"""Pure Data: the pd/ abstractions played by a real, headless Pd, and the patch generator.py --pd writes.

The player tests record the abstractions' outlets with [tabwrite~] from the first DSP sample,
write them as a 32-bit float WAV with [soundfiler] and compare sample for sample with what nn~
needs: each latent value held for exactly `ratio` samples, frame boundaries on multiples of
`ratio` counted from DSP start.  nn~ itself is not installed here: the generated patch is checked
for every other object being created and for its [nn~] line and connections, as text.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_generator import latents  # noqa: F401 - the fixture is used by name

import generator
from conftest import ROOT, run_cli, save_latent_wav
from ravekit.engine.model import load_model
from ravekit.io.latents import make_sidecar
from ravekit.puredata.file import Canvas, atom

PD_DIR = ROOT / "pd"
needs_pd = pytest.mark.skipif(shutil.which("pd") is None,
                              reason="Pure Data (`pd`) is not on PATH; install Debian's puredata-core")


def run_pd(patch: Path, *extra: str, timeout: int = 30) -> str:
    """Pd's console (stdout + stderr) for a headless run; Pd exits 0 even on errors."""
    proc = subprocess.run(["timeout", str(timeout), "pd", "-nogui", "-nosound", "-stderr", "-batch", *extra,
                           "-open", str(patch)], capture_output=True, text=True, timeout=timeout + 10, check=False)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"pd did not finish (exit {proc.returncode}):\n{log}"
    return log


def record(tmp_path: Path, samples: int, players: dict[str, tuple[Path, int, str]], later: list[tuple[int, str, str]],
           xfade: bool = False) -> np.ndarray:
    """Play latent WAVs in [latent-player~]s and record ``samples`` samples of their outlets.

    ``players`` maps a name to (wav, ratio, messages sent at load); ``later`` holds
    (sample time, player name or "xfade", message) sent once DSP runs.  Returns float32
    ``(samples, channels)``: the 16 dim outlets and the position outlet of each player in
    order, then the crossfader's 16 outlets with ``xfade``.
    """
    c = Canvas()
    c.declare(10, 5, "-path", atom(str(PD_DIR)))
    lb, fire = c.obj(10, 30, "loadbang"), c.obj(10, 60, "t b b b")
    c.connect(lb, 0, fire, 0)
    objs, sources = {}, []
    for i, (name, (wav, ratio, init)) in enumerate(players.items()):
        objs[name] = c.obj(10 + 300 * i, 200, f"latent-player~ {name} {ratio}")
        c.connect(c.msg(10 + 300 * i, 100, f"open {atom(str(wav))} \\, {init}"), 0, objs[name], 0)
        c.connect(fire, 2, c.count - 1, 0)
        sources += [(objs[name], d) for d in range(17)]
    if xfade:
        a, b = objs["a"], objs["b"]
        objs["xfade"] = c.obj(10, 300, f"latent-xfade~ {players['a'][1]}")
        for d in range(16):
            c.connect(a, d, objs["xfade"], d)
            c.connect(b, d, objs["xfade"], 16 + d)
        sources += [(objs["xfade"], d) for d in range(16)]
    for when, target, message in later:
        delay = c.obj(600, 30, f"delay {when} 1 samp")
        c.connect(lb, 0, delay, 0)
        msg = c.msg(600, 60, message)
        c.connect(delay, 0, msg, 0)
        c.connect(msg, 0, objs[target], 32 if target == "xfade" else 0)
    names = []
    for i, (obj, outlet) in enumerate(sources):
        names.append(f"rec{i}")
        c.obj(800, 10 + 20 * i, f"table rec{i} {samples}")
        writer = c.obj(10 + 40 * i, 400, f"tabwrite~ rec{i}")
        c.connect(obj, outlet, writer, 0)
        c.connect(fire, 1, writer, 0)
    dsp = c.msg(200, 60, "\\; pd dsp 1")
    c.connect(fire, 0, dsp, 0)
    done, then = c.obj(400, 30, f"delay {samples + 256} 1 samp"), c.obj(400, 60, "t b b")
    c.connect(lb, 0, done, 0)
    c.connect(done, 0, then, 0)
    out = tmp_path / "recorded.wav"
    write = c.msg(400, 90, f"write -bytes 4 {atom(str(out))} {' '.join(names)}")
    c.connect(then, 1, write, 0)
    c.connect(write, 0, c.obj(400, 120, "soundfiler"), 0)
    c.connect(then, 0, c.msg(400, 150, "\\; pd quit"), 0)
    patch = tmp_path / "record.pd"
    patch.write_text(c.text_file())
    log = run_pd(patch)
    errors = [line for line in log.splitlines() if "error" in line.lower() or "couldn't create" in line]
    assert not errors, log
    data, _ = sf.read(str(out), dtype="float32", always_2d=True)
    assert data.shape == (samples, len(sources)), log
    return data


def held(z: np.ndarray, frames_at: np.ndarray) -> np.ndarray:
    """What the player must output: ``z[frame]`` for each sample's frame index (``(samples, dims)``)."""
    return z[frames_at]


@pytest.fixture
def pattern(latents, tmp_path, capsys):  # noqa: F811 - pytest fixture chaining
    """A generated latent WAV (6 dims, k = 4, 2 loops = 8 frames) and its values ``(frames, dims)``."""
    folder, _ = latents
    code, out, err = run_cli(capsys, generator, "--input", folder, "--output", tmp_path / "gen", "--num_latents", 4,
                             "--num_loops", 2, "--distribution", "uniform", "--seed", 5, "--num_files", 2)
    assert code == 0, err
    wavs = [Path(p) for p in out.split()]
    meta = json.loads(wavs[0].with_suffix(".json").read_text())
    return wavs, [sf.read(str(w), dtype="float32")[0] for w in wavs], meta["ratio"]


# --- the abstractions -------------------------------------------------------------------------

def test_committed_abstractions_equal_their_source():
    sys.path.insert(0, str(ROOT / "tools"))
    import make_pd_abstractions as make

    for name, build in make.ABSTRACTIONS.items():
        assert (PD_DIR / f"{name}.pd").read_text() == build().text_file(), \
            f"pd/{name}.pd is stale: run python tools/make_pd_abstractions.py"
        assert (PD_DIR / f"{name}-help.pd").is_file(), f"pd/{name}-help.pd is missing"


@needs_pd
def test_player_holds_each_value_ratio_samples_over_loops(pattern, tmp_path):
    wavs, values, ratio = pattern
    z = values[0]
    frames, dims = z.shape
    assert ratio == 2048 and frames == 8 and np.abs(z).max() > 1
    n = np.arange(frames * ratio * 5 // 2)  # two and a half loops
    rec = record(tmp_path, n.size, {"a": (wavs[0], ratio, "start")}, [])
    frame = (n // ratio) % frames
    np.testing.assert_array_equal(rec[:, :dims], held(z, frame))  # bit for bit, values beyond +-1 included
    np.testing.assert_array_equal(rec[:, dims:16], 0)  # dims the file lacks stay silent
    np.testing.assert_array_equal(rec[:, 16], frame)  # the position outlet


@needs_pd
def test_double_time_steps_two_frames_per_ratio_samples(pattern, tmp_path):
    wavs, values, ratio = pattern
    z = values[0]
    frames, dims = z.shape
    n = np.arange(frames * ratio * 2)  # four loops at double time
    rec = record(tmp_path, n.size, {"a": (wavs[0], ratio, "tempo 2 \\, start")}, [])
    frame = (2 * (n // ratio)) % frames  # frames 0 2 4 6 0 2 ..., each held a whole frame period
    np.testing.assert_array_equal(rec[:, :dims], held(z, frame))


@needs_pd
@pytest.mark.parametrize("ratio", [100, 2048])
def test_a_late_start_waits_for_the_frame_grid(tmp_path, ratio):
    """Start at an arbitrary time: playback begins on the next multiple of ratio since DSP start
    (the grid nn~ reads), whether or not ratio is a multiple of Pd's 64-sample block."""
    z = np.random.default_rng(1).uniform(-3, 3, (5, 3)).astype(np.float32)
    wav = save_latent_wav(tmp_path / "p.wav", z.T, 44100, ratio,
                          make_sidecar(sr=44100, ratio=ratio, latent_dims=3, frames=5))
    when = 64 * (5 * ratio // 2 // 64)  # mid-frame 2, on a block boundary (where Pd delivers messages)
    assert when % ratio
    n = np.arange(ratio * 14)
    rec = record(tmp_path, n.size, {"a": (wav, ratio, "stop")}, [(when, "a", "start")])
    first = -(-when // ratio)  # the first frame boundary after the message
    frame = np.maximum(n // ratio - first, 0) % 5
    np.testing.assert_array_equal(rec[:, :3], held(z, frame))


@needs_pd
def test_sections_loop_the_patterns_own_boundaries(pattern, tmp_path):
    wavs, values, ratio = pattern
    z = values[0]
    n = np.arange(ratio * 12)
    rec = record(tmp_path, n.size, {"a": (wavs[0], ratio, "sections 0 3 8 \\, section 1 \\, start")}, [])
    frame = 3 + (n // ratio) % 5  # section 1 is frames [3, 8)
    np.testing.assert_array_equal(rec[:, :z.shape[1]], held(z, frame))


@needs_pd
def test_crossfader_switches_on_a_frame_boundary_in_sync(pattern, tmp_path):
    wavs, values, ratio = pattern
    (za, zb), dims = values, values[0].shape[1]
    n = np.arange(ratio * 10)
    when = 3 * ratio + 300  # mid-frame: the switch must wait for frame 4
    rec = record(tmp_path, n.size, {"a": (wavs[0], ratio, "start"), "b": (wavs[1], ratio, "start")},
                 [(when, "xfade", "b")], xfade=True)
    frame = (n // ratio) % za.shape[0]
    np.testing.assert_array_equal(rec[:, 17:17 + dims], held(zb, frame))  # player b, in step with a
    mixed = np.where((n // ratio >= 4)[:, None], held(zb, frame), held(za, frame))
    np.testing.assert_array_equal(rec[:, 34:34 + dims], mixed)


# --- generator.py --pd ------------------------------------------------------------------------

def nn_line(patch: Path) -> tuple[int, str]:
    """The index and record of the patch's [nn~] object."""
    objects = [r for r in patch.read_text().splitlines() if re.match(r"#X (obj|msg|text|floatatom|restore) ", r)]
    hits = [(i, r) for i, r in enumerate(objects) if r.startswith("#X obj") and " nn~ " in r]
    assert len(hits) == 1, patch.read_text()
    return hits[0]


@pytest.mark.parametrize("model_name", ["demo", "stereo512"])
def test_pd_patch_opens_with_every_object_but_nn(latents, tmp_path, capsys, fixture_models, model_name):  # noqa: F811
    folder, _ = latents
    model = fixture_models[model_name]
    info = load_model(model, device="cpu", checksum=False).info
    code, out, err = run_cli(capsys, generator, "--input", folder, "--model", model, "--output", tmp_path / "o", "--pd",
                             "--num_latents", 4, "--num_loops", 3, "--num_files", 2, "--seed", 1)
    assert code == 0, err
    wavs = [Path(p) for p in out.split()]
    patch = tmp_path / "o" / "loop_normal_k4_s1.pd"
    assert f"Pure Data patch: {patch}" in err
    text = patch.read_text()
    index, line = nn_line(patch)
    assert line == f"#X obj 10 560 nn~ {atom(str(model.resolve()))} decode 4096;"
    inlets = min(6, info.latent_size)  # the corpus has 6 dims
    xfade = next(i for i, r in enumerate(r for r in text.splitlines() if re.match(r"#X (obj|msg|text|floatatom) ", r))
                 if "latent-xfade~" in r)
    feeds = sorted((int(i), int(s), int(o)) for s, o, i in re.findall(rf"#X connect (\d+) (\d+) {index} (\d+);", text))
    assert [f for f in feeds if f[0] != 0 or f[1] == xfade] == [(d, xfade, d) for d in range(inlets)]
    assert f"made for {info.sr} Hz / ratio {info.ratio}: latent rate {info.sr / info.ratio:.6f} Hz" in text
    assert "sections 0 4 8 12 \\, start" in text and f"latent-player~ a {info.ratio}" in text
    if shutil.which("pd") is None:
        pytest.skip("Pure Data (`pd`) is not on PATH; the patch was checked as text only")
    log = run_pd(patch, "-r", "44100", "-send", "pd quit")
    lines = log.splitlines()
    failed = [i for i, line in enumerate(lines) if "couldn't create" in line]
    assert len(failed) == 1 and f"nn~ {model.resolve()} decode" in lines[failed[0] - 1], log  # nn~ only
    assert not [line for line in log.splitlines() if line.startswith("error")], log
    for name in "ab"[:len(wavs)]:
        assert f"{name}: 12 frames of 6 dims" in log, log
    mismatch = "warning: Pd runs at 44100 Hz but the model at 48000 Hz"
    assert (mismatch in log) == (info.sr == 48000), log


def test_pd_flag_refusals(latents, tmp_path, capsys, demo_model):  # noqa: F811
    folder, _ = latents
    base = ["--input", folder, "--output", tmp_path / "o", "--pd"]
    for extra, says in (([], "--pd needs --model"), (["--model", demo_model, "--embeddings"], "leave out --embeddings"),
                        (["--model", demo_model, "--double"], "leave out --double")):
        code, _, err = run_cli(capsys, generator, *base, *extra)
        assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()
    code, _, err = run_cli(capsys, generator, *base, "--model", demo_model)
    assert code == 0, err
    (tmp_path / "o" / "stats.json").unlink()
    for wav in (tmp_path / "o").glob("*.wav"):
        wav.unlink()
        wav.with_suffix(".json").unlink()
    code, _, err = run_cli(capsys, generator, *base, "--model", demo_model)  # only the patch is left: still refused
    assert code == 1 and "loop_normal_k10_s0.pd: already exists" in err, err


def test_discrete_patch_offers_and_promises_no_fade(tmp_path, capsys, fixture_models):
    from conftest import save_npy

    model = fixture_models["discrete"]
    info = load_model(model, device="cpu", checksum=False).info
    codes = np.random.default_rng(0).integers(0, info.codebook_size, (1, info.latent_size, 40)).astype(np.float32)
    save_npy(tmp_path / "lat" / "codes.npy", codes,
             make_sidecar(sr=info.sr, ratio=info.ratio, latent_dims=info.latent_size, frames=40, discrete=True,
                          codebook_size=info.codebook_size))
    code, _, err = run_cli(capsys, generator, "--input", tmp_path / "lat", "--model", model, "--output",
                           tmp_path / "o", "--pd", "--num_latents", 4, "--num_files", 2)
    assert code == 0, err
    (patch,) = (tmp_path / "o").glob("*.pd")
    texts = re.findall(r"#X text \d+ \d+ (.*);", patch.read_text())
    assert not [t for t in texts if "fade" in t and "cannot fade" not in t], texts
    assert any("switch a / b" in t for t in texts)
    messages = re.findall(r"#X msg \d+ \d+ (.*);", patch.read_text())
    assert "1 4000" not in messages and "0.5" not in messages  # nothing that would mix two codes
