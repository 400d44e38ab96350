"""Discrete latents: codebook indices, checked, counted and drawn.

A discrete RAVE export (``DiscreteScriptedRAVE``) encodes audio into integer
indices into its codebooks, ``0 .. codebook_size - 1``, one codebook per latent
dim, stored as float32 (exact for integers up to 2**24).  Indices are
categories: code 401 is no nearer to 402 than to 7, so nothing here ever
averages, shifts, rounds or interpolates them.  Per dim, the material is
summarised by a histogram (how often each code occurs), and new codes are
drawn from it.
"""

from __future__ import annotations

import os

import numpy as np

from ravekit.errors import RavekitError


def first_bad_code(x: np.ndarray, codebook_size: int | None) -> tuple[int, int, float] | None:
    """The first value of ``x`` that is not a code.

    A code is a whole number from 0 to ``codebook_size - 1`` (any whole number
    >= 0 when the size is unknown).  "First" is in time order: the earliest
    frame, then the lowest dim.

    Parameters
    ----------
    x : np.ndarray [shape=(latent_dims, frames)]
        Latents of a discrete model.
    codebook_size : int > 0 or None
        The model's codebook size; ``None`` when unknown.

    Returns
    -------
    found : tuple (frame, dim, value) or None
        0-based frame and dim of the first non-code and its value; ``None``
        when all values are codes.
    """
    bad = (x < 0) | (x != np.floor(x))
    if codebook_size is not None:
        bad |= x >= codebook_size
    if not bad.any():
        return None
    frame, dim = np.argwhere(bad.T)[0]
    return int(frame), int(dim), float(x[dim, frame])


def show(value: float) -> str:
    """A latent value as its float32 holds it: whole numbers in full, others to 7 digits (712.4, not 712.40002)."""
    if value == np.floor(value) and abs(value) < 1e9:
        return f"{value:.0f}"
    return f"{value:.7g}"


def valid_range(codebook_size: int | None) -> str:
    """``whole numbers 0 to 1023`` (or ``0 or more`` when the size is unknown)."""
    return f"whole numbers 0 to {codebook_size - 1}" if codebook_size else "whole numbers 0 or more"


def check_codes(x: np.ndarray, codebook_size: int | None, path: os.PathLike | str, whose: str, fix: str,
                exit_code: int = 1) -> None:
    """Raise one clear line for the first value of ``x`` that is not a code.

    Frames and dims are counted from 1 in the message.

    Parameters
    ----------
    x : np.ndarray [shape=(latent_dims, frames)]
        Latents of a discrete model.
    codebook_size : int > 0 or None
        The model's codebook size; ``None`` when unknown.
    path : str or os.PathLike
        The file ``x`` came from, named in the message.
    whose : str
        Names the codebook (``"model.ts"``, ``"the statistics"``).
    fix : str
        What to do, the end of the message.
    exit_code : int
        The :class:`~ravekit.errors.RavekitError`'s exit code.
    """
    found = first_bad_code(x, codebook_size)
    if found is None:
        return
    frame, dim, value = found
    raise RavekitError(f"{path}: value {show(value)} at frame {frame + 1}, dim {dim + 1} is not a code of {whose} "
                       f"(a discrete model takes {valid_range(codebook_size)}); {fix}", exit_code)


def histogram(x: np.ndarray, codebook_size: int) -> np.ndarray:
    """Counts of each code per dim.

    Parameters
    ----------
    x : np.ndarray [shape=(latent_dims, frames)]
        Codes (checked by :func:`check_codes`).
    codebook_size : int > 0

    Returns
    -------
    counts : np.ndarray [shape=(latent_dims, codebook_size), dtype=int64]
    """
    idx = x.astype(np.int64)
    return np.stack([np.bincount(row, minlength=codebook_size) for row in idx])


def probabilities(counts: np.ndarray, smoothing: float = 0.0) -> np.ndarray:
    """Per-dim code probabilities from counts.

    Parameters
    ----------
    counts : np.ndarray [shape=(latent_dims, codebook_size)]
        How often each code occurs in each dim (:func:`histogram`).
    smoothing : float >= 0
        A pseudo-count added to every code (additive, or Laplace,
        smoothing): 0 keeps to the codes found in the material, 1 gives every
        code of the codebook at least the weight of a code seen once.

    Returns
    -------
    prob : np.ndarray [shape=(latent_dims, codebook_size), dtype=float64]
        Each row sums to 1.
    """
    p = counts.astype(np.float64) + smoothing
    total = p.sum(axis=1, keepdims=True)
    if (total <= 0).any():
        raise RavekitError("a latent dim has no code counts at all; recompute the statistics")
    return p / total


def draw(prob: np.ndarray, frames: int, rng: np.random.Generator) -> np.ndarray:
    """Draw codes per dim from their probabilities.

    Inverse-CDF sampling from exactly ``frames x latent_dims`` uniforms, so the
    randomness used does not depend on the statistics.  A code of probability 0
    is never drawn.

    Parameters
    ----------
    prob : np.ndarray [shape=(latent_dims, codebook_size)]
        Per-dim code probabilities (:func:`probabilities`).
    frames : int >= 0
        Latent frames to draw.
    rng : np.random.Generator

    Returns
    -------
    codes : np.ndarray [shape=(frames, latent_dims), dtype=float32]
    """
    dims, size = prob.shape
    cdf = np.cumsum(prob, axis=1)
    u = rng.random((frames, dims)) * cdf[:, -1]
    # Rounding may leave u at the very top: fall back to the last code that can occur.
    last = size - 1 - np.argmax(prob[:, ::-1] > 0, axis=1)
    out = np.empty((frames, dims), dtype=np.float32)
    for d in range(dims):
        out[:, d] = np.minimum(np.searchsorted(cdf[d], u[:, d], side="right"), last[d])
    return out


def support(prob: np.ndarray) -> np.ndarray:
    """Uniform probabilities over the codes that can occur in each dim (``prob > 0``).

    Parameters
    ----------
    prob : np.ndarray [shape=(latent_dims, codebook_size)]

    Returns
    -------
    uniform : np.ndarray [shape=(latent_dims, codebook_size), dtype=float64]
    """
    mask = (prob > 0).astype(np.float64)
    return mask / mask.sum(axis=1, keepdims=True)
