"""``--sweep N``: the path from A to B, heard as N renders of merges evenly spaced between them.

Step ``k`` of ``N`` merges the two models with weights ``1 - k/(N-1)`` and
``k/(N-1)`` (with the run's ``--align``/``--repair``) and renders the
``--audio`` file through it with the run's seed.  The first and last steps
are A's and B's own renders, made from the parent files themselves.  Each
render is scored against the input (RAVE's spectral distance, loudness), and
the listening page plays them in order above a chart of both along the path.
"""

from __future__ import annotations

import html
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ravekit.errors import RavekitError

# start-up: averager.py names the sweep's outputs before any work; torch loads only to render them.


def check_sweep(steps: int | None, audio: str | None, n_models: int) -> None:
    """Refuse a sweep that cannot be made: fewer than 2 steps, no ``--audio``, or not two models."""
    if steps is None:
        return
    if steps < 2:
        raise RavekitError(f"--sweep {steps}: a sweep from A to B needs at least 2 steps (A and B themselves); "
                           "give --sweep 2 or more, e.g. --sweep 5", 2)
    if audio is None:
        raise RavekitError(f"--sweep {steps}: a sweep renders audio; give the file with --audio FILE", 2)
    if n_models != 2:
        raise RavekitError(f"--sweep {steps}: a sweep goes from one model to another; give exactly two --models "
                           f"(got {n_models})", 2)


def sweep_weights(steps: int) -> list[float]:
    """B's weight at each step: 0, 1/(N-1), ..., 1."""
    return [k / (steps - 1) for k in range(steps)]


def sweep_paths(audio: str | os.PathLike, merged: Path, steps: int) -> list[Path]:
    """``<audio stem>.<merged stem>.sweep<k>.wav`` beside the merged model, k = 0 .. N-1."""
    width = len(str(steps - 1))
    return [merged.parent / f"{Path(audio).stem}.{merged.stem}.sweep{k:0{width}d}.wav" for k in range(steps)]


def render_sweep(models: Sequence[Path], audio: Path, outputs: Sequence[Path],
                 merge: Callable[[list[float]], Any], seed: int | None, device: str,
                 warn: Callable[[str], None] | None = None, live: Any = None) -> None:
    """Render ``audio`` through every step; ``merge(weights)`` returns the merged module of a middle step.

    ``live`` (an ``engine.live.Live``, or None): render each step as nn~ plays it, as the other renders.

    Each middle step's model lives in a temporary folder only while it is rendered.
    """
    from ravekit.merging.audio import render_comparison
    from ravekit.merging.plan import save_module

    steps = len(outputs)
    for k, (t, out) in enumerate(zip(sweep_weights(steps), outputs)):
        if k in (0, steps - 1):
            render_comparison(audio, [models[0 if k == 0 else 1]], [out], seed, device, warn, live)
            continue
        with tempfile.TemporaryDirectory(prefix="ravekit-sweep-") as tmp:
            model = save_module(merge([1 - t, t]), Path(tmp) / f"sweep{k}.ts")
            render_comparison(audio, [model], [out], seed, device, warn, live)


def sweep_figures(audio: Path, renders: Sequence[Path]) -> list[tuple[float, float]]:
    """``(spectral distance to the input, loudness in dB)`` of each render, the input at the render's rate."""
    import numpy as np
    import soundfile as sf

    from ravekit.engine.distance import loudness_db, spectral_distance
    from ravekit.io.audio import read_audio

    figures = []
    for wav in renders:
        y, sr = sf.read(str(wav), dtype="float32", always_2d=True)
        x, _ = read_audio(audio, sr)
        x = x.mean(0)
        out = y.mean(1)
        figures.append((spectral_distance(x, out), loudness_db(out[: x.size] if out.size >= x.size else
                                                               np.pad(out, (0, x.size - out.size)))))
    return figures


def sweep_svg(weights: Sequence[float], figures: Sequence[tuple[float, float]], width: int = 1000,
              height: int = 260) -> str:
    """Inline SVG: distance to the input (green) and loudness (blue, dB) along the path, B's weight on x."""
    left, right, top, bottom = 50, 60, 12, 34
    pw, ph = width - left - right, height - top - bottom
    dist = [f[0] for f in figures]
    loud = [f[1] if f[1] > -200 else -200.0 for f in figures]

    def scale(values):
        lo, hi = min(values), max(values)
        return lo, (hi - lo) or 1.0

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
             'aria-label="spectral distance and loudness along the sweep">',
             f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#999"/>']
    for values, colour, side, unit in ((dist, "#2a7", left - 4, ""), (loud, "#36c", left + pw + 4, " dB")):
        lo, span = scale(values)
        points = " ".join(f"{left + pw * w:.1f},{top + ph * (1 - (v - lo) / span):.1f}"
                          for w, v in zip(weights, values))
        anchor = "end" if side < left else "start"
        parts += [f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>',
                  f'<text x="{side}" y="{top + 8}" font-size="10" fill="{colour}" text-anchor="{anchor}">'
                  f'{lo + span:.3g}{unit}</text>',
                  f'<text x="{side}" y="{top + ph}" font-size="10" fill="{colour}" text-anchor="{anchor}">'
                  f'{lo:.3g}{unit}</text>']
        for w, v in zip(weights, values):
            parts.append(f'<circle cx="{left + pw * w:.1f}" cy="{top + ph * (1 - (v - lo) / span):.1f}" r="3" '
                         f'fill="{colour}"><title>B weight {w:.3g}: {v:.3g}{unit}</title></circle>')
    for w in weights:
        parts.append(f'<text x="{left + pw * w:.1f}" y="{top + ph + 13}" font-size="10" text-anchor="middle">'
                     f'{w:.2g}</text>')
    parts.append(f'<text x="{left}" y="{height - 4}" font-size="10">weight of B (0 = A, 1 = B); green: spectral '
                 'distance to the input (RAVE\'s, lower is closer), blue: loudness (RMS, dB)</text></svg>')
    return "\n".join(parts)


def sweep_section(page: Path, weights: Sequence[float], readable: Sequence[Path], final: Sequence[Path],
                  audio: Path) -> str:
    """The listening page's sweep: players in order, then the chart, as HTML."""
    figures = sweep_figures(audio, readable)
    cards = []
    for w, path, (d, level) in zip(weights, final, figures):
        src = quote(os.path.relpath(path, page.parent).replace(os.sep, "/"))
        name = "A" if w == 0 else "B" if w == 1 else f"{1 - w:.2g} A + {w:.2g} B"
        cards.append(f'<div class="render" data-kind="sweep"><h2>{html.escape(name)}</h2>'
                     f'<audio controls preload="metadata" src="{html.escape(src)}"></audio>'
                     f'<div><code>{html.escape(path.name)}</code> distance {d:.3g}, {level:.1f} dB '
                     '<span class="state"></span></div></div>')
    return (f'<div class="chart"><h2>From A to B: {len(weights)} merges, in order</h2>'
            f'<div class="grid">{"".join(cards)}</div>{sweep_svg(weights, figures)}</div>')
