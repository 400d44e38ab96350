"""PNG figures for ``generator.py --plot`` (matplotlib, Agg backend: no display needed).

The input's per-dim distributions are drawn from the fitted statistics, not
from the frames (which are never all held in memory): box plots when
quartiles are known (whiskers at the Tukey fences, clipped to min/max),
otherwise mean +- std bars with min/max marks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ravekit.generate.stats import Stats
from ravekit.io.files import atomic_path, write_error


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    """Lay out, write atomically as PNG, and close the figure (pyplot keeps open ones alive)."""
    plt = _pyplot()
    try:
        fig.tight_layout()
        with atomic_path(path) as tmp:
            try:
                fig.savefig(tmp, format="png", dpi=100)
            except OSError as exc:
                raise write_error(path, exc) from None
    finally:
        plt.close(fig)
    return path


def plot_distributions(stats: Stats, path: Path) -> Path:
    """Per-dim distribution of the analysed latents."""
    plt = _pyplot()
    dims = np.arange(1, stats.latent_dims + 1)
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * stats.latent_dims + 2), 4))
    if stats.has_quartiles:
        median, q1, q3 = stats.quartiles()
        boxes = [dict(med=median[d], q1=q1[d], q3=q3[d],
                      whislo=max(stats.lower_fence[d], stats.min[d]),
                      whishi=min(stats.upper_fence[d], stats.max[d]), fliers=[], label=str(d + 1))
                 for d in range(stats.latent_dims)]
        ax.bxp(boxes, showfliers=False)
        ax.set_title(f"{stats.frames} frames: median, quartiles, Tukey fences", fontsize="medium")
    else:
        ax.errorbar(dims, stats.mean, yerr=stats.std, fmt="o", capsize=3, label="mean +- std")
        ax.scatter(dims, stats.min, marker="_", color="gray", label="min / max")
        ax.scatter(dims, stats.max, marker="_", color="gray")
        ax.set_xticks(dims)
        ax.legend(loc="best", fontsize="small")
        ax.set_title(f"latent distributions ({stats.frames} frames)")
    ax.set_xlabel("latent dim")
    ax.set_ylabel("value")
    ax.grid(True, alpha=0.3)
    return _save(fig, path)


def plot_correlation(stats: Stats, path: Path) -> Path:
    """The correlation matrix across dims, -1 (blue) to 1 (red)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    im = ax.imshow(stats.corr, cmap="coolwarm", vmin=-1, vmax=1)
    ticks = np.arange(stats.latent_dims)
    ax.set_xticks(ticks, [str(t + 1) for t in ticks])
    ax.set_yticks(ticks, [str(t + 1) for t in ticks])
    ax.set_title("correlation between latent dims")
    fig.colorbar(im, ax=ax)
    return _save(fig, path)


def plot_pattern(array: np.ndarray, boundaries: Sequence[int], path: Path, title: str,
                 rate: float | None = None) -> Path:
    """Heatmap of a generated pattern, latent dims x time, sections marked.

    Parameters
    ----------
    array : np.ndarray [shape=(frames, latent_dims)]
        The pattern.
    boundaries : sequence of int
        Frames where sections start (lines drawn when there are at most 400).
    path : pathlib.Path
        The PNG to write.
    title : str
    rate : float > 0 or None
        Latent frames per second, for the axis label.

    Returns
    -------
    path : pathlib.Path
    """
    plt = _pyplot()
    frames, dims = array.shape
    fig, ax = plt.subplots(figsize=(10, max(3, 0.25 * dims + 1.5)))
    lim = float(np.abs(array).max()) or 1.0
    im = ax.imshow(array.T, aspect="auto", interpolation="nearest", cmap="coolwarm", vmin=-lim, vmax=lim,
                   extent=(0, frames, dims + 0.5, 0.5))
    # Hundreds of thousands of lines would hide the data: mark sections only when they are few.
    marks = [b for b in boundaries if 0 < b < frames]
    if len(marks) <= 400:
        for b in marks:
            ax.axvline(b, color="black", linewidth=0.6, alpha=0.6)
    ax.set_xlabel("latent frame" + (f" ({rate:.3f} per second)" if rate else ""))
    ax.set_ylabel("latent dim")
    ax.set_title(title)
    fig.colorbar(im, ax=ax)
    return _save(fig, path)
