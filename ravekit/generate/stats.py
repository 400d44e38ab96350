"""The statistics artefact: :class:`Stats` and its stats.json.

:class:`Stats` holds per-dim statistics of latent frames pooled over files
(computed by :func:`ravekit.generate.pooling.compute_stats`); patterns vary
by it and the plots draw it.  :func:`save_stats` writes it as the stats.json
generator.py leaves beside its outputs and :func:`load_stats` reads one back,
validating every array so a damaged or foreign file is refused by name.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ravekit.errors import RavekitError
from ravekit.io import formats
from ravekit.io.codes import probabilities
from ravekit.io.files import read_json, write_json

STATS_FORMAT = formats.STATS
STATS_VERSION = 1


@dataclass
class Stats:
    """Per-dim statistics of latent frames pooled over files.

    Arrays are float64: ``mean``, ``std``, ``min``, ``max`` and, when
    quartiles were computed, ``median``, ``q1``, ``q3`` have shape
    ``(latent_dims,)``; ``cov`` and ``corr`` ``(latent_dims, latent_dims)``.
    ``std`` and ``cov`` use ``ddof=1`` (``np.cov``'s default).  The
    correlation of a constant dim with any other is set to 0 (and 1 with
    itself), since it is undefined.

    Discrete latents have ``codebook_size`` and ``histograms``, int64
    ``(latent_dims, codebook_size)``: how often each code occurs in each dim.
    """

    latent_dims: int
    frames: int
    mean: np.ndarray
    std: np.ndarray
    cov: np.ndarray
    corr: np.ndarray
    min: np.ndarray
    max: np.ndarray
    median: np.ndarray | None = None
    q1: np.ndarray | None = None
    q3: np.ndarray | None = None
    sr: int | None = None
    ratio: int | None = None
    sources: list[str] = field(default_factory=list)
    source: str = ""  # where these statistics were read from (a JSON file) or ""
    robust: bool = False  # the run asked for robust statistics (--iqr); not saved, see ``scale``
    codebook_size: int | None = None
    histograms: np.ndarray | None = None
    smoothing: float = 0.0  # the run's --smoothing; not saved, see ``code_probabilities``
    # {"file", "sha256"} of the model that encoded every input (their sidecars agree), or None when unknown:
    # pooling (ravekit.generate.stats_pool) refuses statistics of two different models.
    model: dict | None = None

    @property
    def discrete(self) -> bool:
        """The latents are codebook indices of a discrete model."""
        return self.codebook_size is not None

    def code_probabilities(self) -> np.ndarray:
        """Per-dim code probabilities ``(latent_dims, codebook_size)``, with the run's ``smoothing``."""

        return probabilities(self._histograms(), self.smoothing)

    def _histograms(self) -> np.ndarray:
        if self.histograms is None:  # set together with codebook_size by compute_stats and load_stats
            raise ValueError("these statistics hold no code histograms: the latents are not discrete")
        return self.histograms

    @property
    def has_quartiles(self) -> bool:
        return self.median is not None

    @property
    def constant_dims(self) -> list[int]:
        return [int(d) for d in np.flatnonzero(self.max == self.min)]

    def require_quartiles(self) -> None:
        """Raise a clear error when no quartiles were computed (analysis without --iqr)."""
        self.quartiles()

    def quartiles(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(median, q1, q3)``, each ``(latent_dims,)``; a clear error when none were computed.

        Raises
        ------
        RavekitError
            The latents were analysed without --iqr.
        """
        if self.median is None or self.q1 is None or self.q3 is None:
            raise RavekitError(
                f"{self.source or 'these statistics'} hold no quartiles; analyse the latents with --iqr"
            )
        return self.median, self.q1, self.q3

    @property
    def iqr(self) -> np.ndarray:
        _, q1, q3 = self.quartiles()
        return q3 - q1

    @property
    def lower_fence(self) -> np.ndarray:
        """Tukey's lower fence ``Q1 - 1.5 IQR``."""
        return self.quartiles()[1] - 1.5 * self.iqr

    @property
    def upper_fence(self) -> np.ndarray:
        """Tukey's upper fence ``Q3 + 1.5 IQR``."""
        return self.quartiles()[2] + 1.5 * self.iqr

    @property
    def robust_std(self) -> np.ndarray:
        """``IQR / 1.349``: the std of a normal distribution with this IQR."""
        return self.iqr / 1.349

    @property
    def scale(self) -> np.ndarray:
        """The per-dim spread patterns vary by: ``robust_std`` when ``robust`` (--iqr), else ``std``."""
        return self.robust_std if self.robust else self.std

    def to_dict(self) -> dict:
        d = {
            "format": STATS_FORMAT, "format_version": STATS_VERSION,
            "latent_dims": self.latent_dims, "frames": self.frames, "files": len(self.sources),
            "sr": self.sr, "ratio": self.ratio,
            "mean": self.mean.tolist(), "std": self.std.tolist(), "min": self.min.tolist(),
            "max": self.max.tolist(), "cov": self.cov.tolist(), "corr": self.corr.tolist(),
            "constant_dims": self.constant_dims,
        }
        if self.has_quartiles:
            median, q1, q3 = self.quartiles()
            d.update(median=median.tolist(), q1=q1.tolist(), q3=q3.tolist(),
                     iqr=self.iqr.tolist(), lower_fence=self.lower_fence.tolist(),
                     upper_fence=self.upper_fence.tolist(), robust_std=self.robust_std.tolist())
        d["discrete"] = self.discrete
        if self.discrete:
            d.update(codebook_size=self.codebook_size, histograms=self._histograms().tolist())
        if self.model is not None:
            d["model"] = dict(self.model)
        d["sources"] = list(self.sources)
        return d


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


def _whole(data: dict, key: str, path, least: int, optional: bool = False) -> int | None:
    """``data[key]`` as a whole number of at least ``least`` (``None`` allowed when ``optional``)."""
    value = data.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        shown = json.dumps(value)
        raise RavekitError(f"{path}: {key!r} should be a whole number of at least {least}, not "
                           f"{shown if len(shown) <= 40 else shown[:37] + '...'}; write it again with generator.py")
    return value


def load_stats(path: os.PathLike | str) -> Stats:
    """Read statistics written by :func:`save_stats`, validating every field, so that a damaged, hand-edited
    or foreign file is refused by name, with the field that is wrong."""
    data = read_json(path)
    if data.get("format") != STATS_FORMAT:
        raise RavekitError(f"{path}: not a ravekit statistics file (format {str(data.get('format'))[:40]!r}); "
                           "pass the stats.json that generator.py writes beside its outputs")
    if (_whole(data, "format_version", path, 1, optional=True) or 1) > STATS_VERSION:
        raise RavekitError(f"{path}: written by a newer ravekit; upgrade ravekit")
    dims = _whole(data, "latent_dims", path, 1)
    frames = _whole(data, "frames", path, 2)
    assert dims is not None and frames is not None  # not optional
    sr, ratio = _whole(data, "sr", path, 1, optional=True), _whole(data, "ratio", path, 1, optional=True)
    sources = data.get("sources") or []
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise RavekitError(f"{path}: 'sources' should be a list of file names; write it again with generator.py")
    if not isinstance(data.get("discrete", False), bool):
        raise RavekitError(f"{path}: 'discrete' should be true or false; write it again with generator.py")
    mean, std, lo, hi = (_vector(data, k, (dims,), path) for k in ("mean", "std", "min", "max"))
    cov, corr = (_vector(data, k, (dims, dims), path) for k in ("cov", "corr"))
    # A spread below zero or a min above the max is no statistic of any latents: draws from it would be wrong.
    for what, bad in (("'std' holds a negative value", (std < 0).any()),
                      ("'min' is above 'max' in some dim", (lo > hi).any()),
                      ("'cov' has a negative variance on its diagonal", (np.diag(cov) < 0).any())):
        if bad:
            raise RavekitError(f"{path}: {what}; write it again with generator.py")
    stats = Stats(latent_dims=dims, frames=frames, mean=mean, std=std, cov=cov, corr=corr, min=lo, max=hi,
                  sr=sr, ratio=ratio, sources=list(sources), source=str(path))
    model = data.get("model")
    if model is not None and not (isinstance(model, dict) and all(isinstance(v, str) for v in model.values())):
        raise RavekitError(f"{path}: 'model' should be the file name and sha256 of a model; "
                           "write it again with generator.py")
    stats.model = model
    if "median" in data:
        stats.median, stats.q1, stats.q3 = (_vector(data, k, (dims,), path) for k in ("median", "q1", "q3"))
        if (stats.q1 > stats.q3).any():
            raise RavekitError(f"{path}: 'q1' is above 'q3' in some dim; write it again with generator.py")
    if data.get("discrete"):
        stats.codebook_size, stats.histograms = _histograms(data, dims, frames, path)
    return stats


def _histograms(data: dict, dims: int, frames: int, path) -> tuple[int, np.ndarray]:
    """``codebook_size`` and the ``(latent_dims, codebook_size)`` code counts of discrete statistics, checked."""
    size = data.get("codebook_size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise RavekitError(f"{path}: discrete statistics without a valid codebook_size; "
                           "write it again with generator.py")
    counts = _vector(data, "histograms", (dims, size), path)
    if (counts < 0).any() or (counts != np.floor(counts)).any() or (counts.sum(axis=1) != frames).any():
        raise RavekitError(f"{path}: 'histograms' should hold whole counts summing to {frames} frames per dim; "
                           "write it again with generator.py")
    return size, counts.astype(np.int64)
