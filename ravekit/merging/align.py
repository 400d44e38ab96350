"""Aligning models before a merge: weight matching over the derived permutation groups.

Git Re-Basin's weight matching (Ainsworth, Hayase & Srinivasa, ICLR 2023):
for each permutation group, the channel order of model B that best lines up
with model A maximises the sum, over every tensor of the group, of the inner
products of A's channel slices with B's (B's other dims already in their
current order).  That is a linear assignment problem
(``scipy.optimize.linear_sum_assignment``); solving one group changes the
problem of the groups it shares tensors with, so the groups are visited
again, in an order drawn from a seeded generator, until no group improves.
Everything is computed in float64 and is reproducible for a seed.

A permuted model computes exactly the same function (``align_groups``), so
alignment never changes what B plays on its own: it only decides which of
A's channels B's channels are averaged with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ravekit.merging.align_groups import (
    PermGroup,
    UnsupportedArchitecture,
    derive_groups,
    permute_state,
)
from ravekit.merging.entries import model_labels

MAX_SWEEPS = 100
IMPROVE_TOL = 1e-12


@dataclass
class GroupAlignment:
    """How one group was aligned: ``cos_before``/``cos_after`` are the cosine similarity
    of A's and B's tensors of the group (all concatenated), before and after."""

    group: str
    size: int
    tensors: int
    moved: int          # channels of B that moved
    cos_before: float
    cos_after: float


def _flat(t: torch.Tensor, dim: int) -> torch.Tensor:
    return t.detach().double().movedim(dim, 0).reshape(t.shape[dim], -1)


class _Matcher:
    def __init__(self, state_a: dict, state_b: dict, groups: list[PermGroup]):
        self.a, self.b, self.groups = state_a, state_b, groups
        self.perms = [torch.arange(g.size) for g in groups]
        self.membership: dict = {}
        for gi, g in enumerate(groups):
            for name, dim in g.members:
                self.membership.setdefault(name, []).append((gi, dim))

    def b_except(self, name: str, skip_dim: int) -> torch.Tensor:
        """B's tensor with every group's current permutation applied, except along ``skip_dim``."""
        t = self.b[name]
        for gi, dim in self.membership[name]:
            if dim != skip_dim:
                t = t.index_select(dim, self.perms[gi])
        return t

    def similarity(self, gi: int) -> torch.Tensor:
        """``S[i, j]``: how well B's channel j matches A's channel i, summed over the group's tensors."""
        size = self.groups[gi].size
        s = torch.zeros(size, size, dtype=torch.float64)
        for name, dim in self.groups[gi].members:
            s += _flat(self.a[name], dim) @ _flat(self.b_except(name, dim), dim).T
        return s

    def cosine(self, gi: int) -> float:
        dot = na = nb = 0.0
        for name, dim in self.groups[gi].members:
            a = _flat(self.a[name], dim)
            b = _flat(self.b_except(name, -1), dim)
            dot += float((a * b).sum())
            na += float((a * a).sum())
            nb += float((b * b).sum())
        return float(dot / (np.sqrt(na * nb) + 1e-300))

    def solve(self, seed: int) -> None:
        from scipy.optimize import linear_sum_assignment

        rng = np.random.default_rng(seed)
        for _ in range(MAX_SWEEPS):
            improved = False
            for gi in rng.permutation(len(self.groups)):
                s = self.similarity(int(gi))
                _, cols = linear_sum_assignment(s.numpy(), maximize=True)
                rows = torch.arange(s.shape[0])
                new = torch.as_tensor(cols, dtype=torch.long)
                old_score, new_score = float(s[rows, self.perms[gi]].sum()), float(s[rows, new].sum())
                if new_score > old_score + IMPROVE_TOL * max(1.0, abs(old_score)):
                    self.perms[gi] = new
                    improved = True
            if not improved:
                return


def check_same_groups(groups_a: list[PermGroup], groups_b: list[PermGroup], label: str, path) -> None:
    """Refuse a model whose derived groups differ from A's: its channels do not correspond."""
    sig_a = [(g.size, g.members) for g in groups_a]
    sig_b = [(g.size, g.members) for g in groups_b]
    if sig_a != sig_b:
        raise UnsupportedArchitecture(f"{path}: model {label}'s permutation groups differ from A's "
                                      f"({len(groups_b)} vs {len(groups_a)} groups, or other sizes): not one "
                                      "architecture, so it cannot be aligned; merge it without --align")


def align_to(state_a: dict, state_b: dict, groups: list[PermGroup], seed: int = 0
             ) -> tuple[dict, list, list[GroupAlignment]]:
    """B's state_dict permuted into A's channel order.

    Returns ``(aligned, perms, stats)``: ``aligned`` is a new dict (B's other
    entries shared, the permuted ones new tensors; B itself is not edited),
    ``perms[i]`` the index array of ``groups[i]`` and ``stats`` one
    ``GroupAlignment`` per group.
    """
    matcher = _Matcher(state_a, state_b, groups)
    before = [matcher.cosine(gi) for gi in range(len(groups))]
    matcher.solve(seed)
    after = [matcher.cosine(gi) for gi in range(len(groups))]
    stats = [GroupAlignment(g.name, g.size, len(g.members), int((p != torch.arange(g.size)).sum()), b, a)
             for g, p, b, a in zip(groups, matcher.perms, before, after)]
    aligned = dict(state_b)
    aligned.update(permute_state(state_b, groups, matcher.perms))
    return aligned, matcher.perms, stats


def _groups_of(module, path) -> list[PermGroup]:
    """``derive_groups``, its refusal naming the file and saying what still works."""
    try:
        return derive_groups(module)
    except UnsupportedArchitecture as exc:
        raise UnsupportedArchitecture(f"{path}: --align does not know this architecture yet ({exc}); "
                                      "a merge without --align still works") from None


def align_models(modules: list, paths: list, seed: int = 0) -> tuple[list[dict], list[list[GroupAlignment]]]:
    """Every model after the first permuted into the first's channel order.

    Returns one state_dict per model (A's unchanged) and, per model after A,
    its per-group figures.  Raises ``UnsupportedArchitecture`` (nothing merged)
    when the groups cannot be derived or differ between models.
    """

    groups = _groups_of(modules[0], paths[0])
    states = [modules[0].state_dict()]
    stats = []
    for label, module, path in zip(model_labels(len(modules))[1:], modules[1:], paths[1:]):
        check_same_groups(groups, _groups_of(module, path), label, path)
        aligned, _, figures = align_to(states[0], module.state_dict(), groups, seed)
        states.append(aligned)
        stats.append(figures)
    return states, stats
