"""Tempo arithmetic of looped latent patterns.

A model emits ``sr / ratio`` latent frames per second (21.533 Hz at 44.1 kHz
with ratio 2048, 86.13 Hz with ratio 512): not an integer, so it is never
rounded here.  Looping ``k`` frames gives one quarter note per loop, that is
``60 * rate / k`` BPM, and "double time" (two beats per loop, ``2x`` that)
for even ``k``.

Throughout, ``sr`` is in Hz, ``ratio`` in samples per latent frame, ``k`` in
latent frames and tempi in BPM.  Standard library only: ``--tempo_table``
answers without numpy.
"""

from __future__ import annotations

import math

from ravekit.errors import RavekitError

TABLE_MAX_K = 64


def latent_rate(sr: float, ratio: float) -> float:
    """Latent frames per second, ``sr / ratio`` (Hz, not rounded)."""
    if not sr or sr <= 0 or not ratio or ratio <= 0:
        raise RavekitError(f"sample rate {sr} and ratio {ratio} must both be positive")
    return sr / ratio


def bpm_of(k: int, sr: float, ratio: float) -> float:
    """Quarter notes per minute when ``k`` latent frames make one beat."""
    if k < 1:
        raise RavekitError(f"a pattern length of {k} frames has no tempo; use --num_latents 1 or more", 2)
    return 60.0 * latent_rate(sr, ratio) / k


def double_time_of(k: int, sr: float, ratio: float) -> float | None:
    """Two beats per loop: ``2 * bpm_of(k)``, defined for even ``k`` only."""
    return 2.0 * bpm_of(k, sr, ratio) if k % 2 == 0 else None


def tempo_table(sr: float, ratio: float, k_max: int = TABLE_MAX_K) -> list[tuple[int, float, float | None]]:
    """``(k, bpm, double_time_bpm or None)`` for ``k = 1 .. k_max``."""
    return [(k, bpm_of(k, sr, ratio), double_time_of(k, sr, ratio)) for k in range(1, k_max + 1)]


def format_tempo_table(sr: float, ratio: float, k_max: int = TABLE_MAX_K) -> str:
    """The tempo table as aligned text, one ``k`` per line, with a header."""
    rate = latent_rate(sr, ratio)
    lines = [f"# sr {sr} Hz, ratio {ratio}: latent rate {rate:.4f} Hz", f"{'k':>4} {'bpm':>10} {'double':>10}"]
    for k, bpm, double in tempo_table(sr, ratio, k_max):
        lines.append(f"{k:>4} {bpm:>10.2f} {double:>10.2f}" if double else f"{k:>4} {bpm:>10.2f} {'-':>10}")
    return "\n".join(lines)


def nearest_k(bpm: float, sr: float, ratio: float) -> tuple[int, float]:
    """The loop length ``k`` whose tempo is nearest to ``bpm``, and that tempo.

    Returns
    -------
    k : int, at least 1
    achieved : float, ``bpm_of(k)`` in BPM
    """
    if not (bpm > 0 and math.isfinite(bpm)):
        raise RavekitError(f"--bpm {bpm}: give a positive tempo in beats per minute, e.g. --bpm 120", 2)
    exact = 60.0 * latent_rate(sr, ratio) / bpm
    candidates = {max(1, math.floor(exact)), max(1, math.ceil(exact))}
    # Nearest in BPM, not in frames: tempo is what the musician hears.
    k = min(sorted(candidates), key=lambda c: abs(bpm_of(c, sr, ratio) - bpm))
    return k, bpm_of(k, sr, ratio)
