"""stats.json: writing and validated reading of :class:`ravekit.generate.stats.Stats`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ravekit.errors import RavekitError
from ravekit.generate.stats import STATS_FORMAT, STATS_VERSION, Stats
from ravekit.io.files import read_json, write_json


def save_stats(path: os.PathLike | str, stats: Stats) -> Path:
    """Write ``stats`` as JSON (atomically)."""
    return write_json(path, stats.to_dict())


def _vector(data: dict, key: str, shape: tuple, path) -> np.ndarray:
    try:
        a = np.asarray(data[key], dtype=np.float64)
    except KeyError:
        raise RavekitError(f"{path}: no {key!r} in the statistics; write it again with generator.py") from None
    except (TypeError, ValueError):
        raise RavekitError(f"{path}: {key!r} is not a list of numbers; write it again with generator.py") from None
    if a.shape != shape or not np.isfinite(a).all():
        raise RavekitError(f"{path}: {key!r} should be {shape} finite numbers; write it again with generator.py")
    return a


def load_stats(path: os.PathLike | str) -> Stats:
    """Read statistics written by :func:`save_stats`, validating every array."""
    data = read_json(path)
    if data.get("format") != STATS_FORMAT:
        raise RavekitError(f"{path}: not a ravekit statistics file (format {data.get('format')!r}); "
                           "pass the stats.json that generator.py writes beside its outputs")
    if int(data.get("format_version", 1)) > STATS_VERSION:
        raise RavekitError(f"{path}: written by a newer ravekit; upgrade ravekit")
    dims = data.get("latent_dims")
    frames = data.get("frames")
    if not isinstance(dims, int) or dims < 1 or not isinstance(frames, int) or frames < 2:
        raise RavekitError(f"{path}: latent_dims/frames missing or invalid; write it again with generator.py")
    vec = {k: _vector(data, k, (dims,), path) for k in ("mean", "std", "min", "max")}
    mats = {k: _vector(data, k, (dims, dims), path) for k in ("cov", "corr")}
    stats = Stats(latent_dims=dims, frames=frames, sr=data.get("sr"), ratio=data.get("ratio"),
                  sources=list(data.get("sources") or []), source=str(path), **vec, **mats)
    if "median" in data:
        stats.median, stats.q1, stats.q3 = (_vector(data, k, (dims,), path) for k in ("median", "q1", "q3"))
    if data.get("discrete"):
        stats.codebook_size, stats.histograms = _histograms(data, dims, frames, path)
    return stats


def _histograms(data: dict, dims: int, frames: int, path) -> tuple[int, np.ndarray]:
    """``codebook_size`` and the ``(dims, codebook_size)`` code counts of discrete statistics, checked."""
    size = data.get("codebook_size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise RavekitError(f"{path}: discrete statistics without a valid codebook_size; "
                           "write it again with generator.py")
    counts = _vector(data, "histograms", (dims, size), path)
    if (counts < 0).any() or (counts != np.floor(counts)).any() or (counts.sum(axis=1) != frames).any():
        raise RavekitError(f"{path}: 'histograms' should hold whole counts summing to {frames} frames per dim; "
                           "write it again with generator.py")
    return size, counts.astype(np.int64)
