"""``--align activations``: channels matched by how their activations correlate on audio.

Git Re-Basin's activation matching (Ainsworth et al. 2023; the matching
REPAIR's authors use): both models hear the same calibration audio; for each
permutation group (``align_groups``), every convolution whose output
channels are that group gives, per channel, its output over time in A and in
B.  ``S[i, j]`` sums, over those convolutions, the correlation of A's
channel i with B's channel j; the order of B's channels that maximises the
trace is a linear assignment problem.  Unlike weight matching, the groups do
not depend on one another (activations are computed once, on B unpermuted),
so one pass solves them all.  The encoder hears the same PQMF bands in both
models; each decoder hears its own model's latents of the same audio (seeded).
"""

from __future__ import annotations

import torch

from ravekit.merging.activations import record
from ravekit.merging.align import GroupAlignment, _groups_of, _Matcher, check_same_groups
from ravekit.merging.align_groups import PermGroup, permute_state
from ravekit.merging.entries import model_labels


def _standardised(x: torch.Tensor) -> torch.Tensor:
    x = x.double()
    x = x - x.mean(1, keepdim=True)
    return x / x.pow(2).mean(1, keepdim=True).sqrt().clamp_min(1e-12)


def correlation(acts_a: dict, acts_b: dict, group: PermGroup, out_dims: dict) -> torch.Tensor | None:
    """``S[i, j]``: summed correlation of A's channel i with B's j over the group's convolution outputs."""
    s = None
    for name, dim in group.members:
        if name not in acts_a or out_dims.get(name) != dim:
            continue
        a, b = _standardised(acts_a[name]), _standardised(acts_b[name])
        term = a @ b.T / a.shape[1]
        s = term if s is None else s + term
    return s


def _out_dims(model) -> dict:
    """Weight name -> the dim of its output channels (0 for Conv1d, 1 for ConvTranspose1d)."""
    return {f"{path}.weight": 1 if module.original_name == "ConvTranspose1d" else 0
            for path, module in model.named_modules() if module.original_name in ("Conv1d", "ConvTranspose1d")}


def align_by_activations(modules: list, paths: list, audio: torch.Tensor, seed: int = 0
                         ) -> tuple[list[dict], list[list[GroupAlignment]]]:
    """Every model after the first permuted into the first's channel order by activation matching.

    Same return as ``align.align_models``: one state_dict per model (A's
    unchanged) and per model after A its per-group figures (weight cosine
    before and after, for comparison with weight matching).  A group that
    no convolution writes keeps B's order.
    """
    from scipy.optimize import linear_sum_assignment


    groups = _groups_of(modules[0], paths[0])
    out_dims = _out_dims(modules[0])
    with torch.no_grad():
        acts_a = record(modules[0], audio, seed)
    states = [modules[0].state_dict()]
    stats = []
    for label, module, path in zip(model_labels(len(modules))[1:], modules[1:], paths[1:]):
        check_same_groups(groups, _groups_of(module, path), label, path)
        with torch.no_grad():
            acts_b = record(module, audio, seed)
        state_b = module.state_dict()
        matcher = _Matcher(states[0], state_b, groups)
        before = [matcher.cosine(gi) for gi in range(len(groups))]
        for gi, group in enumerate(groups):
            s = correlation(acts_a, acts_b, group, out_dims)
            if s is not None:
                _, cols = linear_sum_assignment(s.numpy(), maximize=True)
                matcher.perms[gi] = torch.as_tensor(cols, dtype=torch.long)
        after = [matcher.cosine(gi) for gi in range(len(groups))]
        stats.append([GroupAlignment(g.name, g.size, len(g.members), int((p != torch.arange(g.size)).sum()), b, a)
                      for g, p, b, a in zip(groups, matcher.perms, before, after)])
        aligned = dict(state_b)
        aligned.update(permute_state(state_b, groups, matcher.perms))
        states.append(aligned)
    return states, stats
