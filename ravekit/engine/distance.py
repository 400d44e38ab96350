"""How far a render is from its input: RAVE's multi-scale spectral distance, and loudness.

``spectral_distance`` is RAVE's ``AudioDistanceV1`` on ``MultiScaleSTFT``
(the loss its first training phase minimises, v2.gin's settings): for each
STFT size n in 2048, 1024, 512, 256, 128 (Hann window of n, hop n / 4,
centred, magnitude), the mean absolute difference of the log magnitudes
(epsilon 1e-7) plus the squared difference of the linear magnitudes
relative to the input's energy.  RAVE's loss sums the five sizes; here
their *mean* is reported (the sum divided by 5; docs/averager.md): 0 is a
perfect reconstruction, the trained plucks models score about 3.2, an
untrained export 5.6, white noise at 0.01 5.9.  The one distance of the
merge and transfer measurements.  Computed with torch only (no torchaudio),
in float64.
"""

from __future__ import annotations

import math

import numpy as np

SCALES = (2048, 1024, 512, 256, 128)
LOG_EPSILON = 1e-7


def _magnitudes(x, n: int):
    import torch

    window = torch.hann_window(n, dtype=torch.float64)
    return torch.stft(x, n, hop_length=n // 4, win_length=n, window=window, center=True,
                      pad_mode="reflect", return_complex=True).abs()


def spectral_distance(reference: np.ndarray, render: np.ndarray) -> float:
    """RAVE's ``AudioDistanceV1(reference, render)``, both mono or ``(channels, samples)``.

    The render is cut (or zero-padded) to the reference's length first, so a
    model's output padded to whole latent frames compares with its input.

    Parameters
    ----------
    reference : numpy.ndarray
        The input audio, ``(samples,)`` or ``(channels, samples)``.
    render : numpy.ndarray
        The model's output, same channels.

    Returns
    -------
    distance : float
        Mean over the STFT sizes of log-magnitude L1 plus relative linear-magnitude L2.
    """
    import torch

    ref = np.atleast_2d(np.asarray(reference, dtype=np.float64))
    out = np.atleast_2d(np.asarray(render, dtype=np.float64))
    n = ref.shape[-1]
    out = out[..., :n] if out.shape[-1] >= n else np.pad(out, [(0, 0), (0, n - out.shape[-1])])
    x, y = torch.from_numpy(ref), torch.from_numpy(out)
    total = 0.0
    for size in SCALES:
        mx, my = _magnitudes(x, size), _magnitudes(y, size)
        lin = float(((mx - my) ** 2).mean() / (mx ** 2).mean().clamp_min(1e-30))
        log = float((torch.log(mx + LOG_EPSILON) - torch.log(my + LOG_EPSILON)).abs().mean())
        total += lin + log
    return total / len(SCALES)


def loudness_db(x: np.ndarray) -> float:
    """RMS level in dB (full scale = 0 dB); -inf for silence."""
    rms = float(np.sqrt(np.mean(np.square(np.asarray(x, dtype=np.float64)))))
    return 20 * math.log10(rms) if rms > 0 else -math.inf
