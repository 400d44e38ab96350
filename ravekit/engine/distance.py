"""Multi-scale spectral distance between two signals, as RAVE's ``AudioDistanceV1``.

For each STFT size ``n`` in 2048, 1024, 512, 256, 128 (hop ``n / 4``, Hann
window, no centring, magnitudes): the relative squared error of the linear
magnitudes, ``mean((X - Y)^2) / mean(X^2)``, plus the mean absolute
difference of the log magnitudes (``log(|X| + 1e-7)``); summed over the sizes.
0 is identical audio; RAVE's reconstruction loss is this number.

Numpy only, so benchmarks and tools can use it without torch.
"""

from __future__ import annotations

import numpy as np

SIZES = (2048, 1024, 512, 256, 128)
LOG_EPSILON = 1e-7


def _magnitudes(x: np.ndarray, n: int) -> np.ndarray:
    """``|STFT|`` of every row of ``x`` ``(channels, samples)``: ``(channels, frames, n // 2 + 1)``."""
    hop = n // 4
    if x.shape[-1] < n:
        x = np.pad(x, ((0, 0), (0, n - x.shape[-1])))
    frames = 1 + (x.shape[-1] - n) // hop
    idx = np.arange(n)[None, :] + hop * np.arange(frames)[:, None]
    window = np.hanning(n + 1)[:-1].astype(np.float32)  # periodic, as torch.hann_window
    return np.abs(np.fft.rfft(x[:, idx] * window, axis=-1)).astype(np.float32)


def spectral_distance(target: np.ndarray, value: np.ndarray, sizes: tuple[int, ...] = SIZES) -> float:
    """The distance of ``value`` from ``target`` (not symmetric: the linear term is relative to ``target``).

    Parameters
    ----------
    target, value : np.ndarray [shape=(samples,) or (channels, samples)]
        Compared over their common length.

    Returns
    -------
    float
    """
    x = np.atleast_2d(np.asarray(target, np.float32))
    y = np.atleast_2d(np.asarray(value, np.float32))
    n = min(x.shape[-1], y.shape[-1])
    x, y = x[..., :n], y[..., :n]
    total = 0.0
    for size in sizes:
        mx, my = _magnitudes(x, size), _magnitudes(y, size)
        lin = float(np.mean((mx - my) ** 2) / max(float(np.mean(mx ** 2)), 1e-20))
        log = float(np.mean(np.abs(np.log(mx + LOG_EPSILON) - np.log(my + LOG_EPSILON))))
        total += lin + log
    return total
