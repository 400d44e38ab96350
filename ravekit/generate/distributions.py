"""Synthetic latent frames drawn from fitted statistics.

Every sampler draws a fixed number of values from the generator it is given
(``frames x latent_dims`` standard normals or uniforms), whatever the statistics:
a constant dim does not change how much randomness is consumed, so outputs
stay reproducible from the seed alone.

Distributions (``iqr=True`` means the ``--iqr`` flag):

``normal``
    per dim, ``mean + std * N(0, 1)``; with ``iqr`` ``median + robust_std * N(0, 1)``.
``uniform``
    per dim, uniform on ``mean +- 3 std``; with ``iqr`` on the Tukey fences.
``iqr-uniform``
    per dim, uniform between the Tukey fences ``[Q1 - 1.5 IQR, Q3 + 1.5 IQR]``
    (with or without ``iqr``; same as ``uniform`` with ``iqr``).
``correlation-based``
    multivariate normal with the fitted mean and covariance; with ``iqr``
    centred on the median, with covariance ``robust_std * corr * robust_std``.
    A covariance that is not positive semi-definite (e.g. read from an
    edited stats file) is repaired by clipping negative eigenvalues to 0.

A constant dim (zero spread) yields its constant value: no NaN ever.

Discrete latents (codebook indices; :mod:`ravekit.io.codes`) have their own two:

``histogram`` (their default)
    per dim, codes drawn with the frequencies they have in the material
    (plus ``--smoothing`` pseudo-counts per code).
``uniform``
    per dim, every code that can occur (found in the material, or any code of
    the codebook with ``--smoothing`` > 0) equally likely.

The others describe continuous values (means, spreads, quartiles) and are
refused for codes, as ``histogram`` is for continuous latents.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ravekit.choices import DISCRETE_DISTRIBUTIONS, DISTRIBUTIONS
from ravekit.errors import RavekitError
from ravekit.generate.stats import Stats
from ravekit.io.codes import draw, support

PSD_TOLERANCE = 1e-10  # relative to the largest eigenvalue: below is rounding, not a broken matrix


def check_distribution(stats: Stats, distribution: str, iqr: bool, smoothing: float) -> None:
    """Refuse a distribution or flag that does not fit the kind of latents (exit code 2)."""
    where = stats.source or "the inputs"
    if stats.discrete:
        if distribution not in DISCRETE_DISTRIBUTIONS:
            raise RavekitError(f"--distribution {distribution}: {where} hold codes of a discrete model "
                               f"(codebook of {stats.codebook_size}), which have no mean or spread; use "
                               f"--distribution {' or '.join(DISCRETE_DISTRIBUTIONS)}", 2)
        if iqr:
            raise RavekitError(f"--iqr: {where} hold codes of a discrete model, which have no quartiles; "
                               "leave --iqr out", 2)
    else:
        if distribution == "histogram":
            raise RavekitError(f"--distribution histogram draws codes of a discrete model, but {where} hold "
                               "continuous latents; use normal, uniform, iqr-uniform or correlation-based", 2)
        if smoothing:
            raise RavekitError(f"--smoothing applies to codes of a discrete model, but {where} hold continuous "
                               "latents; leave --smoothing out", 2)


def needs_quartiles(distribution: str, iqr: bool) -> bool:
    """Whether sampling needs median / quartiles."""
    return iqr or distribution == "iqr-uniform"


def centre_and_scale(stats: Stats, iqr: bool) -> tuple[np.ndarray, np.ndarray]:
    """Where frames are centred and how far they spread.

    Parameters
    ----------
    stats : Stats
    iqr : bool
        Robust statistics (--iqr).

    Returns
    -------
    centre, scale : np.ndarray [shape=(latent_dims,)]
        ``(mean, std)`` or, with ``iqr``, ``(median, robust_std)``.
    """
    if iqr:
        median, _, _ = stats.quartiles()  # raises a clear error when there are no quartiles
        return median, stats.robust_std
    return stats.mean, stats.std


def psd_factor(cov: np.ndarray, warn: Callable[[str], None] | None = None) -> np.ndarray:
    """A matrix ``L`` with ``L @ L.T == cov``, repairing a non-PSD ``cov``.

    Uses the eigendecomposition rather than Cholesky, so singular covariances
    (constant or perfectly correlated dims) work; negative eigenvalues are
    clipped to 0 and, when they are more than rounding noise, ``warn`` says so.

    Parameters
    ----------
    cov : np.ndarray [shape=(latent_dims, latent_dims)]
        A covariance matrix.
    warn : callable(str) or None

    Returns
    -------
    L : np.ndarray [shape=(latent_dims, latent_dims)]
    """
    if not np.isfinite(cov).all():
        raise RavekitError("the covariance matrix holds NaN or infinite values; recompute the statistics")
    vals, vecs = np.linalg.eigh((cov + cov.T) / 2)
    scale = max(float(np.abs(vals).max()), 1e-300)
    if vals.min() < -PSD_TOLERANCE * scale and warn:
        bad = int((vals < -PSD_TOLERANCE * scale).sum())
        warn(f"the covariance matrix is not positive semi-definite ({bad} negative eigenvalue(s), "
             f"lowest {vals.min():.3g}); clipped them to 0 to sample from it")
    return vecs * np.sqrt(np.clip(vals, 0.0, None))


def sample(stats: Stats, distribution: str, frames: int, rng: np.random.Generator,
           iqr: bool = False, warn: Callable[[str], None] | None = None) -> np.ndarray:
    """Draw ``frames`` latent frames.

    Parameters
    ----------
    stats : Stats
        What the frames follow.
    distribution : str
        ``normal``, ``uniform``, ``iqr-uniform`` or ``correlation-based``
        for continuous latents; ``histogram`` or ``uniform`` for codes
        (:func:`check_distribution` says whether it fits, once per run).
    frames : int >= 0
        Latent frames to draw.
    rng : np.random.Generator
    iqr : bool
        Robust statistics (--iqr): median and ``robust_std`` instead of mean and std.
    warn : callable(str) or None
        Called when the covariance had to be repaired.

    Returns
    -------
    z : np.ndarray [shape=(frames, latent_dims), dtype=float32]
        Whole codes for discrete ``stats``.
    """
    dims = stats.latent_dims
    if stats.discrete:
        prob = stats.code_probabilities()
        return draw(prob if distribution == "histogram" else support(prob), frames, rng)
    if distribution == "normal":
        centre, scale = centre_and_scale(stats, iqr)
        out = centre + scale * rng.standard_normal((frames, dims))
    elif distribution in ("uniform", "iqr-uniform"):
        if iqr or distribution == "iqr-uniform":
            lo, hi = stats.lower_fence, stats.upper_fence
        else:
            lo, hi = stats.mean - 3 * stats.std, stats.mean + 3 * stats.std
        out = lo + (hi - lo) * rng.random((frames, dims))
    elif distribution == "correlation-based":
        if iqr:
            centre, scale = centre_and_scale(stats, iqr)
            cov = stats.corr * np.outer(scale, scale)
        else:
            centre, cov = stats.mean, stats.cov
        out = centre + rng.standard_normal((frames, dims)) @ psd_factor(cov, warn).T
    else:
        raise RavekitError(f"unknown distribution {distribution!r}; choose one of {', '.join(DISTRIBUTIONS)}", 2)
    out = out.astype(np.float32)
    if not np.isfinite(out).all():
        raise RavekitError("the statistics produce values beyond float32 range; check the stats file")
    return out
