"""The listening page of a merge: one offline HTML file beside the ``--audio`` renders.

It plays every render (A, B, ..., the merge and, with ``--align``, the
merge without alignment) side by side, each with its spectrogram, above a
chart of ``rel_dist`` per state_dict entry.  Everything is inline (CSS, a
few lines of JavaScript, spectrograms as PNG data URIs, the chart as SVG);
the ``<audio>`` elements point at the WAVs by relative name, so the folder
can be moved or copied as a whole and opened from disk, with no server.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from ravekit.io.files import atomic_write
from ravekit.merging.entries import EntryPlan

# Each audio element marks itself loaded or failed (data-state); a failed one
# says so on the page, e.g. when the page was copied without its WAVs.
_SCRIPT = """
for (const a of document.querySelectorAll('audio')) {
  const mark = (state, text) => {
    a.dataset.state = state;
    a.parentElement.querySelector('.state').textContent = text;
  };
  a.addEventListener('loadedmetadata', () => mark('ready', a.duration.toFixed(2) + ' s'));
  a.addEventListener('error', () => mark('error', 'cannot play ' + a.getAttribute('src') +
    ': keep it beside this page'));
  if (a.readyState >= 1) mark('ready', a.duration.toFixed(2) + ' s');
}
"""

_STYLE = """
body { font: 14px/1.4 sans-serif; margin: 1.5em; color: #222; background: #fafafa; }
h1 { font-size: 1.3em; margin: 0 0 .3em; } p.meta { color: #555; margin: 0 0 1em; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: 1em; }
.render { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .7em; }
.render h2 { font-size: 1.05em; margin: 0 0 .4em; } .render img { width: 100%; display: block; }
.render audio { width: 100%; margin-top: .4em; } .state { color: #666; font-size: .9em; }
.render[data-kind=merge] { border-color: #2a7; } .chart { margin-top: 1.5em; }
.chart svg { width: 100%; height: auto; background: #fff; border: 1px solid #ddd; }
"""


def listen_path(merged: Path) -> Path:
    """The page of the merged model ``NAME.ts``: ``NAME.listen.html`` beside it."""
    return merged.with_name(f"{merged.stem}.listen.html")


def spectrogram_png(wav: Path, width_px: int = 520, height_px: int = 220) -> str:
    """A log-magnitude spectrogram of ``wav`` (channels averaged) as a base64 PNG string.

    Drawn with matplotlib's Agg backend from a numpy STFT (2048-point Hann
    window, hop 512), dB relative to the file's peak, floored at -90 dB, so
    renders of one input compare by eye.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import soundfile as sf

    y, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    mono = y.mean(axis=1)
    n_fft, hop = 2048, 512
    if len(mono) < n_fft:
        mono = np.pad(mono, (0, n_fft - len(mono)))
    frames = np.lib.stride_tricks.sliding_window_view(mono, n_fft)[::hop]
    mag = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)).T
    db = 20 * np.log10(mag / (mag.max() + 1e-12) + 1e-12)
    fig = plt.figure(figsize=(width_px / 100, height_px / 100), dpi=100)
    ax = fig.add_axes((0.1, 0.17, 0.88, 0.78))
    ax.imshow(np.clip(db, -90, 0), origin="lower", aspect="auto", cmap="magma", vmin=-90, vmax=0,
              extent=(0, len(mono) / sr, 0, sr / 2000))
    ax.set_xlabel("s", fontsize=8)
    ax.set_ylabel("kHz", fontsize=8)
    ax.tick_params(labelsize=7)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def rel_dist_svg(plans: Sequence[EntryPlan], width: int = 1000, height: int = 240) -> str:
    """Inline SVG: one slot per entry, in state_dict order, as many as the report has rows.

    An entry whose ``rel_dist`` is known is a bar (green: merged, grey: kept
    from A); one without (zero elements, shapes differ, missing from a model)
    is a small hollow mark on the axis, so the chart counts what the report
    counts.  Each slot's tooltip names the entry, its rel_dist and why it was
    or was not merged; the y axis runs from 0 to the largest rel_dist.
    """
    rows: list[tuple[EntryPlan, float | None]] = []
    for p in plans:
        dists = [d for d in p.rel_dist[1:] if d is not None]
        rows.append((p, max(dists) if dists else None))
    left, bottom, top = 50, 20, 10
    known = [d for _, d in rows if d is not None]
    if not known:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} 40">'
                f'<text x="10" y="25">none of the {len(rows)} entries has a rel_dist (shapes differ or entries '
                'are missing)</text></svg>')
    peak = max(known) or 1.0
    plot_w, plot_h = width - left - 10, height - top - bottom
    step = plot_w / len(rows)
    without = len(rows) - len(known)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="rel_dist of each of the {len(rows)} entries">',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" stroke="#999"/>',
             f'<text x="{left - 4}" y="{top + 8}" font-size="10" text-anchor="end">{peak:.3g}</text>',
             f'<text x="{left - 4}" y="{top + plot_h}" font-size="10" text-anchor="end">0</text>',
             f'<text x="{left}" y="{height - 4}" font-size="10">all {len(rows)} entries in state_dict order, as in '
             'the report (green: merged, grey: kept from A'
             + (f'; {without} hollow: no rel_dist' if without else '') + ')</text>']
    for i, (p, d) in enumerate(rows):
        x, w = left + i * step, max(step * 0.85, 0.5)
        if d is None:
            tip = html.escape(f"{p.name}: no rel_dist, {p.reason}")
            parts.append(f'<rect x="{x:.2f}" y="{top + plot_h - 3:.2f}" width="{w:.2f}" height="3" fill="none" '
                         f'stroke="#aaa" stroke-width="0.5" data-rel-dist="none"><title>{tip}</title></rect>')
            continue
        h = plot_h * d / peak
        colour = "#2a7" if p.merged else "#aaa"
        tip = html.escape(f"{p.name}: rel_dist {d:.4g}, {p.reason}")
        parts.append(f'<rect x="{x:.2f}" y="{top + plot_h - h:.2f}" width="{w:.2f}" '
                     f'height="{h:.2f}" fill="{colour}"><title>{tip}</title></rect>')
    parts.append("</svg>")
    return "\n".join(parts)


def write_listening_page(path: os.PathLike | str, renders: Sequence[tuple[str, Path, Path]],
                         plans: Sequence[EntryPlan], audio: os.PathLike | str, title: str,
                         extra: str = "") -> Path:
    """Write the page atomically.

    ``renders``: ``(label, readable wav, final wav)`` per render; the
    spectrogram is read from the readable file (the staged one while the
    output set is being written), the ``<audio>`` src is the final file's
    path relative to the page's folder.  ``extra``: HTML placed after the
    renders (the ``--sweep`` section).
    """
    page = Path(path)
    cards = []
    for label, readable, final in renders:
        src = quote(os.path.relpath(final, page.parent).replace(os.sep, "/"))
        kind = "merge" if "merge" in label else "parent"
        cards.append(
            f'<div class="render" data-kind="{kind}"><h2>{html.escape(label)}</h2>'
            f'<img alt="spectrogram of {html.escape(final.name)}" '
            f'src="data:image/png;base64,{spectrogram_png(readable)}">'
            f'<audio controls preload="metadata" src="{html.escape(src)}"></audio>'
            f'<div><code>{html.escape(final.name)}</code> <span class="state"></span></div></div>')
    text = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{_STYLE}</style></head>
<body><h1>{html.escape(title)}</h1>
<p class="meta">{html.escape(Path(audio).name)} through each model with the same seed; spectrograms in dB
relative to each file's peak.</p>
<div class="grid">
{chr(10).join(cards)}
</div>
{extra}
<div class="chart"><h2>rel_dist per entry: ||A - X|| / ||A||, largest over the other models</h2>
{rel_dist_svg(plans)}
</div>
<script>{_SCRIPT}</script>
</body></html>
"""
    return atomic_write(page, lambda tmp: tmp.write_text(text, encoding="utf-8"))
