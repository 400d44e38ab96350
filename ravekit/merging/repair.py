"""REPAIR for merged RAVE models: give every hidden channel back its parents' spread.

Averaging two networks, even aligned ones, shrinks the spread of each
hidden channel layer after layer (Jordan et al. 2023, "REPAIR: REnormalizing
Permuted Activations for Interpolation Repair"): RAVE's decoder then drives
its amplitude and noise gates toward silence.  REPAIR measures each
channel's statistics in every parent on a few seconds of audio and corrects
the merge so that each channel's statistics are the parents', interpolated
with the merge weights.

RAVE v2 exports have no bias anywhere, so the correction is a per-channel
*rescale*, which moves mean and spread together: what it matches is each
channel's root mean square (measured on the trained pair: matching the RMS
leaves a smaller barrier than matching the standard deviation, whose
channels' means are far from 0 after the LeakyReLUs).  It is folded into the
convolution's own weight (output channel ``c`` of the weight times ``s_c``): the repaired model is a plain
export with A's methods and attributes.  The layers corrected are the
convolutions of the networks' top level (those that write the residual
streams and the up/downsampling ones; the convolutions inside the residual
branches are left alone: correcting them too measured worse), one after the
other in a single pass (a layer is measured with every earlier correction
already in place), the encoder first, then the decoder on the repaired
encoder's latents.  The last convolution of each network is left alone: the
encoder's writes the latent parameters, the decoder's the output bands and
their amplitude gates (measured: correcting it made the merge louder and
further from its input, see docs/averager.md).

A layer with a bias can take a shift as well: there the correction is
REPAIR's own, a scale and a shift that give each channel the interpolated
mean *and* standard deviation, folded into the weight (scale) and the bias
(scale, then shift).  RAVE v1's encoder is such a case: each convolution
feeds a BatchNorm, whose per-channel ``weight`` and ``bias`` are corrected
(scale and shift) in place of the convolution before it (correcting both
would only be undone by the BatchNorm's).  v1's convolutions have no bias:
its decoder is rescaled as v2's is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ravekit.errors import RavekitError
from ravekit.io.audio import read_audio
from ravekit.io.channels import match_channels
from ravekit.merging.activations import (
    NETWORKS,
    channel_moments,
    channel_rms,
    decoder_input,
    encoder_input,
    submodule,
    walk,
    walk_networks,
)

# The shortest calibration audio: the decoder's deepest layer runs at sr / ratio, and a channel's
# standard deviation over fewer than about 20 frames (1 s at 44.1 kHz / 2048) is mostly noise.
MIN_FRAMES = 20
# A channel whose merged spread is below this share of its target is left alone (scale 1):
# it is dead in the merge, and dividing by it would blow it up.
# (A channel standard deviation over fewer frames than MIN_FRAMES is mostly noise.)
DEAD = 1e-6
# The per-channel RMS after REPAIR equals its target within this relative tolerance (float32 convs).
TOLERANCE = 1e-3


@dataclass
class LayerRepair:
    """One corrected convolution: its weight name, channels, and the spread it had before."""

    name: str
    channels: int
    spread_before: float   # median over channels of merged RMS / target RMS, before the correction
    scale_min: float
    scale_max: float
    dead: int              # channels left alone (no spread in the merge)
    shifted: bool = False  # a bias took a shift too: mean and standard deviation matched, not the RMS


def _layers(model) -> list[str]:
    """The weight names REPAIR corrects: each network's top-level convolutions but its last.

    In state_dict order, which is the order the sequential networks run them.
    """
    names: list[str] = []
    for net in NETWORKS:
        layout = [(name, shape) for name, shape in conv_layout(model) if name.startswith(net + ".")]
        convs = [name for name, shape in layout if len(shape) == 3]
        # v1: a convolution that feeds a BatchNorm (1-D weight next in the layout) is corrected there
        feeds_norm = {a for (a, sa), (_, sb) in zip(layout, layout[1:]) if len(sa) == 3 and len(sb) == 1}
        norms = [name for name, shape in layout if len(shape) == 1]
        names += [n for n in layout_order(layout, convs[:-1] + norms)
                  if ".branches." not in n and n not in feeds_norm]
    return names


def layout_order(layout: list, names: list) -> list:
    """``names`` in the order of ``layout`` (the order the sequential networks run them)."""
    chosen = set(names)
    return [name for name, _ in layout if name in chosen]


def conv_layout(model) -> list[tuple[str, tuple]]:
    """The names and shapes of every convolution weight of both networks, in state_dict order."""
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()
            if k.startswith(tuple(n + "." for n in NETWORKS)) and k.endswith(".weight")]


def check_calibration(audio: np.ndarray, name: str, ratio: int) -> None:
    """Refuse calibration audio REPAIR cannot measure on: too short, not finite, or silent."""
    if not np.all(np.isfinite(audio)):
        raise RavekitError(f"{name}: the calibration audio holds NaN or infinite samples; give --repair clean "
                           "recordings of the material the models play")
    if audio.shape[-1] < MIN_FRAMES * ratio:
        raise RavekitError(f"{name}: {audio.shape[-1]} samples are too short to measure a channel (at least "
                           f"{MIN_FRAMES * ratio} samples, {MIN_FRAMES} latent frames, are needed); give --repair "
                           "more audio (a few seconds or more)")
    if not np.any(audio):
        raise RavekitError(f"{name}: the calibration audio is silent; give --repair recordings of the material "
                           "the models play")


def load_calibration(paths: Sequence, sr: int, channels: int, ratio: int) -> torch.Tensor:
    """The ``--repair`` files at the model's rate and channels, one after the other: ``(1, channels, samples)``.

    Each file is refused when it holds NaN or is silent; the whole when it is
    too short to measure a channel (``check_calibration``).
    """

    parts = []
    for path in paths:
        audio, _ = read_audio(path, sr)
        audio = match_channels(audio, channels)
        check_calibration(audio, str(path), 1)
        parts.append(audio)
    whole = np.concatenate(parts, axis=1)
    check_calibration(whole, ", ".join(map(str, paths)) if len(parts) > 1 else str(paths[0]), ratio)
    return torch.from_numpy(np.ascontiguousarray(whole, dtype=np.float32))[None]


def parent_moments(parents: Sequence, audio: torch.Tensor, seed: int) -> list[dict]:
    """Each parent's ``{weight name: per-channel RMS}`` of every convolution's output on ``audio``.

    Also ``name + "#mean"`` and ``name + "#std"``, for the layers that can take a shift.
    """
    return [_moments(model, audio, seed) for model in parents]


def _moments(model, audio: torch.Tensor, seed: int) -> dict:
    moments: dict = {}

    def keep(name: str, dim: int, y: torch.Tensor) -> torch.Tensor:
        moments[name] = channel_rms(y)
        moments[name + "#mean"], moments[name + "#std"] = channel_moments(y)
        return y

    walk_networks(model, audio, seed, keep)
    return moments


def _fold(weight: torch.Tensor, dim: int, scale: torch.Tensor) -> None:
    shape = [1] * weight.dim()
    shape[dim] = -1
    weight.mul_(scale.reshape(shape).to(weight.dtype))


def repair(merged, targets: Sequence[dict], weights: Sequence[float], audio: torch.Tensor, seed: int,
           scales: dict | None = None, between=None) -> list[LayerRepair]:
    """Rescale ``merged``'s channels, in place, to the parents' spread interpolated with ``weights``.

    Parameters
    ----------
    merged : torch.jit.ScriptModule
        The merged export (its live weights are edited).
    targets : sequence of dict
        ``parent_moments`` of each parent (aligned to A when the merge was).
    weights : sequence of float
        The merge weights, summing to 1.
    audio : torch.Tensor
        Calibration audio ``(batch, channels, samples)`` at the model's rate.
    seed : int
        Seed of the posterior and noise draws; the same as ``parent_moments`` used.

    Returns
    -------
    layers : list of LayerRepair
        One per corrected convolution, in the order corrected; each layer's
        factors are also in ``scales`` (weight name -> tensor) when given.
    """
    chosen = set(_layers(merged))
    live = merged.state_dict()
    done: list[LayerRepair] = []

    def correct(name: str, dim: int, y: torch.Tensor) -> torch.Tensor:
        if name not in chosen:
            return y
        bias = name[: -len("weight")] + "bias"
        shifted = bias in live
        if shifted:  # a bias takes the shift: match the mean and the standard deviation
            target = sum(w * t[name + "#std"] for w, t in zip(weights, targets))
            mean_t = sum(w * t[name + "#mean"] for w, t in zip(weights, targets))
            mean, spread = channel_moments(y)
        else:  # scale only: match the RMS (see the module's docstring)
            target = sum(w * t[name] for w, t in zip(weights, targets))
            spread = channel_rms(y)
        dead = spread <= DEAD * target.clamp_min(1e-30)
        scale = torch.where(dead, torch.ones_like(spread), target / spread.clamp_min(1e-30))
        shift = torch.zeros_like(spread)
        if shifted:
            shift = torch.where(dead, shift, mean_t - scale * mean)
        _fold(live[name], dim, scale)
        if shifted:  # a bias scales with its channel, then takes the shift: the fold stays exact
            _fold(live[bias], 0, scale)
            live[bias].add_(shift.to(live[bias].dtype))
        if scales is not None:
            scales[name] = scale
            if shifted:
                scales[name + "#shift"] = shift
        ratio = (spread / target.clamp_min(1e-30))[~dead]
        done.append(LayerRepair(name, int(spread.numel()), float(ratio.median()) if ratio.numel() else 0.0,
                                float(scale.min()), float(scale.max()), int(dead.sum()), shifted))
        y = y * scale.reshape(1, -1, 1).to(y.dtype)
        return y + shift.reshape(1, -1, 1).to(y.dtype) if shifted else y

    with torch.no_grad():
        walk(merged.encoder.encoder.net, encoder_input(merged, audio), NETWORKS[0], correct)
        if between is not None:  # the encoder is repaired: what the decoder hears may be recomputed now
            between(merged)
        walk(merged.decoder.net, decoder_input(merged, audio, seed), NETWORKS[1], correct)
    return done


def apply_scales(model, net: str, x: torch.Tensor, scales: dict) -> torch.Tensor:
    """Network ``net`` of ``model`` on input ``x`` with per-channel ``scales`` applied as hooks (not folded).

    ``scales`` maps weight names to per-channel factors (and ``name + "#shift"``
    to per-channel shifts, added after the scale); used to check that a folded
    correction computes the same as the correction applied on the fly.
    """
    def hook(name: str, dim: int, y: torch.Tensor) -> torch.Tensor:
        if name in scales:
            y = y * scales[name].reshape(1, -1, 1).to(y.dtype)
        if name + "#shift" in scales:
            y = y + scales[name + "#shift"].reshape(1, -1, 1).to(y.dtype)
        return y

    with torch.no_grad():
        return walk(submodule(model, net), x, net, hook)
