"""Hidden activations of a RAVE export, layer by layer, for REPAIR and activation matching.

A loaded TorchScript export takes no forward hooks, so the sub-networks
(``encoder.encoder.net`` and ``decoder.net``) are run here from Python, one
child module at a time: ``CachedSequential`` children in order, ``Residual``
as the sum of its ``Branches`` (v1's ``ResidualStack`` too), v1's wrappers
through their ``net``, every other module called as it is.  Each convolution's
output (and each v1 BatchNorm's) goes through ``visit(name, output_dim, y)``, which may
read it (statistics) and return it changed (a per-channel scale, as the
"hooks" version of a correction).  The walk is checked against the
network's own ``forward`` before it is trusted (``check_walk``), so a
structure it does not understand is refused, never measured wrongly.

The networks' inputs come from the export's own methods: the encoder hears
the PQMF bands of the audio; the decoder hears ``pre_process_latent(encode(x))``
(the posterior sample, projected and padded with noise as ``forward`` does)
under one seed, so parents and merge are measured on the same draws.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ravekit.errors import RavekitError

NETWORKS = ("encoder.encoder.net", "decoder.net")
_SEQUENTIAL = ("CachedSequential", "Sequential")
_CONVS = {"Conv1d": 0, "ConvTranspose1d": 1}  # output-channel dim of the weight
# v1's wrappers whose forward is ``self.net(x)``; and its BatchNorm, visited like a convolution
# (its per-channel weight and bias take a correction as a convolution's weight does).
_WRAPPERS = ("UpsampleLayer", "ResidualBlock", "ResidualLayer")
_NORMS = ("BatchNorm1d",)
Visit = Callable[[str, int, torch.Tensor], torch.Tensor]


class UnsupportedNetwork(RavekitError):
    """The network's structure is not one this walk reproduces exactly."""


def submodule(root, path: str):
    """``root``'s child at the dotted ``path`` (``"decoder.net"``)."""
    for part in path.split("."):
        root = getattr(root, part)
    return root


def _children(module) -> list:
    return sorted(module.named_children(), key=lambda nc: (not nc[0].isdigit(), int(nc[0]) if nc[0].isdigit()
                                                           else 0, nc[0]))


def walk(module, x: torch.Tensor, path: str, visit: Visit) -> torch.Tensor:
    """``module.forward(x)``, with every convolution's output passed through ``visit``."""
    kind = module.original_name
    if kind in _CONVS:
        return visit(f"{path}.weight", _CONVS[kind], module.forward(x))
    if kind in _NORMS:
        return visit(f"{path}.weight", 0, module.forward(x))
    if kind in _WRAPPERS:
        return walk(module.net, x, f"{path}.net", visit)
    if kind == "ResidualStack":  # v1: its Branches' outputs summed
        branches = module.net.branches
        outs = [walk(b, x, f"{path}.net.branches.{n}", visit) for n, b in _children(branches)]
        return torch.stack(outs).sum(0)
    if kind in _SEQUENTIAL or kind == "DilatedUnit":
        for name, child in _children(module.net if kind == "DilatedUnit" else module):
            x = walk(child, x, f"{path}.net.{name}" if kind == "DilatedUnit" else f"{path}.{name}", visit)
        return x
    if kind == "Residual":
        branches = module.aligned.branches
        outs = [walk(b, x, f"{path}.aligned.branches.{n}", visit) for n, b in _children(branches)]
        return torch.stack(outs).sum(0) if len(outs) > 2 else outs[0] + outs[1]
    if any(p.dim() >= 3 for p in module.parameters()):  # a convolution inside: its output would be missed
        raise UnsupportedNetwork(f"{path} ({kind}) holds convolutions in a structure the REPAIR walk does not know")
    return module.forward(x)  # activations, v3's Snake (per-channel alpha) and AdaIN: called whole


def check_walk(model, name: str, x: torch.Tensor) -> None:
    """Refuse a network whose walk does not reproduce its own ``forward`` on ``x``."""
    net = submodule(model, name)
    with torch.no_grad():
        want = net.forward(x)
        got = walk(net, x, name, lambda n, d, y: y)
    if want.shape != got.shape or not torch.allclose(want, got, rtol=1e-4, atol=1e-5 * float(want.abs().max())):
        raise UnsupportedNetwork(f"{name}: walking its layers one by one does not reproduce its forward; "
                                 "--repair and --align activations cover RAVE v1, v2 and v3 exports")


def encoder_input(model, audio: torch.Tensor) -> torch.Tensor:
    """The PQMF bands ``encode`` feeds the encoder network: ``(batch, bands * channels, frames)``."""
    if getattr(model, "input_mode", "pqmf") != "pqmf":
        raise UnsupportedNetwork("only exports whose encoder hears PQMF bands can be measured")
    batch = audio.shape[0]
    with torch.no_grad():
        bands = model.pqmf.forward(audio.reshape(-1, 1, audio.shape[-1]))
    return bands.reshape(batch, -1, bands.shape[-1])


def decoder_input(model, audio: torch.Tensor, seed: int) -> torch.Tensor:
    """The latents ``forward`` feeds the decoder network, drawn with ``seed``."""
    torch.manual_seed(seed)
    with torch.no_grad():
        return model.pre_process_latent(model.encode(audio))


def channel_moments(y: torch.Tensor, dim: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation over batch and time, float64."""
    flat = y.detach().double().movedim(dim, 0).reshape(y.shape[dim], -1)
    return flat.mean(1), flat.std(1, unbiased=False)


def channel_rms(y: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Per-channel root mean square over batch and time, float64."""
    flat = y.detach().double().movedim(dim, 0).reshape(y.shape[dim], -1)
    return flat.pow(2).mean(1).sqrt()


def record(model, audio: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    """Every convolution's output channels over time: ``{weight name: (channels, samples)}``, float32.

    The encoder runs on ``audio``'s bands, the decoder on the model's own latents (seeded).
    """
    out: dict[str, torch.Tensor] = {}

    def keep(name: str, dim: int, y: torch.Tensor) -> torch.Tensor:
        out[name] = y.detach().movedim(1, 0).reshape(y.shape[1], -1)
        return y

    walk_networks(model, audio, seed, keep)
    return out


def walk_networks(model, audio: torch.Tensor, seed: int, visit: Visit) -> None:
    """Run the encoder on ``audio``'s bands and the decoder on the model's own latents (seeded), child by
    child, ``visit`` seeing every convolution's output; each walk checked against the network's own call."""
    with torch.no_grad():
        bands, latents = encoder_input(model, audio), decoder_input(model, audio, seed)
        check_walk(model, NETWORKS[0], bands)
        check_walk(model, NETWORKS[1], latents)
        walk(model.encoder.encoder.net, bands, NETWORKS[0], visit)
        walk(model.decoder.net, latents, NETWORKS[1], visit)
