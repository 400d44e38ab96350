"""Rows 0..f-1 of the base for each Fibonacci f (1, 2, 3, 5, 8, ... <= k), all looped.

The base array ``(k, latent_dims)`` is read in growing prefixes whose lengths follow
the Fibonacci series: 1 (row 0), 2 (rows 0-1), 3 (rows 0-2), 5, 8, ... up to
the largest Fibonacci number not above ``k``; the concatenation is repeated
``num_loops`` times.  Output length: ``num_loops * sum(f <= k)`` frames (for
k = 11: 1+2+3+5+8 = 19 frames per loop).  Rows past the largest Fibonacci
number <= k are never heard: choose k = 8, 13, 21, 34, 55, ... to use them all.
"""

from __future__ import annotations

import numpy as np

NUM_BASES = 1


def fibonacci_lengths(k: int) -> list[int]:
    """Fibonacci numbers 1, 2, 3, 5, 8, ... not above ``k`` (the duplicate 1 dropped)."""
    out, a, b = [], 1, 2
    while a <= k:
        out.append(a)
        a, b = b, a + b
    return out


def output_frames(k: int, latent_dims: int, num_loops: int, **options) -> int:
    return sum(fibonacci_lengths(k)) * num_loops


def loop_boundaries(k: int, num_loops: int, **options) -> list[int]:
    starts, pos = [], 0
    for _ in range(num_loops):
        for f in fibonacci_lengths(k):
            starts.append(pos)
            pos += f
    return starts


def generate(bases: list[np.ndarray], num_loops: int, rng: np.random.Generator, stats, **options) -> np.ndarray:
    """Fibonacci prefixes of ``bases[0]``, looped -> ``(output_frames, latent_dims)``."""
    base = bases[0]
    one = np.concatenate([base[:f] for f in fibonacci_lengths(base.shape[0])], axis=0)
    return np.tile(one, (num_loops, 1))
