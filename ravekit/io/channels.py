"""How a file's channels feed a model's: plans, mixing, and what was left out.

A plan is a list of passes through the model, each ``(name_suffix, groups)``:
``groups`` holds one list of file channels (0-based) per model channel, and
each model channel gets the average of its group.  ``[[0], [0]]`` duplicates
a mono file into a stereo model; ``[[0, 2, 4], [1, 3, 5]]`` folds six
channels down to two.
"""

from __future__ import annotations

import numpy as np

from ravekit.choices import CHANNEL_MODES
from ravekit.errors import RavekitError

Groups = list[list[int]]


def _spread(sources: list[int], model_channels: int) -> Groups:
    """One source per model channel, cycling when there are fewer sources than channels."""
    return [[sources[k % len(sources)]] for k in range(model_channels)]


def channel_plan(file_channels: int, model_channels: int, mode: str = "auto",
                 picked: list[int] | None = None) -> list[tuple[str, Groups]]:
    """How a file's channels feed a model: a list of ``(name_suffix, groups)``, one per pass.

    ``picked`` (0-based) restricts the file to those channels, in that order,
    before ``mode`` applies.  Modes: ``auto`` mixes down for a mono model,
    duplicates a mono file into a wider model, and otherwise takes channels in
    order; ``mix`` averages everything into every model channel; ``fold``
    averages file channel ``k`` into model channel ``k mod n`` (6 into 2:
    1+3+5 left, 2+4+6 right); ``left``/``right`` take channel 1/2 alone;
    ``split`` encodes every channel separately (suffix ``.ch1``, ``.ch2``, ...).
    """
    if mode not in CHANNEL_MODES:
        raise RavekitError(f"unknown --channel_mode {mode!r}; choose one of {', '.join(CHANNEL_MODES)}", 2)
    if picked is not None:
        beyond = [c + 1 for c in picked if c >= file_channels]
        if beyond:
            raise RavekitError(f"--channels {','.join(map(str, beyond))}: the file has only {file_channels} "
                               f"channel{'s' if file_channels > 1 else ''}; pick from 1 to {file_channels}")
    sources = list(picked) if picked is not None else list(range(file_channels))
    if mode == "split":
        if len(sources) == 1:
            return [("", _spread(sources, model_channels))]
        return [(f".ch{c + 1}", _spread([c], model_channels)) for c in sources]
    if mode in ("left", "right"):
        index = 0 if mode == "left" else 1
        if len(sources) <= index:
            if picked is not None:
                raise RavekitError(f"--channel_mode right takes the second of the channels picked, but --channels "
                                   f"{','.join(str(c + 1) for c in picked)} picks one; pick two, or drop "
                                   "--channel_mode right to use it", 2)
            raise RavekitError("--channel_mode right needs a file with two or more channels; use auto", 2)
        return [("", _spread([sources[index]], model_channels))]
    if mode == "mix" or model_channels == 1:
        return [("", [list(sources) for _ in range(model_channels)])]
    if mode == "fold":
        return [("", [sources[k::model_channels] or [sources[k % len(sources)]] for k in range(model_channels)])]
    return [("", _spread(sources[:model_channels], model_channels))]


def apply_channels(x: np.ndarray, groups: Groups) -> np.ndarray:
    """Mix a file's channels into the model's: each output row is the mean of its group.

    Parameters
    ----------
    x : np.ndarray [shape=(channels, samples)]
        The file's audio.
    groups : list of list of int
        Per model channel, the 0-based file channels averaged into it.

    Returns
    -------
    y : np.ndarray [shape=(len(groups), samples), dtype=float32]
    """
    rows = [x[g[0]] if len(g) == 1 else x[g].mean(axis=0, dtype=np.float32) for g in groups]
    return np.ascontiguousarray(np.stack(rows).astype(np.float32, copy=False))


def match_channels(x: np.ndarray, model_channels: int, mode: str = "auto") -> np.ndarray:
    """Convert a file's channels to the model's (the first pass of :func:`channel_plan`).

    Parameters
    ----------
    x : np.ndarray [shape=(channels, samples)]
        The file's audio.
    model_channels : int > 0
        Channels the model takes.
    mode : str
        ``--channel_mode``: ``auto``, ``mix``, ``fold``, ``left``, ``right`` or ``split``.

    Returns
    -------
    y : np.ndarray [shape=(model_channels, samples), dtype=float32]
    """
    return apply_channels(x, channel_plan(x.shape[0], model_channels, mode)[0][1])


def unused_channels(file_channels: int, plan: list[tuple[str, Groups]]) -> list[int]:
    """File channels (0-based) that no pass of ``plan`` reads."""
    used = {c for _, groups in plan for g in groups for c in g}
    return [c for c in range(file_channels) if c not in used]


def describe_groups(groups: Groups) -> str:
    """``[[0], [1]]`` -> ``"1, 2"``; ``[[0, 2], [1, 3]]`` -> ``"1+3, 2+4"`` (1-based, per model channel)."""
    return ", ".join("+".join(str(c + 1) for c in g) for g in groups)


def spans(channels: list[int]) -> str:
    """0-based channels -> ``"3-6"`` or ``"3, 5"`` (1-based)."""
    parts, start = [], None
    for i, c in enumerate(channels):
        start = c if start is None else start
        if i + 1 == len(channels) or channels[i + 1] != c + 1:
            parts.append(f"{start + 1}" if start == c else f"{start + 1}-{c + 1}")
            start = None
    return ", ".join(parts)
