#!/usr/bin/env python3
"""Write the Pure Data abstractions in pd/ (latent-clock~, latent-player~, latent-xfade~ and their help).

The .pd files are committed; this script is their source, so the 16 outlets,
64 tables and the clock's expressions stay consistent.  Run it after editing:
  python tools/make_pd_abstractions.py            (writes pd/*.pd)
tests/test_pd_player.py checks that the committed files equal its output.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ravekit.puredata.file import Canvas

OUTLETS = 16  # dims the player and crossfader carry as outlets (latent sizes of RAVE exports are 4-16)
TABLES = 64  # soundfiler reads at most 64 channels
PD_DIR = Path(__file__).resolve().parents[1] / "pd"

# The clock, one fexpr~ evaluated per sample, every value an integer below 2^24 (exact in float32).
# State of the previous sample ($yN[-1]):
#   y1  (n + 1) mod R, so "y1[-1] == 0" is true exactly on samples n = 0, R, 2R, ... (frame boundaries)
#   y2  the frame being played (position in the pattern)
#   y3  the last restart request served, compared with the request counter $f7
#   y4, y5  the loop being played: [start, end); a new "loop" waits for the current one to wrap
#   y6  n mod R (samples into the frame), for [samphold~] in the crossfader
# Inlets: $f2 ratio R, $f3 tempo factor, $f4/$f5 requested loop, $f6 running, $f7 restart requests.
_WRAP = r"($f7 != $y3[-1] || ($f6 && ($y2[-1] + $f3 >= $y5[-1] || $y2[-1] + $f3 < $y4[-1])))"
_BOUNDARY = r"$y1[-1] == 0"
CLOCK_EXPRS = [
    r"if($y1[-1] + 1 >= $f2, 0, $y1[-1] + 1)",
    rf"if({_BOUNDARY}, if({_WRAP}, $f4, if($f6, $y2[-1] + $f3, $y2[-1])), $y2[-1])",
    rf"if({_BOUNDARY}, $f7, $y3[-1])",
    rf"if({_BOUNDARY} && {_WRAP}, $f4, $y4[-1])",
    rf"if({_BOUNDARY} && {_WRAP}, $f5, $y5[-1])",
    r"$y1[-1]",
]


def pd_expr(exprs: list[str]) -> str:
    """fexpr~ arguments in file syntax: ``$`` ``,`` ``;`` escaped."""
    body = " ; ".join(exprs).replace("$", "\\$").replace(",", " \\,").replace(";", "\\;")
    return " ".join(body.split())


def clock() -> Canvas:
    """[latent-clock~ R]: frame position and phase signals, exact in samples."""
    c = Canvas(760, 420)
    c.text(330, 10, "latent-clock~: see latent-player~-help.pd. Every change waits for the next frame "
                    "boundary: a multiple of R samples since the clock was created (or synced).")
    inlet = c.obj(10, 10, "inlet")
    route = c.obj(10, 40, "route start stop continue restart tempo loop sync ratio")
    fx = c.obj(10, 300, "fexpr~", pd_expr(CLOCK_EXPRS))
    out_pos, out_phase = c.obj(10, 360, "outlet~"), c.obj(300, 360, "outlet~")
    c.connect(inlet, 0, route, 0)
    c.connect(fx, 1, out_pos, 0)
    c.connect(fx, 5, out_phase, 0)
    count, plus = c.obj(10, 200, "f"), c.obj(50, 200, "+ 1")  # restart requests
    c.connect(count, 0, plus, 0)
    c.connect(plus, 0, count, 1)
    c.connect(count, 0, fx, 6)
    start = c.obj(10, 80, "t b b")
    on, off = c.msg(60, 110, "1"), c.msg(100, 110, "0")
    c.connect(route, 0, start, 0)
    c.connect(start, 1, on, 0)
    c.connect(start, 0, count, 0)
    c.connect(route, 1, off, 0)
    c.connect(route, 2, on, 0)
    c.connect(on, 0, fx, 5)
    c.connect(off, 0, fx, 5)
    c.connect(route, 3, count, 0)
    tempo, tmax = c.obj(140, 80, "int"), c.obj(140, 110, "max 1")
    c.connect(route, 4, tempo, 0)
    c.connect(tempo, 0, tmax, 0)
    c.connect(tmax, 0, fx, 2)
    loop = c.obj(200, 80, "unpack f f")
    lo, hi = c.obj(200, 110, "int"), c.obj(250, 110, "int")
    c.connect(route, 5, loop, 0)
    c.connect(loop, 0, lo, 0)
    c.connect(loop, 1, hi, 0)
    c.connect(lo, 0, fx, 3)
    c.connect(hi, 0, fx, 4)
    sync, clear = c.obj(300, 80, "t b b"), c.msg(300, 110, "clear")
    c.connect(route, 6, sync, 0)
    c.connect(sync, 1, clear, 0)
    c.connect(clear, 0, fx, 0)
    c.connect(sync, 0, count, 0)
    ratio, rmax = c.obj(380, 80, "int"), c.obj(380, 140, "max 1")
    c.connect(route, 7, ratio, 0)
    c.connect(ratio, 0, rmax, 0)
    c.connect(rmax, 0, fx, 1)
    bad = c.obj(480, 80, "print latent-clock~:\\ unknown\\ message")
    c.connect(route, 8, bad, 0)
    # Creation: ratio from the argument (an error without one), tempo 1, loop empty until a pattern is set.
    lb, init = c.obj(480, 140, "loadbang"), c.obj(480, 170, "t b b")
    arg, check = c.obj(480, 200, "f \\$1"), c.obj(480, 230, "moses 1")
    missing = c.msg(480, 260, "no ratio: give the model's ratio as argument (e.g. 2048)")
    err = c.obj(480, 290, "print latent-clock~")
    one = c.msg(620, 200, "1")
    c.connect(lb, 0, init, 0)
    c.connect(init, 1, one, 0)
    c.connect(one, 0, fx, 2)
    c.connect(init, 0, arg, 0)
    c.connect(arg, 0, check, 0)
    c.connect(check, 0, missing, 0)
    c.connect(missing, 0, err, 0)
    c.connect(check, 1, rmax, 0)
    return c


def player() -> Canvas:
    """[latent-player~ NAME R]: a latent WAV in tables NAME-d0 .. NAME-d63, played by [latent-clock~ R]."""
    c = Canvas(900, 520)
    c.text(400, 10, "latent-player~: see latent-player~-help.pd")
    inlet = c.obj(10, 10, "inlet")
    route = c.obj(10, 40, "route open sections section whole")
    clk = c.obj(10, 400, "latent-clock~ \\$2")
    c.connect(inlet, 0, route, 0)
    c.connect(route, 4, clk, 0)
    # open FILE: relative to the patch that holds this player (not to this abstraction's folder).
    where, trim = c.obj(10, 80, "list prepend dir 1"), c.obj(10, 110, "list trim")
    control = c.obj(10, 140, "pdcontrol")
    tables = " ".join(f"\\$1-d{d}" for d in range(TABLES))
    names = c.obj(10, 170, "list append", tables)
    read, trim2 = c.obj(10, 200, "list prepend read -resize"), c.obj(10, 230, "list trim")
    sfiler = c.obj(10, 260, "soundfiler")
    for a, b in ((where, trim), (trim, control), (control, names), (names, read), (read, trim2), (trim2, sfiler)):
        c.connect(a, 0, b, 0)
    # An absolute path (/..., \\..., C:...) is read as given: [pdcontrol] would prepend the folder.
    split, keep_rel, keep_abs = c.obj(150, 40, "t s s"), c.obj(150, 80, "symbol"), c.obj(230, 80, "symbol")
    chars, head = c.obj(230, 110, "list fromsymbol"), c.obj(230, 140, "list split 2")
    absolute = c.obj(230, 170, "expr \\$f1 == 47 || \\$f1 == 92 || \\$f2 == 58")
    which, short = c.obj(230, 200, "sel 0 1"), c.obj(330, 170, "t b")
    as_symbol = c.obj(150, 10, "symbol")  # [route] passes "open FILE" on as the message FILE
    c.connect(route, 0, as_symbol, 0)
    c.connect(as_symbol, 0, split, 0)
    c.connect(split, 1, keep_rel, 1)
    c.connect(split, 1, keep_abs, 1)
    c.connect(split, 0, chars, 0)
    c.connect(chars, 0, head, 0)
    c.connect(head, 0, absolute, 0)
    c.connect(head, 2, short, 0)
    c.connect(absolute, 0, which, 0)
    c.connect(which, 0, keep_rel, 0)
    c.connect(short, 0, keep_rel, 0)
    c.connect(which, 1, keep_abs, 0)
    c.connect(keep_rel, 0, where, 0)
    c.connect(keep_abs, 0, names, 0)
    loaded = c.obj(10, 290, "t f f f")
    c.connect(sfiler, 0, loaded, 0)
    whole = c.msg(10, 330, "loop 0 \\$1 \\, restart")  # a new file starts from its first frame, on the grid
    c.connect(loaded, 2, whole, 0)
    c.connect(whole, 0, clk, 0)
    length = c.obj(200, 330, "f")
    c.connect(loaded, 1, length, 1)
    info = c.obj(300, 260, "list split 2")
    chans = c.obj(300, 290, "unpack f f s")
    c.connect(sfiler, 1, info, 0)
    c.connect(info, 1, chans, 0)
    report = c.obj(120, 360, "pack f f")
    c.connect(loaded, 0, report, 0)
    c.connect(chans, 0, report, 1)
    said = c.msg(120, 390, "\\$1 frames of \\$2 dims")
    post = c.obj(120, 420, "print \\$1")
    c.connect(report, 0, said, 0)
    c.connect(said, 0, post, 0)
    # sections B0 B1 ... END: section n loops [Bn, Bn+1); whole loops the file.
    store, count, last = c.obj(450, 110, "list store"), c.obj(560, 80, "list length"), c.obj(560, 110, "- 2")
    c.connect(route, 1, store, 1)
    c.connect(route, 1, count, 0)
    c.connect(count, 0, last, 0)
    pick = c.obj(450, 50, "expr min(max(int(\\$f1) \\, 0) \\, \\$f2)")
    c.connect(route, 2, pick, 0)
    c.connect(last, 0, pick, 1)
    ok = c.obj(450, 80, "moses 0")
    c.connect(pick, 0, ok, 0)
    get = c.msg(500, 140, "get \\$1 2")
    c.connect(ok, 1, get, 0)
    c.connect(get, 0, store, 0)
    as_loop, trim3 = c.obj(450, 200, "list prepend loop"), c.obj(450, 230, "list trim")
    c.connect(store, 0, as_loop, 0)
    c.connect(as_loop, 0, trim3, 0)
    c.connect(trim3, 0, clk, 0)
    bang = c.obj(450, 170, "t b")
    c.connect(ok, 0, bang, 0)
    c.connect(bang, 0, length, 0)
    lb, none = c.obj(600, 10, "loadbang"), c.msg(600, 40, "-2")  # no sections yet: section n loops the whole file
    c.connect(lb, 0, none, 0)
    c.connect(none, 0, pick, 1)
    c.connect(route, 3, length, 0)
    whole_loop = c.msg(200, 360, "loop 0 \\$1")
    c.connect(length, 0, whole_loop, 0)
    c.connect(whole_loop, 0, clk, 0)
    tabs = Canvas(300, 200)
    for d in range(TABLES):
        tabs.obj(10 + 140 * (d // 16), 10 + 25 * (d % 16), f"table \\$1-d{d}")
    c.sub(300, 40, "tables", tabs)
    step = 50
    for d in range(OUTLETS):
        rd = c.obj(10 + step * d, 440 + 0 * d, f"tabread~ \\$1-d{d}")
        out = c.obj(10 + step * d, 480, "outlet~")
        c.connect(clk, 0, rd, 0)
        c.connect(rd, 0, out, 0)
    pos = c.obj(10 + step * OUTLETS, 480, "outlet~")
    c.connect(clk, 0, pos, 0)
    ctl = c.obj(10 + step * (OUTLETS + 1), 480, "outlet")
    msg_frames = c.msg(200, 300, "frames \\$1")
    msg_dims = c.msg(400, 320, "dims \\$1")
    c.connect(loaded, 0, msg_frames, 0)
    c.connect(chans, 0, msg_dims, 0)
    c.connect(msg_frames, 0, ctl, 0)
    c.connect(msg_dims, 0, ctl, 0)
    return c


def xfade() -> Canvas:
    """[latent-xfade~ R]: A * (1 - m) + B * m per dim, m changing only on frame boundaries."""
    c = Canvas(1000, 400)
    c.text(10, 360, "latent-xfade~: see latent-xfade~-help.pd")
    step = 30
    a_in = [c.obj(10 + step * d, 10, "inlet~") for d in range(OUTLETS)]
    b_in = [c.obj(10 + step * (OUTLETS + d), 10, "inlet~") for d in range(OUTLETS)]
    ctl = c.obj(10 + step * 2 * OUTLETS, 10, "inlet")
    route = c.obj(10 + step * 2 * OUTLETS, 40, "route a b sync")
    to_a, to_b = c.msg(10 + step * 2 * OUTLETS, 70, "0"), c.msg(50 + step * 2 * OUTLETS, 70, "1")
    ramp = c.obj(10 + step * 2 * OUTLETS, 100, "line~")
    clk = c.obj(120 + step * 2 * OUTLETS, 100, "latent-clock~ \\$1")
    hold = c.obj(10 + step * 2 * OUTLETS, 130, "samphold~")
    c.connect(ctl, 0, route, 0)
    c.connect(route, 0, to_a, 0)
    c.connect(route, 1, to_b, 0)
    c.connect(to_a, 0, ramp, 0)
    c.connect(to_b, 0, ramp, 0)
    c.connect(route, 2, clk, 0)
    c.connect(route, 3, ramp, 0)
    c.connect(ramp, 0, hold, 0)
    c.connect(clk, 1, hold, 1)  # n mod R drops on each frame boundary: samphold~ samples there
    lb, reset = c.obj(120 + step * 2 * OUTLETS, 40, "loadbang"), c.msg(120 + step * 2 * OUTLETS, 70, "reset")
    c.connect(lb, 0, reset, 0)
    c.connect(reset, 0, hold, 0)
    neg, one_minus = c.obj(10 + step * 2 * OUTLETS, 160, "*~ -1"), c.obj(10 + step * 2 * OUTLETS, 190, "+~ 1")
    c.connect(hold, 0, neg, 0)
    c.connect(neg, 0, one_minus, 0)
    for d in range(OUTLETS):
        x = 10 + step * 2 * d
        ma, mb, add = c.obj(x, 230, "*~"), c.obj(x, 260, "*~"), c.obj(x, 290, "+~")
        out = c.obj(x, 330, "outlet~")
        c.connect(a_in[d], 0, ma, 0)
        c.connect(one_minus, 0, ma, 1)
        c.connect(b_in[d], 0, mb, 0)
        c.connect(hold, 0, mb, 1)
        c.connect(ma, 0, add, 0)
        c.connect(mb, 0, add, 1)
        c.connect(add, 0, out, 0)
    return c


EXAMPLE = "example-pattern.wav"  # 8 dims x 16 frames, for the help patches; ratio 2048 at 44.1 kHz
EXAMPLE_RATIO = 2048


def example_pattern() -> None:
    """A small latent WAV (with sidecar) for the help patches: slow sines, so the position is audible."""
    import numpy as np

    from ravekit.io.latents import Latents, Sidecar, make_sidecar

    frames, dims = 16, 8
    t = np.arange(frames)[None, :]
    z = (1.5 * np.sin(2 * np.pi * t / frames * (1 + np.arange(dims)[:, None]))).astype(np.float32)
    meta = make_sidecar(sr=44100, ratio=EXAMPLE_RATIO, latent_dims=dims, frames=frames,
                        created_by="tools/make_pd_abstractions.py")
    Latents(z, Sidecar(meta)).save(PD_DIR / EXAMPLE, rate=round(44100 / EXAMPLE_RATIO))


def messages(c: Canvas, x: int, y: int, target: int, rows: list[tuple[str, str]]) -> None:
    """Message boxes with a comment each, all connected to ``target``."""
    for i, (msg, says) in enumerate(rows):
        c.connect(c.msg(x, y + 24 * i, msg), 0, target, 0)
        c.text(x + 150, y + 24 * i, says)


def help_player() -> Canvas:
    c = Canvas(1000, 760)
    c.text(10, 10, "[latent-player~ NAME RATIO] - plays a latent WAV (one channel per latent dim) as "
                   "step-held signals for [nn~ model.ts decode]")
    c.text(10, 32, "Each value is held for exactly RATIO samples of Pd's clock; frames begin on multiples of "
                   "RATIO samples since the player was created - the grid on which nn~ reads its inlets (the "
                   "last sample of each RATIO block). The clock counts samples so it never drifts.")
    c.text(10, 76, "Arguments: NAME names its tables NAME-d0 .. NAME-d63 (give each player its own) - RATIO is "
                   "the model's compression ratio (2048 for v1/v2 - 512 for v2_small - see inspector.py).")
    player = c.obj(10, 520, f"latent-player~ help {EXAMPLE_RATIO}")
    messages(c, 10, 110, player, [
        (f"open {EXAMPLE}", "read a latent WAV (relative to this patch) - restarts at frame 0 on the next frame"),
        ("start", "play from the loop's start at the next frame boundary"),
        ("stop", "freeze on the current frame (nn~ keeps decoding it)"),
        ("continue", "resume from the frozen frame"),
        ("restart", "jump to the loop's start at the next frame boundary"),
        ("tempo 2", "double time: step 2 frames per RATIO samples (exact when the loop length is even)"),
        ("tempo 1", "normal tempo"),
        ("loop 4 12", "loop frames 4 .. 11 - waits for the current loop to end (then start jumps now)"),
        ("whole", "loop the whole file (queued likewise)"),
        ("sections 0 4 8 16", "section boundaries - generator.py --pd sends the pattern's own"),
        ("section 1", "loop section 1 (frames 4 .. 7)"),
        ("sync", "reset the frame grid and restart - send [bufsize 4096( to nn~ at the same time"),
    ])
    c.text(10, 420, "Outlets 1-16: latent dims 1-16 (connect outlet d to nn~'s inlet d) - outlet 17: the frame "
                    "position as a signal (read more dims with [tabread~ NAME-d16]) - outlet 18: frames N and "
                    "dims C after each open.")
    c.text(10, 460, "Open the file with DSP off or before nn~ runs so both start on the same grid: nn~ counts "
                    "its blocks from its creation.")
    pos = c.obj(300, 580, "snapshot~")
    tick = c.obj(300, 550, "metro 50")
    c.connect(c.obj(300, 520 - 30, "loadbang"), 0, tick, 0)
    c.connect(tick, 0, pos, 0)
    c.connect(player, 16, pos, 0)
    c.connect(pos, 0, c.floatatom(300, 610, 5), 0)
    c.text(360, 610, "position")
    c.connect(player, 17, c.obj(500, 580, "print help-player"), 0)
    c.text(10, 650, "[nn~ your-model.ts decode] goes here: outlet 1 to inlet 1 ... for its latent_size inlets.")
    c.text(10, 680, "Pd must run at the model's sample rate: nn~ does not resample. At 48 kHz a 44.1 kHz model "
                    "plays 8.8 percent fast and about 1.5 semitones sharp.")
    return c


def help_xfade() -> Canvas:
    c = Canvas(1000, 560)
    c.text(10, 10, "[latent-xfade~ RATIO] - crossfades or switches between two latent players: out = A * (1 - "
                   "m) + B * m per dim. m changes only on frame boundaries so every output stays held RATIO samples.")
    c.text(10, 54, "Inlets 1-16: player A's dims - inlets 17-32: player B's dims - last inlet: m (0 = A - 1 = B) "
                   "or [a( [b( to switch - [1 4000( fades to B in 4 s - one step per frame. Outlets 1-16 to nn~.")
    c.text(10, 98, "For a discrete model (codes) switch only: a mix of two codes is no code.")
    a = c.obj(10, 300, f"latent-player~ help-a {EXAMPLE_RATIO}")
    b = c.obj(400, 300, f"latent-player~ help-b {EXAMPLE_RATIO}")
    lb = c.obj(10, 130, "loadbang")
    for player, init in ((a, f"open {EXAMPLE} \\, start"), (b, f"open {EXAMPLE} \\, tempo 2 \\, start")):
        m = c.msg(10 if player == a else 400, 160, init)
        c.connect(lb, 0, m, 0)
        c.connect(m, 0, player, 0)
    xf = c.obj(10, 400, f"latent-xfade~ {EXAMPLE_RATIO}")
    for d in range(OUTLETS):
        c.connect(a, d, xf, d)
        c.connect(b, d, xf, OUTLETS + d)
    for j, text in enumerate(("a", "b", "0.5", "1 4000", "0 4000")):
        c.connect(c.msg(600 + 60 * j, 360, text), 0, xf, 2 * OUTLETS)
    c.text(10, 440, "Players started at the same logical time stay in step: both count samples from their "
                    "creation. Here B plays the same pattern in double time.")
    c.text(10, 470, "[nn~ your-model.ts decode] goes here: outlet 1 to inlet 1 ...")
    return c


def help_clock() -> Canvas:
    c = Canvas(800, 300)
    c.text(10, 10, "[latent-clock~ RATIO] - the sample clock inside latent-player~ and latent-xfade~. Left "
                   "outlet: frame position (signal) - right outlet: samples into the frame (0 .. RATIO-1).")
    c.text(10, 54, "It takes the player's transport messages: start stop continue restart tempo N loop A B "
                   "sync ratio R - see latent-player~-help.pd.")
    clk = c.obj(10, 200, "latent-clock~ 2048")
    messages(c, 10, 90, clk, [("loop 0 8 \\, start", "loop frames 0-7"), ("stop", "freeze")])
    return c


ABSTRACTIONS = {"latent-clock~": clock, "latent-player~": player, "latent-xfade~": xfade}

HELP = {"latent-clock~": help_clock, "latent-player~": help_player, "latent-xfade~": help_xfade}


def main() -> int:
    PD_DIR.mkdir(exist_ok=True)
    for name, build in ABSTRACTIONS.items():
        (PD_DIR / f"{name}.pd").write_text(build().text_file())
    for name, build in HELP.items():
        (PD_DIR / f"{name}-help.pd").write_text(build().text_file())
    example_pattern()
    return 0


if __name__ == "__main__":
    sys.exit(main())
