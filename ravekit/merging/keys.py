"""Aligning the state_dict keys of several models: what can be combined, what cannot.

inspector.py prints this alignment with ``--compare``; averager.py uses the
same function to decide which entries it can average.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


class Shaped(Protocol):
    """Anything with a ``.shape``: a torch tensor, a numpy array."""

    @property
    def shape(self) -> Sequence[int]: ...


@dataclass
class KeyAlignment:
    """How the state_dict keys of several models line up.

    Attributes
    ----------
    models : list of str
        The model names, in the order given.
    same_shape : list of str
        Keys present in every model with the same shape in all of them (the
        entries that can be averaged or swapped).  Dtypes are not compared.
    different_shape : dict
        ``key -> {model: shape tuple}`` for keys present in every model but
        not with one shape.
    only_in_some : dict
        ``key -> [models that have it]`` for keys missing from at least one model.

    Keys keep the order of their first appearance (first model first).
    """

    models: list[str]
    same_shape: list[str] = field(default_factory=list)
    different_shape: dict[str, dict[str, tuple[int, ...]]] = field(default_factory=dict)
    only_in_some: dict[str, list[str]] = field(default_factory=dict)

    @property
    def all_match(self) -> bool:
        """True when every key is in every model with one shape."""
        return not self.different_shape and not self.only_in_some

    def to_dict(self) -> dict:
        return {
            "models": list(self.models),
            "same_shape": list(self.same_shape),
            "different_shape": {k: {m: list(s) for m, s in v.items()} for k, v in self.different_shape.items()},
            "only_in_some": {k: list(v) for k, v in self.only_in_some.items()},
        }


def align_state_dicts(state_dicts: Mapping[str, Mapping[str, Shaped]]) -> KeyAlignment:
    """Align the keys of several state_dicts by name and shape.

    Parameters
    ----------
    state_dicts : mapping
        ``model name -> {key: tensor}``; anything with a ``.shape`` (torch
        tensors, numpy arrays) works as a value.

    Returns
    -------
    KeyAlignment
        Every key lands in exactly one of ``same_shape``,
        ``different_shape`` or ``only_in_some``.
    """
    models = list(state_dicts)
    order: dict[str, None] = {}
    for sd in state_dicts.values():
        for key in sd:
            order.setdefault(key, None)
    result = KeyAlignment(models=models)
    for key in order:
        holders = [m for m in models if key in state_dicts[m]]
        if len(holders) < len(models):
            result.only_in_some[key] = holders
            continue
        shapes = {m: tuple(int(n) for n in state_dicts[m][key].shape) for m in models}
        if len(set(shapes.values())) == 1:
            result.same_shape.append(key)
        else:
            result.different_shape[key] = shapes
    return result


def identical_keys(state_dicts: Mapping[str, Mapping[str, object]], keys: list[str]) -> list[str]:
    """Among ``keys`` (same shape in all), those whose values are equal in every model.

    Fixed filter banks such as ``pqmf.*`` are identical across models of one
    configuration; averaging them changes nothing.
    """
    import torch

    models = list(state_dicts)
    same = []
    for key in keys:
        first = torch.as_tensor(state_dicts[models[0]][key])
        others = [torch.as_tensor(state_dicts[m][key]) for m in models[1:]]
        if all(o.dtype == first.dtype and torch.equal(first, o) for o in others):
            same.append(key)
    return same
