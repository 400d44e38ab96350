"""Aligning the latent dims: B's pre-PCA latent dims permuted and sign-flipped into A's.

Two encoders trained apart write their latent features in arbitrary order
and sign (the KL prior is symmetric, so ``z -> -z`` is a symmetry too).
Moving, consistently, row ``d`` of the encoder's last convolution (the mean
half with the sign, the scale half without), column ``d`` of the decoder's
first convolution (with the sign), and B's ``latent_mean`` entry and
``latent_pca`` column ``d`` leaves what B plays unchanged.  The matching is
by the correlation of the posterior means on the calibration audio: the
assignment maximises the summed absolute correlation, the sign of each pair's
correlation is the flip.
"""

from __future__ import annotations

import torch

from ravekit.merging.latent import posterior_means

ENCODER_OUT = "encoder.encoder.net.21.weight"
DECODER_IN = "decoder.net.0.weight"


def _last_encoder_conv(state: dict) -> str:
    return [k for k in state if k.startswith("encoder.encoder.net.") and k.endswith(".weight")][-1]


def _first_decoder_conv(state: dict) -> str:
    return [k for k in state if k.startswith("decoder.net.") and k.endswith(".weight")][0]


def latent_match(model_a, model_b, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(perm, sign)``: B's dim ``perm[i]`` times ``sign[i]`` lines up with A's dim ``i``."""
    from scipy.optimize import linear_sum_assignment

    za, zb = posterior_means(model_a, audio), posterior_means(model_b, audio)
    za = (za - za.mean(0)) / za.std(0).clamp_min(1e-12)
    zb = (zb - zb.mean(0)) / zb.std(0).clamp_min(1e-12)
    corr = za.T @ zb / za.shape[0]
    _, cols = linear_sum_assignment(corr.abs().numpy(), maximize=True)
    perm = torch.as_tensor(cols, dtype=torch.long)
    sign = torch.sign(corr[torch.arange(corr.shape[0]), perm])
    sign[sign == 0] = 1
    return perm, sign


def permute_latents(state: dict, perm: torch.Tensor, sign: torch.Tensor) -> dict:
    """The entries of ``state`` that a latent permutation and sign flip move, moved (new tensors)."""
    enc, dec = _last_encoder_conv(state), _first_decoder_conv(state)
    n = perm.numel()
    w = state[enc]
    mean, scale = w[:n].index_select(0, perm), w[n:].index_select(0, perm)
    mean = mean * sign.reshape(-1, 1, 1).to(w.dtype)
    d = state[dec].index_select(1, perm) * sign.reshape(1, -1, 1).to(state[dec].dtype)
    pca = state["latent_pca"].index_select(1, perm) * sign.reshape(1, -1).to(state["latent_pca"].dtype)
    lmean = state["latent_mean"].index_select(0, perm) * sign.to(state["latent_mean"].dtype)
    return {enc: torch.cat([mean, scale]), dec: d, "latent_pca": pca, "latent_mean": lmean}
