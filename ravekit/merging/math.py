"""The arithmetic of merging: weighted average and spherical interpolation.

Every combination is computed in float64 and cast back to the first
tensor's dtype once, so a model with weight 0 contributes exactly nothing and
weights ``1 0`` give the first model bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

# Cosine similarity above which slerp falls back to linear interpolation,
# because sin(angle) is too small to divide by (mergekit uses the same value).
SLERP_DOT_THRESHOLD = 0.9995


def linear_merge(tensors: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    """``sum_i w_i * t_i`` accumulated in float64 in model order, cast to A's dtype.

    Zero-weight models are left out of the sum, so weights ``1 0`` give A bit
    for bit (even where the other model holds inf or NaN).

    Parameters
    ----------
    tensors : sequence of torch.Tensor
        One entry per model, all of one shape, A first.
    weights : sequence of float >= 0
        One per model, at least one above 0 (normalised by the caller).

    Returns
    -------
    merged : torch.Tensor
        Same shape as the inputs, A's dtype.
    """
    acc = None
    for t, w in zip(tensors, weights):
        if w == 0:
            continue
        term = t.detach().double() * w
        acc = term if acc is None else acc + term
    if acc is None:
        raise ValueError("linear_merge needs at least one weight above 0")
    return acc.to(tensors[0].dtype)


def slerp_pair(a: torch.Tensor, b: torch.Tensor, wa: float, wb: float) -> tuple[torch.Tensor, bool]:
    """Spherical interpolation from ``a`` (weight ``wa``) to ``b`` (weight ``wb``), float64.

    Both tensors are treated as flat vectors; ``t = wb / (wa + wb)``.  Nearly
    parallel (or anti-parallel, or zero) tensors are interpolated linearly,
    ``(wa * a + wb * b) / (wa + wb)``.

    Parameters
    ----------
    a, b : torch.Tensor
        Of one shape.
    wa, wb : float >= 0

    Returns
    -------
    result : torch.Tensor
        Same shape as ``a``.
    fell_back : bool
        The linear interpolation was used.
    """
    total = wa + wb
    if wb == 0:
        return a, False
    if wa == 0:
        return b, False
    na, nb = torch.linalg.vector_norm(a), torch.linalg.vector_norm(b)
    dot = float((a.flatten() @ b.flatten()) / (na * nb)) if na > 0 and nb > 0 else 1.0
    if not math.isfinite(dot) or abs(dot) > SLERP_DOT_THRESHOLD:
        return (a * wa + b * wb) / total, True
    t = wb / total
    omega = math.acos(max(-1.0, min(1.0, dot)))
    s = math.sin(omega)
    return a * (math.sin((1 - t) * omega) / s) + b * (math.sin(t * omega) / s), False


def slerp_merge(tensors: Sequence[torch.Tensor], weights: Sequence[float]) -> tuple[torch.Tensor, bool]:
    """Sequential pairwise slerp: A with B, the result with C, ... (order matters).

    Each step interpolates the running result (carrying the summed weight of
    the models so far) toward the next model by ``w_next / (w_so_far + w_next)``,
    which for two models is plain slerp with ``t = w_B``.

    Parameters
    ----------
    tensors : sequence of torch.Tensor
        One entry per model, all of one shape, A first.
    weights : sequence of float >= 0
        One per model, summing to 1.

    Returns
    -------
    merged : torch.Tensor
        Same shape as the inputs, A's dtype.
    fell_back : bool
        Some step fell back to linear interpolation.
    """
    acc, acc_w, fell_back = None, 0.0, False
    for t, w in zip(tensors, weights):
        x = t.detach().double()
        if acc is None or acc_w == 0:
            acc, acc_w = (x, w) if w > 0 or acc is None else (acc, acc_w)
            continue
        acc, fb = slerp_pair(acc, x, acc_w, w)
        fell_back |= fb
        acc_w += w
    if acc is None:
        raise ValueError("slerp_merge needs at least one tensor")
    return acc.to(tensors[0].dtype), fell_back
