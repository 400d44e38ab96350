"""The calibration audio of a merge and the REPAIR targets, for ``plan.merge_models``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from ravekit.engine.model import load_module
from ravekit.errors import RavekitError
from ravekit.merging.activations import UnsupportedNetwork
from ravekit.merging.align_latent import latent_match, permute_latents
from ravekit.merging.repair import conv_layout, load_calibration, parent_moments


def calibration_audio(modules: Sequence, paths: Sequence[Path], info, repair_audio: Sequence[Path] | None,
                      align) -> torch.Tensor:
    """The ``--repair`` files as one tensor, after checking that the models can be measured on them.

    ``--align activations`` measures on the same files, so it needs them.
    """

    if not repair_audio:
        raise RavekitError("--align activations: channels are matched on audio; give a few seconds of the "
                           "models' material with --repair AUDIO ...", 2)
    check_repairable(modules, paths)
    return load_calibration(repair_audio, info.sr, info.n_channels, info.ratio)


def repair_targets(parents: Sequence, paths: Sequence[Path], calibration: torch.Tensor, seed: int) -> list[dict]:
    """``repair.parent_moments`` of the parents, refused with one line for a network it cannot walk."""

    try:
        return parent_moments(parents, calibration, seed)
    except (UnsupportedNetwork, AttributeError) as exc:  # AttributeError: no encoder.encoder.net at all
        raise RavekitError(f"{paths[0]}: --repair cannot measure this model's channels ({exc}); it covers "
                           "RAVE v1, v2 and v3 exports (v1, v2, v2_small, spherical, v3); merge without --repair"
                           ) from None


def aligned_copy(module, state: dict):
    """``module`` (a parent after A, loaded here and never saved) with its aligned tensors copied in."""
    live = module.state_dict()
    with torch.no_grad():
        for name, value in state.items():
            if value is not live[name]:
                live[name].copy_(value)
    return module


def check_repairable(modules: Sequence, paths: Sequence[Path]) -> None:
    """Refuse ``--repair`` unless every model has A's convolutions (names and shapes): one channel layout."""

    layout = conv_layout(modules[0])
    for path, module in zip(paths[1:], modules[1:]):
        if conv_layout(module) != layout:
            raise RavekitError(f"{path}: its layers differ from {paths[0]}'s (other channel groups), so its "
                               "channels' statistics cannot be targets for A's; --repair merges of one "
                               "architecture only")


def align_latent_dims(modules: Sequence, paths: Sequence[Path], states: list[dict], calibration: torch.Tensor
                      ) -> list[tuple[int, int]]:
    """Move every aligned model's latent dims into A's order and sign (``align_latent``), in ``states``.

    Returns per model after A ``(dims moved, dims sign-flipped)``.
    """

    moved = []
    for i in range(1, len(states)):
        hidden = aligned_copy(load_module(paths[i], "cpu"), states[i])  # B with its hidden channels aligned
        perm, sign = latent_match(modules[0], hidden, calibration)
        states[i] = {**states[i], **permute_latents(states[i], perm, sign)}
        moved.append((int((perm != torch.arange(perm.numel())).sum()), int((sign < 0).sum())))
    return moved
