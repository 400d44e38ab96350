"""What ``averager.py --align`` did, per permutation group.

The alignment CSV (``<report stem>.align.csv`` beside the merge report) has
one row per model after A and per group:

``model``        B, C, ...
``group``        the group's first tensor and dim, e.g. ``decoder.net.2.weight:1``
``channels``     channels the group permutes
``tensors``      tensor dims permuted together
``moved``        channels of that model that alignment moved
``cos_before``   cosine similarity of the group's tensors, A vs the model, as trained
``cos_after``    the same after alignment (never lower: identity is one candidate)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ravekit.io.files import atomic_write

# start-up: averager.py reads these names before any work; torch (through entries) loads only to report.


def alignment_path(report: Path) -> Path:
    """Where the alignment CSV of a merge report goes."""
    return report.with_name(report.stem + ".align.csv")


def alignment_rows(stats: Sequence[Sequence]) -> list[dict]:
    """``stats[i]``: the ``align.GroupAlignment`` list of model ``i + 1``."""
    from ravekit.merging.entries import model_labels

    labels = model_labels(len(stats) + 1)[1:]
    return [{"model": label, "group": g.group, "channels": g.size, "tensors": g.tensors, "moved": g.moved,
             "cos_before": g.cos_before, "cos_after": g.cos_after}
            for label, groups in zip(labels, stats) for g in groups]


def write_alignment(path: os.PathLike | str, stats: Sequence[Sequence]) -> Path:
    import pandas as pd

    frame = pd.DataFrame(alignment_rows(stats))
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.6g"))


def alignment_summary(stats: Sequence[Sequence]) -> list[str]:
    """One line per aligned model: groups, channels moved, mean cosine before -> after."""
    from ravekit.merging.entries import model_labels

    lines = []
    for label, groups in zip(model_labels(len(stats) + 1)[1:], stats):
        n = len(groups) or 1
        before = sum(g.cos_before for g in groups) / n
        after = sum(g.cos_after for g in groups) / n
        moved = sum(g.moved for g in groups)
        lines.append(f"aligned {label} to A: {len(groups)} permutation groups, {moved} of "
                     f"{sum(g.size for g in groups)} channels moved; mean cosine similarity to A per group "
                     f"{before:.3f} -> {after:.3f}")
    return lines


def alignment_record(stats: Sequence[Sequence] | None) -> dict:
    """The recipe's ``alignment`` entry (``{"used": false}`` without --align)."""
    if stats is None:
        return {"used": False}
    return {"used": True, "method": "weight matching (linear assignment per permutation group)",
            "groups": alignment_rows(stats)}
