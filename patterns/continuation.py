"""One unlooped stretch of k x num_loops frames: with --prior, one long continuation.

The single base is ``k * num_loops`` frames long (``base_frames``) and is
written as it is: nothing repeats.  With ``--prior`` it is the prior's own
continuation of its prompt; with statistics it is that many independent
draws.  ``k`` (``--num_latents`` or ``--bpm``) still sets the beat: the
continuation lasts ``num_loops`` beats of ``k`` frames, and ``--plot`` marks
every beat.
"""

from __future__ import annotations

import numpy as np

NUM_BASES = 1


def base_frames(k: int, num_loops: int, **options) -> int:
    return k * num_loops


def output_frames(k: int, latent_dims: int, num_loops: int, **options) -> int:
    return k * num_loops


def generate(bases: list[np.ndarray], num_loops: int, rng: np.random.Generator, stats, **options) -> np.ndarray:
    """``bases[0]`` ``(k * num_loops, latent_dims)`` as it is."""
    return bases[0]
