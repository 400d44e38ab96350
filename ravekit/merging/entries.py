"""Which state_dict entries a merge combines, and why each other one is left as A's.

Per entry, the first rule that applies decides (``plan_merge``):

1. nn~ metadata buffers (``*_params``), ``latent_pca``, ``latent_mean``,
   ``fidelity`` and streaming caches (``.pad``/``.cache``): never merged.  A
   PCA rotation averaged is no longer a rotation, and it describes one
   model's latent space; caches are state, not weights.
2. Missing from a model, shapes differ, not floating point, zero elements:
   cannot be merged.
3. ``scope``, then ``include``, then ``exclude`` (exclude wins): the user's
   choice.  Nothing above can be overridden by ``include``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ravekit.choices import MERGE_SCOPES
from ravekit.engine.model import STREAMING_BUFFER_SUFFIXES
from ravekit.errors import RavekitError
from ravekit.merging.keys import KeyAlignment, align_state_dicts

SCOPES = MERGE_SCOPES
LATENT_STATS = ("latent_pca", "latent_mean", "fidelity")
DIST_EPS = 1e-12


@dataclass
class EntryPlan:
    """What happens to one state_dict entry, and why.

    ``shapes[i]`` is the entry's shape in model ``i`` (None: missing);
    ``rel_dist[i]`` is ``||A - model_i|| / (||A|| + eps)`` (None where it
    cannot be computed; ``rel_dist[0]`` is always None).
    """

    name: str
    kind: str
    dtype: str
    shapes: list
    merged: bool
    reason: str
    rel_dist: list = field(default_factory=list)
    changed: int = 0  # values of A the merge actually changed (set by ``apply_merge``)

    @property
    def numel(self) -> int:
        shape = next((s for s in self.shapes if s is not None), ())
        return math.prod(shape)


def model_labels(n: int) -> list[str]:
    """``A``, ``B``, ... ``Z``, then ``M27``, ``M28`` ..."""
    return [chr(ord("A") + i) if i < 26 else f"M{i + 1}" for i in range(n)]


def compile_patterns(patterns: Sequence[str] | None, flag: str) -> list[re.Pattern]:
    out = []
    for p in patterns or ():
        try:
            out.append(re.compile(p))
        except re.error as exc:
            raise RavekitError(f"{flag} {p!r}: not a valid regular expression ({exc}); quote it in the shell",
                               2) from None
    return out


def _fixed_reason(name: str, tensors: list, alignment: KeyAlignment) -> str | None:
    """The reason an entry can never be merged, or None."""
    last = name.rsplit(".", 1)[-1]
    if last.endswith("_params"):
        return "nn~ metadata buffer"
    if last in LATENT_STATS:
        return "latent PCA statistics (one model's latent space)"
    if name.endswith(STREAMING_BUFFER_SUFFIXES):
        return "streaming cache (state, not weights)"
    if name in alignment.only_in_some:
        holders = set(alignment.only_in_some[name])
        return f"missing from {', '.join(m for m in alignment.models if m not in holders)}"
    if name in alignment.different_shape:
        return "shapes differ"
    if not all(t.is_floating_point() for t in tensors):
        return "integer or boolean tensor"
    if tensors[0].numel() == 0:
        return "zero elements"
    return None


def _choice_reason(name: str, scope: str, include: list, exclude: list) -> str | None:
    """The reason the user's selection leaves an entry out, or None."""
    if scope != "all" and not name.startswith(scope + "."):
        return f"outside --scope {scope}"
    if include and not any(p.search(name) for p in include):
        return "not matched by --include"
    for p in exclude:
        if p.search(name):
            return f"matched --exclude {p.pattern}"
    return None


def relative_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """``||a - b|| / (||a|| + eps)`` over all elements, in float64."""
    a64, b64 = a.detach().double(), b.detach().double()
    return float(torch.linalg.vector_norm(a64 - b64) / (torch.linalg.vector_norm(a64) + DIST_EPS))


def _distance(a: torch.Tensor | None, b: torch.Tensor | None) -> float | None:
    """:func:`relative_distance`, or None where it cannot be computed (missing, shapes differ, empty, complex)."""
    if a is None or b is None or a.shape != b.shape or a.numel() == 0 or a.is_complex() or b.is_complex():
        return None
    return relative_distance(a, b)


def plan_merge(state_dicts: Sequence[dict], param_names: set, scope: str = "all",
               include: Sequence[str] | None = None, exclude: Sequence[str] | None = None,
               method: str = "linear") -> list[EntryPlan]:
    """Decide, for every entry of any model, whether it is merged and why.

    Parameters
    ----------
    state_dicts : sequence of dict
        One ``{name: torch.Tensor}`` per model, A first.
    param_names : set of str
        Names of A's (or any model's) parameters, for the report's ``kind``.
    scope : str
        ``all``, ``encoder`` (names starting ``encoder.``) or ``decoder``.
    include, exclude : sequence of str or None
        Regular expressions searched in entry names.
    method : str
        ``linear`` or ``slerp``, named in the plans' reasons.

    Returns
    -------
    plans : list of EntryPlan
        One per entry of any model, in A's order.
    """
    if scope not in SCOPES:
        raise RavekitError(f"--scope {scope}: choose one of {', '.join(SCOPES)}", 2)
    inc, exc = compile_patterns(include, "--include"), compile_patterns(exclude, "--exclude")
    # The same alignment inspector.py --compare shows; its key order is first
    # appearance, A first, so the report follows A's state_dict.
    alignment = align_state_dicts(dict(zip(model_labels(len(state_dicts)), state_dicts)))
    names = alignment.same_shape + list(alignment.different_shape) + list(alignment.only_in_some)
    order = {k: i for i, k in enumerate(dict.fromkeys(k for sd in state_dicts for k in sd))}
    plans = []
    for name in sorted(names, key=order.__getitem__):
        tensors = [sd.get(name) for sd in state_dicts]
        reason = _fixed_reason(name, tensors, alignment)
        if reason is None:
            reason = _choice_reason(name, scope, inc, exc)
        dists: list[float | None] = [None, *(_distance(tensors[0], t) for t in tensors[1:])]
        present = next(t for t in tensors if t is not None)
        plans.append(EntryPlan(
            name=name, kind="parameter" if name in param_names else "buffer",
            dtype=str(present.dtype).replace("torch.", ""),
            shapes=[tuple(t.shape) if t is not None else None for t in tensors],
            merged=reason is None, reason=reason or f"merged ({method})", rel_dist=dists,
        ))
    return plans
