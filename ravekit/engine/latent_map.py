"""A latent map from model A to model B, fitted on audio: ``z_B ~ W z_A + b`` (``decoder.py --map``).

Each model orders, scales and rotates its latent dims in its own way, so A's
latents fed to B's decoder mean nothing in particular to it.  Encoding the same
audio with both models and solving a ridge least-squares problem gives an
affine map from A's space to B's; B then plays what A heard.

Spaces.  A variational RAVE export (v1, v2, v3) encodes to all
``full_latent_size`` dims of its PCA space (the ``latent_pca``/``latent_mean``
buffers), then keeps the first ``latent_size``.  Where both models allow it
(:func:`full_space`) the map is fitted on the posterior means over all those
dims, deterministic, and its output feeds all of B's dims, which B then decodes
without noise.  On the trained pair this is what gets mapped transfer closest to
B's own resynthesis (see docs/decoder.md).  A map holds two fits:

``audio``   for audio inputs: A's full space (or its exported dims) -> B's;
``latents`` for latent inputs (``.npy``, latent WAV): A's ``latent_size``
            exported dims, all such files hold -> B's.

Other models (spherical, stereo-mode) use their exported dims, encoded with a
fixed seed.  Discrete models are refused: their latents are codebook indices.

The artefact is an ``.npz`` (:mod:`ravekit.engine.latent_map_file`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ravekit.engine.model import ModelInfo, RaveModel
from ravekit.engine.probes import cached
from ravekit.errors import RavekitError
from ravekit.io.audio import iter_audio, probe

FULL, EXPORTED = "full", "exported"
DEFAULT_RIDGE = 1e-3
# Frames per fitted parameter of each output dim under which a fit is called short (said, not refused).
SHORT_FRAMES_PER_PARAMETER = 5
# A variance-weighted R² below this, on held-out audio when given, is a poor fit (said, not refused).
POOR_R2 = 0.5


def check_mappable(info: ModelInfo, flag: str) -> None:
    """Refuse (exit 2) a discrete model: codes are indices into one codebook per dim, not a vector space."""
    if info.discrete:
        raise RavekitError(f"{flag} {Path(info.path).name} is a discrete model: its latents are codebook indices, "
                           "one codebook per dim, so no affine map between two models' codes means anything; "
                           "use raw transfer (no --map), or continuous models", 2)


def full_space(model: RaveModel) -> bool:
    """Whether ``model``'s posterior means over its full PCA space can be computed (:class:`MeanEncoding`).

    Checked, not assumed: the computation, with the model's own noise added
    from the same seed, must give its ``encode`` on a probe signal.  The answer
    is kept in the probe cache (:mod:`ravekit.engine.probes`), by the model's sha256.
    """

    return bool(cached(model, "latent_map.full_space", lambda: int(_check_full_space(model))))


def _check_full_space(model: RaveModel) -> bool:
    m, info = model.module, model.info
    try:
        if info.discrete or info.streaming or bool(m.stereo_mode) or str(m.input_mode) != "pqmf":
            return False
        if tuple(m.latent_pca.shape) != (info.full_latent_size, info.full_latent_size):
            return False
        x = 0.1 * torch.randn(1, info.n_channels, 4 * info.ratio, generator=torch.Generator().manual_seed(1))
        with torch.inference_mode(), torch.jit.optimized_execution(False):
            torch.manual_seed(7)
            exported = m.encode(x)
            torch.manual_seed(7)
            mean, std = _posterior(m, x)
            sampled = _rotate(m, torch.randn_like(mean) * std + mean)[:, :info.latent_size]
        return bool(torch.allclose(exported, sampled, atol=1e-4, rtol=1e-4))
    except Exception:  # noqa: BLE001 - any export this does not fit uses its exported dims
        return False


def _posterior(m, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The encoder's posterior mean and std before the PCA, as RAVE's ``reparametrize`` computes them."""
    h = m.pqmf(x.reshape(-1, 1, x.shape[-1]))
    h = m.encoder(h.reshape(x.shape[0], -1, h.shape[-1]))
    mean, scale = h.chunk(2, 1)
    return mean, torch.nn.functional.softplus(scale) + 1e-4


def _rotate(m, z: torch.Tensor) -> torch.Tensor:
    """Into the model's PCA space, all dims: what its ``encode`` does before keeping ``latent_size``."""
    return torch.nn.functional.conv1d(z - m.latent_mean.unsqueeze(-1), m.latent_pca.unsqueeze(-1))


class MeanEncoding(RaveModel):
    """``model`` whose ``encode`` gives posterior means over all ``full_latent_size`` PCA dims.

    Deterministic (no draw), so the same audio always maps the same way.  Its
    calls run in this process (``pool`` is None): helpers know only the models' own methods.
    """

    def __init__(self, model: RaveModel):
        super().__init__(model.module, model.info, model.device)
        self.pool = None

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), torch.jit.optimized_execution(False):
            return _rotate(self.module, _posterior(self.module, x.to(self.device))[0]).float()


@dataclass(frozen=True)
class Affine:
    """One fitted map: ``z_out = weight @ z_in + bias``, with the R² of every output dim.

    ``weight`` float64 ``(out_dims, in_dims)``; ``bias``, ``r2_fit`` float64
    ``(out_dims,)``; ``r2_holdout`` the same or None without held-out audio.
    """

    space_in: str
    space_out: str
    weight: np.ndarray
    bias: np.ndarray
    r2_fit: np.ndarray
    r2_holdout: np.ndarray | None = None

    @property
    def in_dims(self) -> int:
        return int(self.weight.shape[1])

    @property
    def out_dims(self) -> int:
        return int(self.weight.shape[0])

    def apply(self, z: np.ndarray) -> np.ndarray:
        """``(1, in_dims, frames)`` float32 -> ``(1, out_dims, frames)`` float32 (frame by frame, so any chunking)."""
        out = np.einsum("oi,bif->bof", self.weight, z.astype(np.float64)) + self.bias[None, :, None]
        return np.ascontiguousarray(out, dtype=np.float32)


def fit_affine(za: np.ndarray, zb: np.ndarray, ridge: float = DEFAULT_RIDGE) -> tuple[np.ndarray, np.ndarray]:
    """Ridge least squares ``zb ~ W za + b`` over frames.

    Parameters
    ----------
    za, zb : np.ndarray [shape=(in_dims, frames)] and [shape=(out_dims, frames)]
    ridge : the penalty on ``W``, relative to the mean variance of ``za``'s dims
        (so it does not depend on the latents' scale); the bias is not penalised.

    Returns
    -------
    weight : np.ndarray [shape=(out_dims, in_dims), dtype=float64]
    bias : np.ndarray [shape=(out_dims,), dtype=float64]
    """
    a, b = za.astype(np.float64).T, zb.astype(np.float64).T
    ma, mb = a.mean(0), b.mean(0)
    a, b = a - ma, b - mb
    gram = a.T @ a
    gram[np.diag_indices_from(gram)] += ridge * max(np.trace(gram) / len(gram), 1e-12)
    weight = np.linalg.solve(gram, a.T @ b).T
    return weight, mb - weight @ ma


def r_squared(weight: np.ndarray, bias: np.ndarray, za: np.ndarray, zb: np.ndarray) -> np.ndarray:
    """R² of every output dim: 1 - residual / variance (1 is perfect, 0 is no better than B's mean)."""
    pred = weight @ za.astype(np.float64) + bias[:, None]
    target = zb.astype(np.float64)
    var = ((target - target.mean(1, keepdims=True)) ** 2).sum(1)
    return 1 - ((target - pred) ** 2).sum(1) / np.maximum(var, 1e-20)


def weighted_r2(r2: np.ndarray, zb: np.ndarray) -> float:
    """R² of all output dims together: dims weighted by their variance (B's loud dims count most)."""
    var = zb.astype(np.float64).var(1)
    return float((r2 * var).sum() / max(var.sum(), 1e-20))


@dataclass
class Encoded:
    """One audio file encoded by both models for fitting: ``a``/``b`` full or exported, ``(dims, frames)``."""

    path: str
    sha256: str
    seconds: float
    a: np.ndarray
    b: np.ndarray


def encode_pair(files: Sequence[os.PathLike | str], encode_a: Callable, encode_b: Callable,
                read: Callable | None = None) -> list[Encoded]:
    """Encode every file with both models; ``encode_x(path, reading)`` returns ``(z, seconds, sha256)``.

    ``read(path)``, when given, reads a file once for both: a pair of
    ``reading`` (its ``(info, blocks)``, or None) as :func:`shared_reading`.
    Frames are matched one to one: the caller has checked that a frame lasts as long in both.
    """
    found = []
    for path in files:
        reading = read(path) if read is not None else (None, None)
        za, seconds, sha = encode_a(path, reading[0])
        zb = encode_b(path, reading[1])[0]
        n = min(za.shape[-1], zb.shape[-1])
        found.append(Encoded(str(path), sha, seconds, za[0, :, :n], zb[0, :, :n]))
    return found


# Files up to this long are read (and resampled) once for both models; longer ones once per model.
SHARED_READ_SECONDS = 600


def shared_reading(path: os.PathLike | str, sr: int) -> tuple:
    """The file's ``(info, blocks)`` twice over one read, at ``sr``, or ``(None, None)`` when it is long."""

    info = probe(path)
    if info.duration is None or info.duration > SHARED_READ_SECONDS:
        return None, None
    blocks = list(iter_audio(path, sr, info=info))
    return (info, iter(blocks)), (info, iter(blocks))
