"""Blends base A into base B one value at a time; each state looped num_loops times.

States: A itself, then A with its first value replaced by B's, then the
first two, ... until every value comes from B (the last state equals B).
Values are replaced in ``--blender_order``:

- ``forward``: frame 0 dim 0, frame 0 dim 1, ..., frame 0 last dim, frame 1 dim 0, ...
- ``invert``: the reverse (last frame's last dim first)
- ``mirror``: frames in order, dims from last to first
- ``mirror-invert``: frames from last to first, dims in order

Each state (``k`` frames) is repeated ``num_loops`` times, so the output has
``(k * latent_dims + 1) * k * num_loops`` frames: it grows with k squared; with
k = 64 and 16 dims that is 65 600 frames (51 minutes at 21.5 Hz) per loop.
"""

from __future__ import annotations

import numpy as np

NUM_BASES = 2
ORDERS = ("forward", "invert", "mirror", "mirror-invert")


def add_arguments(parser) -> None:
    parser.add_argument("--blender_order", default="forward", choices=ORDERS,
                        help="order in which A's values are replaced by B's")


def output_frames(k: int, latent_dims: int, num_loops: int, **options) -> int:
    return (k * latent_dims + 1) * k * num_loops


def replacement_order(k: int, latent_dims: int, order: str = "forward") -> list[tuple[int, int]]:
    """``(frame, dim)`` positions in the order their values are replaced."""
    frames = range(k - 1, -1, -1) if order == "mirror-invert" else range(k)
    dim_seq = range(latent_dims - 1, -1, -1) if order == "mirror" else range(latent_dims)
    pos = [(f, d) for f in frames for d in dim_seq]
    if order == "invert":
        pos.reverse()
    elif order not in ORDERS:
        raise ValueError(f"--blender_order {order!r}: choose one of {', '.join(ORDERS)}")
    return pos


def generate(bases: list[np.ndarray], num_loops: int, rng: np.random.Generator, stats,
             blender_order: str = "forward", **options) -> np.ndarray:
    """Blend ``bases[0]`` into ``bases[1]`` -> ``((k * latent_dims + 1) * k * num_loops, latent_dims)``."""
    a, b = bases
    k, dims = a.shape
    state = a.copy()
    out = np.empty((output_frames(k, dims, num_loops), dims), dtype=a.dtype)
    step = k * num_loops
    out[:step] = np.tile(state, (num_loops, 1))
    for i, (f, d) in enumerate(replacement_order(k, dims, blender_order), start=1):
        state[f, d] = b[f, d]
        out[i * step:(i + 1) * step] = np.tile(state, (num_loops, 1))
    return out
