"""The base array looped num_loops times (k x num_loops frames)."""

from __future__ import annotations

import numpy as np

NUM_BASES = 1


def output_frames(k: int, latent_dims: int, num_loops: int, **options) -> int:
    return k * num_loops


def generate(bases: list[np.ndarray], num_loops: int, rng: np.random.Generator, stats, **options) -> np.ndarray:
    """``bases[0]`` ``(k, latent_dims)`` repeated ``num_loops`` times -> ``(k * num_loops, latent_dims)``."""
    return np.tile(bases[0], (num_loops, 1))
