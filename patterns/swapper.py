"""Swaps randomly picked values between bases A and B, step by step; A looped after each swap.

At each of ``--swapper_steps`` steps (default: k) one random position
(frame, dim) is picked with the seeded generator and the values of A and B
there are exchanged; the altered A (``k`` frames) is then repeated
``num_loops`` times.  Every output value is A's or B's value at the same
position (picking a position twice swaps it back).  Output length:
``steps * k * num_loops`` frames.
"""

from __future__ import annotations

import numpy as np

NUM_BASES = 2


def add_arguments(parser) -> None:
    parser.add_argument("--swapper_steps", type=int, default=None,
                        help="number of swaps, each followed by num_loops repeats (default: num_latents)")


def check_options(swapper_steps: int | None = None, **options) -> None:
    if swapper_steps is not None and swapper_steps < 1:
        raise ValueError(f"--swapper_steps {swapper_steps}: must be 1 or more (leave it out for num_latents)")


def output_frames(k: int, latent_dims: int, num_loops: int, swapper_steps: int | None = None, **options) -> int:
    return (k if swapper_steps is None else swapper_steps) * k * num_loops


def generate(bases: list[np.ndarray], num_loops: int, rng: np.random.Generator, stats,
             swapper_steps: int | None = None, **options) -> np.ndarray:
    """Progressive swaps between ``bases[0]`` and ``bases[1]`` -> ``(steps * k * num_loops, latent_dims)``."""
    a, b = (x.copy() for x in bases)
    k, dims = a.shape
    steps = k if swapper_steps is None else swapper_steps
    if steps < 1:
        raise ValueError(f"--swapper_steps must be 1 or more, got {steps}")
    frames = rng.integers(0, k, size=steps)
    cols = rng.integers(0, dims, size=steps)
    out = np.empty((steps * k * num_loops, dims), dtype=a.dtype)
    block = k * num_loops
    for i, (f, d) in enumerate(zip(frames, cols)):
        a[f, d], b[f, d] = b[f, d], a[f, d]
        out[i * block:(i + 1) * block] = np.tile(a, (num_loops, 1))
    return out
