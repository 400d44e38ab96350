"""generator.py --pd: a Pure Data patch that plays the generated latent WAVs through nn~.

The patch sits beside the WAVs and names them relative to itself, so the
folder can be moved.  It loads the first two patterns into two
``[latent-player~]`` (from the project's ``pd/`` folder, found through a
``[declare -path]`` to it), mixes them with ``[latent-xfade~]`` and feeds
``[nn~ MODEL decode]``.  Everything it needs comes from the WAVs' sidecars
(sr, ratio, frames, tempo) and the model: the WAV header's rounded rate is
never used, because the players count samples (``ratio`` per frame) in Pd's
own clock, as nn~ does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ravekit.io.files import atomic_write
from ravekit.puredata.file import Canvas, atom

# start-up: numpy (for sidecars) loads only where a patch is written; checking a request stays light.

_PACKAGE = Path(__file__).resolve().parents[1]
# The abstractions: pd/ in a checkout; an installed ravekit carries them as ravekit/_pd (pyproject.toml).
PD_DIR = _PACKAGE / "_pd" if (_PACKAGE / "_pd").is_dir() else _PACKAGE.parent / "pd"
OUTLETS = 16  # outlets of [latent-player~] and [latent-xfade~] (tools/make_pd_abstractions.py)
NN_BUFFER = 4096  # nn~'s default buffer; "sync" resets it with this size
XFADE_CONTROL = 2 * OUTLETS  # the crossfader's control inlet


def patch_name(pattern: str, distribution: str, iqr: bool, k: int, seed: int) -> str:
    """``PATTERN_DISTRIBUTION[_iqr]_kK_sSEED.pd``: one patch for all files of a run."""
    return f"{pattern}_{distribution}{'_iqr' if iqr else ''}_k{k}_s{seed}.pd"


def sections(module, k: int, num_loops: int, options: dict, frames: int) -> list[int]:
    """Loop-section boundaries of a pattern, ending with ``frames``: ``[0, b1, ..., frames]``.

    From the pattern's ``loop_boundaries`` when it defines one, else every
    ``k`` frames (one section per repetition of the base loop).
    """
    fn = getattr(module, "loop_boundaries", None)
    bounds = fn(k, num_loops, **options) if fn else range(0, frames, k)
    return sorted({0, *(int(b) for b in bounds if 0 < int(b) < frames)}) + [frames]


def rate_check(c: Canvas, x: int, y: int, sr: int, ratio: int, k: int) -> None:
    """Objects that show the tempo at Pd's sample rate and warn when it is not the model's."""
    lb, dsp = c.obj(x, y, "loadbang"), c.obj(x + 80, y, "r pd")
    on, sel = c.obj(x + 80, y + 25, "route dsp"), c.obj(x + 80, y + 50, "sel 1")
    rate = c.obj(x, y + 25, "samplerate~")
    bpm = c.obj(x, y + 100, f"expr 60 * $f1 / {ratio * k}".replace("$", "\\$"))
    shown = c.floatatom(x, y + 125, 8)
    c.text(x + 75, y + 125, "BPM at Pd's sample rate")
    differs = c.obj(x + 200, y + 100, f"!= {sr}")
    warn_when = c.obj(x + 200, y + 125, "sel 1")
    also = c.obj(x + 200, y + 150, "f")
    warning = c.msg(x + 200, y + 175, f"warning: Pd runs at \\$1 Hz but the model at {sr} Hz - nn~ does not "
                    f"resample so pitch and tempo move by \\$1/{sr} - set Pd to {sr} Hz (Media > Audio "
                    f"Settings or pd -r {sr}) and turn DSP on again")
    post = c.obj(x + 200, y + 200, "print latent-patch")
    c.connect(dsp, 0, on, 0)
    c.connect(on, 0, sel, 0)
    c.connect(sel, 0, rate, 0)
    c.connect(lb, 0, rate, 0)
    split = c.obj(x, y + 50, "t f f f")
    c.connect(rate, 0, split, 0)
    c.connect(split, 2, also, 1)
    c.connect(split, 1, bpm, 0)
    c.connect(bpm, 0, shown, 0)
    c.connect(split, 0, differs, 0)
    c.connect(differs, 0, warn_when, 0)
    c.connect(warn_when, 0, also, 0)
    c.connect(also, 0, warning, 0)
    c.connect(warning, 0, post, 0)


def build_patch(wavs: Sequence[Path], metas: Sequence[dict], model_file: str | os.PathLike, model,
                section_list: Sequence[int], pd_dir: Path = PD_DIR) -> Canvas:
    """The patch as a :class:`~ravekit.puredata.file.Canvas` (see :func:`write_patch`)."""
    meta = metas[0]
    sr, ratio, gen = int(meta["sr"]), int(meta["ratio"]), meta.get("generator") or {}
    k, dims = int(gen.get("num_latents", meta["frames"])), int(meta["latent_dims"])
    names = [Path(w).name for w in wavs]
    c = Canvas(1100, 720)
    c.declare(10, 10, "-path", atom(str(pd_dir)))
    c.text(10, 40, f"{names[0]}{' ... ' + names[-1] if len(names) > 1 else ''}: {gen.get('pattern', '?')} "
           f"patterns of {meta['frames']} frames x {dims} dims, loop k = {k} frames")
    double = gen.get("double_time_bpm")
    c.text(10, 62, f"made for {sr} Hz / ratio {ratio}: latent rate {sr / ratio:.6f} Hz - one loop of k frames = "
           f"{gen.get('bpm', 60 * sr / ratio / k):.2f} BPM"
           + (f" - tempo 2 (double time) = {double:.2f} BPM" if double else " - k is odd: tempo 2 skips unevenly"))
    c.text(10, 84, "Turn DSP on and listen. Pd must run at the model's sample rate (see the check on the right).")
    players = []
    loads = []
    for i, name in enumerate(("a", "b")):
        wav = names[min(i, len(names) - 1)]
        x = 10 + 330 * i
        loads.append(c.msg(x, 130, f"open {atom(wav)} \\, sections {' '.join(map(str, section_list))} \\, start"))
        players.append(c.obj(x, 430, f"latent-player~ {name} {ratio}"))
        c.connect(loads[-1], 0, players[-1], 0)
        c.text(x, 160, f"player {name}: choose a pattern")
        for j, other in enumerate(names[:8]):
            pick = c.msg(x + 10, 180 + 22 * j, f"open {atom(other)}")
            c.connect(pick, 0, players[-1], 0)
    lb = c.obj(10, 105, "loadbang")
    for m in loads:
        c.connect(lb, 0, m, 0)  # both start at the same logical time: the same frame boundary
    c.text(660, 130, "both players:")
    both = c.obj(660, 400, "t a a")
    for j, text in enumerate(("start", "stop", "continue", "tempo 1", "tempo 2", "whole")):
        c.connect(c.msg(660 + 70 * (j % 3), 150 + 25 * (j // 3), text), 0, both, 0)
    n_sections = len(section_list) - 1
    c.text(660, 205, f"section 0 .. {n_sections - 1}: loop one section (queued to the end of the current loop)")
    sec_box = c.floatatom(660, 250, 5)
    sec = c.msg(720, 250, "section \\$1")
    c.connect(sec_box, 0, sec, 0)
    c.connect(sec, 0, both, 0)
    for p in players:
        c.connect(both, 0, p, 0)
    xf = c.obj(10, 500, f"latent-xfade~ {ratio}")
    for d in range(OUTLETS):
        c.connect(players[0], d, xf, d)
        c.connect(players[1], d, xf, OUTLETS + d)
    discrete = bool(meta.get("discrete"))
    if discrete:  # a mix of two codes is no code: no fade is offered, and the text promises none
        c.text(660, 290, "switch a / b (on a frame boundary)")
        c.text(660, 310, "discrete codes: a or b only - they cannot fade, a mix of two codes is no code")
    else:
        c.text(660, 290, "mix a / b (changes land on frame boundaries); [1 4000( fades to b in 4 s")
    for j, text in enumerate(("a", "b") if discrete else ("a", "b", "0.5", "1 4000", "0 4000")):
        c.connect(c.msg(660 + 60 * j, 335, text), 0, xf, XFADE_CONTROL)
    inlets = min(dims, int(model.latent_size))
    nn = c.obj(10, 560, "nn~", atom(str(Path(model_file).resolve())), "decode", str(NN_BUFFER))
    for d in range(min(inlets, OUTLETS)):
        c.connect(xf, d, nn, d)
    for d in range(OUTLETS, inlets):  # beyond the crossfader's outlets: player a's tables directly
        extra = c.obj(200 + 60 * (d - OUTLETS), 530, f"tabread~ a-d{d}")
        c.connect(players[0], OUTLETS, extra, 0)
        c.connect(extra, 0, nn, d)
    sync = c.msg(660, 370, "sync")
    nn_sync = c.msg(720, 370, f"bufsize {NN_BUFFER}")
    c.connect(sync, 0, both, 0)
    c.connect(sync, 0, xf, XFADE_CONTROL)
    c.connect(sync, 0, nn_sync, 0)
    c.connect(nn_sync, 0, nn, 0)
    c.text(800, 370, "re-align players and nn~ after editing a running patch")
    gain = [c.obj(10 + 80 * ch, 620, "*~ 0.5") for ch in range(2)]
    stereo = int(getattr(model, "target_channels", 1)) >= 2
    c.connect(nn, 0, gain[0], 0)
    c.connect(nn, 1 if stereo else 0, gain[1], 0)
    dac = c.obj(10, 660, "dac~")
    c.connect(gain[0], 0, dac, 0)
    c.connect(gain[1], 0, dac, 1)
    vol = c.floatatom(200, 600, 5)
    c.text(250, 600, "volume 0-1")
    for g in gain:
        c.connect(vol, 0, g, 1)
    rate_check(c, 660, 450, sr, ratio, k)
    return c


def write_patch(path: Path, wavs: Sequence[Path], model_file: str | os.PathLike, model, section_list: Sequence[int],
                pd_dir: Path = PD_DIR) -> Path:
    """Write the patch for ``wavs`` (latent WAVs with sidecars, in ``path``'s folder) atomically.

    Parameters
    ----------
    path : pathlib.Path
        The ``.pd`` file to write.
    wavs : sequence of pathlib.Path
        The generated latent WAVs; the first two are loaded into players a and b.
    model_file : str or os.PathLike
        The model ``[nn~]`` loads (written as an absolute path).
    model : ravekit.engine.model.ModelInfo
        That model's facts (``latent_size``, ``target_channels``).
    section_list : sequence of int
        ``[0, b1, ..., frames]`` in latent frames, from :func:`sections`.
    pd_dir : pathlib.Path
        The folder holding the abstractions, written in ``[declare -path]``.

    Returns
    -------
    path : pathlib.Path
    """
    from ravekit.io.latents import Sidecar  # numpy: loaded only when a patch is written

    metas = [Sidecar.read(w).raw for w in wavs]
    text = build_patch(wavs, metas, model_file, model, section_list, pd_dir).text_file()
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_run_patch(output: Path, wavs: Sequence[Path], *, module, pattern: str, distribution: str, iqr: bool,
                    k: int, seed: int, num_loops: int, options: dict, model_file: str, model, warn, info) -> Path:
    """generator.py's hook: the patch for one run's WAVs, named by :func:`patch_name`."""
    from ravekit.io.latents import Sidecar  # numpy: loaded only when a patch is written

    frames = int(Sidecar.read(wavs[0]).raw["frames"])
    if not PD_DIR.is_dir():
        warn(f"{PD_DIR}: the Pd abstractions are missing; the patch will not find [latent-player~]")
    path = write_patch(output / patch_name(pattern, distribution, iqr, k, seed), wavs, model_file, model,
                       sections(module, k, num_loops, options, frames))
    info(f"Pure Data patch: {path} (open it in Pd and turn DSP on)")
    return path
