"""Permutation groups of a RAVE export, derived from its TorchScript graphs.

Two networks that differ only by the order of their hidden channels compute
the same function.  Which tensor dimensions must be permuted together is a
property of the architecture; here it is read from the model itself rather
than written down per architecture: the inlined TorchScript graph of each
sub-network (the v2 ``EncoderV2`` and ``GeneratorV2``, which the spherical
and v3 configs share; v3 adds Snake, whose per-channel ``alpha`` of shape
``(C, 1)`` joins its channels' space, and AdaIN, whose per-channel running
statistics ``(batch, C, 1)`` do too) is walked op by op,
and every tensor's channel dimension (dim 1 of ``(batch, channels, time)``)
is given a *channel space*.  Union-find joins the spaces that must be one:

* ``conv1d``: input space = weight dim 1, output space = weight dim 0
  (``conv_transpose1d``: dim 0 in, dim 1 out); a bias follows the output.
* ``add``/``mul``/``copy_`` ... of two tensors: both are one space (so every
  layer writing into a residual stream shares its permutation).
* elementwise ops, padding and slicing along time or batch keep the space;
  a 3-D streaming cache buffer ``(batch, channels, time)`` joins the space it
  is concatenated with or copied from.
* ops that give channel positions a meaning (``split``/``chunk``/``cat``
  along channels, ``reshape``, ``permute`` ...) make their inputs' spaces
  *fixed*: never permuted.

The sub-networks' inputs (PQMF bands, latent dims) and outputs (latent
parameters, output bands, amplitude and noise channels) are fixed too, so
the latent space, ``latent_pca``/``latent_mean``, PQMF and audio channels
are never touched.  v1 (``Encoder``, ``Generator``) adds BatchNorm, whose
weight, bias and running statistics follow their input's space; a grouped
convolution fixes both its sides; a loop over sizes is walked once.  Any op
this module does not know that reads a channel space not yet fixed, a loop
that carries tensors, or a model whose encoder/decoder are not the v1/v2
classes is refused (``UnsupportedArchitecture``): nothing is ever permuted
on a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ravekit.merging.align_trace import Spaces, Tracer, UnsupportedArchitecture

# Model classes whose encode/decode feed the networks below only through their forward.
TOP_CLASSES = ("VariationalScriptedRAVE", "DiscreteScriptedRAVE", "SphericalScriptedRAVE")
# Sub-networks traced; their input and output channels mean something outside them.
# ``Encoder`` and ``Generator`` are v1's (``rave.blocks``); v1 wraps its Encoder in a
# VariationalEncoder whose forward only calls it, and reparametrises in the model's encode.
NETWORK_CLASSES = ("EncoderV2", "GeneratorV2", "Encoder", "Generator")


@dataclass
class PermGroup:
    """Tensor dimensions that one permutation of ``size`` channels reorders together.

    ``members`` lists ``(state_dict name, dim)``: permuting every member along
    its dim by the same index array leaves the model's outputs unchanged.
    """

    name: str
    size: int
    members: list


def _inlined(method) -> torch._C.Graph:
    graph = method.graph.copy()
    torch._C._jit_pass_inline(graph)
    return graph


def network_paths(module) -> list[str]:
    """The sub-networks traced, or ``UnsupportedArchitecture`` naming what this model is."""
    top = getattr(module, "original_name", type(module).__name__)
    nets = [(n, s.original_name) for n, s in module.named_modules() if s.original_name in NETWORK_CLASSES]
    if top not in TOP_CLASSES or not nets:
        classes = sorted({s.original_name for n, s in module.named_modules() if n.count(".") <= 1 and n})
        raise UnsupportedArchitecture(
            f"alignment covers RAVE v1, v2 and v3 exports ({', '.join(TOP_CLASSES)} with EncoderV2 and "
            "GeneratorV2, or v1's Encoder and Generator); "
            f"this model is {top} with {', '.join(classes) or 'no sub-modules'}")
    return [n for n, _ in nets]


def derive_groups(module) -> list[PermGroup]:
    """The permutation groups of ``module`` (a loaded RAVE export), in state_dict order.

    Only groups of two or more channels that are not fixed are returned; a
    dim of a tensor that belongs to no group is never permuted.
    """
    state = module.state_dict()
    params = {n for n, _ in module.named_parameters()}
    spaces = Spaces()
    mods = dict(module.named_modules())
    for path in network_paths(module):
        Tracer(state, params, spaces, path, mods).run(_inlined(mods[path].forward), path)
    members: dict = {}
    for key in spaces.order:
        if key[0] == "dim" and not spaces.fixed(key):
            members.setdefault(spaces.find(key), []).append((key[1], key[2]))
    rank = {name: i for i, name in enumerate(state)}
    groups = []
    for dims in members.values():
        dims.sort(key=lambda nd: (rank[nd[0]], nd[1]))
        sizes = {state[n].shape[d] for n, d in dims}
        if len(sizes) != 1:
            raise UnsupportedArchitecture(f"channel group of {dims[0][0]} joins dims of sizes {sorted(sizes)}: "
                                          "the traced graph is not a plain channel flow")
        size = sizes.pop()
        if size > 1:
            groups.append((dims, size))
    groups.sort(key=lambda g: (rank[g[0][0][0]], g[0][0][1]))
    return [PermGroup(f"{dims[0][0]}:{dims[0][1]}", size, dims) for dims, size in groups]


def permute_state(state: dict, groups: list[PermGroup], perms: list) -> dict:
    """A copy of the entries of ``state`` the groups touch, each permuted along its dims.

    ``perms[i]`` is an index array of ``groups[i].size``: channel ``j`` of the
    result is channel ``perms[i][j]`` of the input.  Entries not in any group
    are not returned (they are unchanged).
    """
    out: dict = {}
    for group, perm in zip(groups, perms):
        index = torch.as_tensor(perm, dtype=torch.long)
        for name, dim in group.members:
            out[name] = out.get(name, state[name]).index_select(dim, index)
    return out
