"""3:1 scheme: the base three times then once varied, nested (64 k frames per loop).

Level 1 is ``[A, A, A, A']`` where ``A'`` is the base shifted by a random
offset per dim, uniform in ``+- amount * std`` (the robust std, IQR / 1.349,
with ``--iqr``; one offset for the whole
block, so the variation is a subtle change of colour, not noise).  Each
further level takes the previous block ``B`` and makes ``[B, B, B, B']`` the
same way.  With the default ``--orale_levels 3`` (as in UnRAVEl) one loop is
``4**3 * k = 64 k`` frames; the whole is repeated ``num_loops`` times, so the
output has ``4**levels * k * num_loops`` frames.

Codes of a discrete model cannot be shifted (code 401 is no nearer to 402
than to 7), so there ``A'`` recolours the block instead: in a random choice
of dims, each distinct code is replaced by a code drawn from that dim's
histogram (with ``--smoothing``), the same replacement wherever the code
occurs, so the block keeps its rhythm of repeated codes but changes its
colour.  ``--orale_amount`` sets how many dims: ``amount / 4`` of them
(rounded, at least one unless it is 0; 4 or more recolours every dim), matching the
continuous case where ``+- 4 std`` covers nearly all values.
"""

from __future__ import annotations

import numpy as np

NUM_BASES = 1


def add_arguments(parser) -> None:
    parser.add_argument("--orale_levels", type=int, default=3,
                        help="nesting depth of the 3:1 scheme (1: A A A A'; 2: 16 blocks; 3: 64 blocks)")
    parser.add_argument("--orale_amount", type=float, default=1.0,
                        help="size of each variation, in fitted standard deviations per dim (robust ones with --iqr)")


def check_options(orale_levels: int = 3, orale_amount: float = 1.0, **options) -> None:
    if orale_levels < 1:
        raise ValueError(f"--orale_levels {orale_levels}: must be 1 or more")
    if not np.isfinite(orale_amount):
        raise ValueError(f"--orale_amount {orale_amount}: must be a finite number")


def output_frames(k: int, latent_dims: int, num_loops: int, orale_levels: int = 3, **options) -> int:
    return 4 ** orale_levels * k * num_loops


def generate(bases: list[np.ndarray], num_loops: int, rng: np.random.Generator, stats,
             orale_levels: int = 3, orale_amount: float = 1.0, **options) -> np.ndarray:
    """Nested ``[B, B, B, B + offset]`` blocks of ``bases[0]`` -> ``(4**levels * k * num_loops, latent_dims)``."""
    if orale_levels < 1:
        raise ValueError(f"--orale_levels must be 1 or more, got {orale_levels}")
    if getattr(stats, "discrete", False):
        return _generate_codes(bases[0], num_loops, rng, stats, orale_levels, orale_amount)
    spread = orale_amount * np.asarray(stats.scale, dtype=np.float64)
    block = bases[0].astype(np.float64)
    for _ in range(orale_levels):
        offset = rng.uniform(-1.0, 1.0, size=block.shape[1]) * spread
        block = np.concatenate([block, block, block, block + offset], axis=0)
    return np.tile(block.astype(np.float32), (num_loops, 1))


def recolour(block: np.ndarray, rng: np.random.Generator, prob: np.ndarray, amount: float) -> np.ndarray:
    """``block`` (codes, ``(frames, latent_dims)``) with the codes of ``amount / 4`` of its dims replaced
    consistently."""
    dims = block.shape[1]
    count = 0 if amount == 0 else min(dims, max(1, round(dims * min(abs(amount), 4.0) / 4.0)))
    out = block.copy()
    for d in sorted(rng.choice(dims, size=count, replace=False)):
        codes, where = np.unique(block[:, d], return_inverse=True)
        new = rng.choice(prob.shape[1], size=codes.size, p=prob[d])
        out[:, d] = new[where.ravel()]
    return out


def _generate_codes(base: np.ndarray, num_loops: int, rng: np.random.Generator, stats, orale_levels: int,
                    orale_amount: float) -> np.ndarray:
    """The discrete form: ``[B, B, B, recoloured B]`` nested, every value a code."""
    prob = stats.code_probabilities()
    block = base
    for _ in range(orale_levels):
        block = np.concatenate([block, block, block, recolour(block, rng, prob, orale_amount)], axis=0)
    return np.tile(block, (num_loops, 1))
