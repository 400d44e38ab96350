"""Recomputing a merged model's latent PCA from audio, as RAVE does after each validation epoch.

An export keeps ``latent_mean`` (the mean of the encoder's posterior means),
``latent_pca`` (the principal axes of those means, one per row, strongest
first) and ``fidelity`` (their cumulative explained variance), measured by
RAVE on its validation set.  ``encode`` keeps the first ``latent_size`` PCA
dims and ``decode`` fills the others with noise, so a merged encoder whose
strongest directions are not A's loses them.  Recomputed here from the
calibration audio, on the merged encoder; the latent size the export was
made with stays as it is.
"""

from __future__ import annotations

import torch

from ravekit.merging.activations import encoder_input


def posterior_means(model, audio: torch.Tensor) -> torch.Tensor:
    """The encoder's posterior means on ``audio``: ``(frames, full_latent_size)``, float64."""
    with torch.no_grad():
        z = model.encoder.forward(encoder_input(model, audio))
    mean = z[:, : z.shape[1] // 2]
    return mean.double().movedim(1, 0).reshape(mean.shape[1], -1).T


def recompute_latent_space(model, audio: torch.Tensor) -> float:
    """Overwrite ``latent_mean``, ``latent_pca`` and ``fidelity`` of ``model`` in place.

    Returns the fidelity of the exported latent dims (the share of the
    posterior means' variance they keep) under the new axes.
    """
    z = posterior_means(model, audio)
    mean = z.mean(0)
    centred = z - mean
    # Rows of vh are the principal axes, strongest first (what sklearn's PCA.components_ holds).
    _, s, vh = torch.linalg.svd(centred, full_matrices=True)
    var = torch.zeros(z.shape[1], dtype=torch.float64)
    var[: s.numel()] = s ** 2
    fidelity = torch.cumsum(var, 0) / var.sum().clamp_min(1e-300)
    live = model.state_dict()
    with torch.no_grad():
        live["latent_mean"].copy_(mean.to(live["latent_mean"].dtype))
        live["latent_pca"].copy_(vh.to(live["latent_pca"].dtype))
        live["fidelity"].copy_(fidelity.to(live["fidelity"].dtype))
    return float(fidelity[int(model.latent_size) - 1])
