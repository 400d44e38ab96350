"""The merge report: one CSV row per state_dict entry, and a summary line.

Columns of the CSV (``averager.py --report``):

``entry``        state_dict name
``kind``         ``parameter`` or ``buffer``
``dtype``        e.g. ``float32``, ``int64``
``shape_A`` ...  shape in each model, e.g. ``16x16x7``; ``scalar``; ``missing``
``numel``        number of values in the entry
``merged``       ``yes`` or ``no``
``reason``       why (``merged (linear)``, ``shapes differ``, ``outside --scope decoder`` ...)
``rel_dist``     largest ``||A - X|| / (||A|| + 1e-12)`` over the other models X;
                 0 means identical; empty where shapes differ or an entry is missing
``rel_dist_B`` ...  the same per model, only when more than two models are merged
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ravekit import __version__
from ravekit.engine.model import sha256_of
from ravekit.io.files import atomic_write, write_json
from ravekit.merging.entries import EntryPlan, model_labels


def format_shape(shape) -> str:
    if shape is None:
        return "missing"
    return "x".join(str(s) for s in shape) if len(shape) else "scalar"


def report_rows(plans: Sequence[EntryPlan]) -> list[dict]:
    """The report as a list of row dicts, in the column order above."""
    rows = []
    for plan in plans:
        labels = model_labels(len(plan.shapes))
        row: dict[str, object] = {"entry": plan.name, "kind": plan.kind, "dtype": plan.dtype}
        row.update({f"shape_{lab}": format_shape(s) for lab, s in zip(labels, plan.shapes)})
        row["numel"] = plan.numel
        row["merged"] = "yes" if plan.merged else "no"
        row["reason"] = plan.reason
        dists = [d for d in plan.rel_dist[1:] if d is not None]
        row["rel_dist"] = max(dists) if dists else None
        if len(labels) > 2:
            row.update({f"rel_dist_{lab}": d for lab, d in zip(labels[1:], plan.rel_dist[1:])})
        rows.append(row)
    return rows


def write_report(path: os.PathLike | str, plans: Sequence[EntryPlan]) -> Path:
    """Write the CSV report atomically (pandas, UTF-8, no index column)."""
    import pandas as pd

    frame = pd.DataFrame(report_rows(plans))
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.6g"))


def _share(part: int, total: int) -> str:
    return f" ({100.0 * part / total:.1f}%)" if total else ""


def changed_counts(plans: Sequence[EntryPlan]) -> tuple[int, int]:
    """``(values, entries)`` of A that the merge actually changed (an identical entry is merged, not changed)."""
    return sum(p.changed for p in plans), sum(p.changed > 0 for p in plans)


def summary(plans: Sequence[EntryPlan]) -> str:
    """One line: entries and values merged and actually changed, and why the rest were kept from A."""
    merged = [p for p in plans if p.merged]
    values = sum(p.numel for p in merged)
    total = sum(p.numel for p in plans if p.shapes[0] is not None)
    kept: dict[str, int] = {}
    for p in plans:
        if not p.merged:
            # Group "matched --exclude X" and "missing from B, C" style reasons by their kind.
            key = ("--exclude" if p.reason.startswith("matched --exclude")
                   else "missing from a model" if p.reason.startswith("missing") else p.reason)
            kept[key] = kept.get(key, 0) + 1
    line = f"merged {len(merged)} of {len(plans)} entries, {values:,} of {total:,} values{_share(values, total)}"
    changed, entries = changed_counts(plans)
    in_a = sum(p.shapes[0] is not None for p in plans)
    line += (f"; changed in A: {entries} of {in_a} entries{_share(entries, in_a)}, "
             f"{changed:,} of {total:,} values{_share(changed, total)}")
    if kept:
        line += "; not merged: " + ", ".join(f"{n} {k}" for k, n in sorted(kept.items(), key=lambda kv: -kv[1]))
    far = [p for p in merged if p.rel_dist[1:] and all(d is not None for d in p.rel_dist[1:])]
    if far:
        top = max(far, key=lambda p: max(p.rel_dist[1:]))
        line += f"; most different merged entry: {top.name} (rel_dist {max(top.rel_dist[1:]):.3g})"
    return line


def write_recipe(path: os.PathLike | str, models: Sequence[os.PathLike | str], weights: Sequence[float],
                 plans: Sequence[EntryPlan], *, method: str, scope: str, include: Sequence[str] | None,
                 exclude: Sequence[str] | None, forced: bool, report: os.PathLike | str,
                 audio: os.PathLike | str | None = None, renders: Sequence[os.PathLike | str] = (),
                 page: os.PathLike | str | None = None, alignment: dict | None = None,
                 repair: dict | None = None) -> Path:
    """Write how a merged model was made (JSON sidecar beside it), so a merge can be redone.

    Records each parent's path, sha256 and normalised weight, the method and
    the selection flags, whether (and how) models were aligned, the counts of the summary line and the files of the
    set (report, renders).  It is written last: a model without its recipe is
    an unfinished merge.
    """

    merged = [p for p in plans if p.merged]
    changed, changed_entries = changed_counts(plans)
    return write_json(path, {
        "tool": "averager.py",
        "ravekit_version": __version__,
        "models": [{"label": lab, "path": str(m), "sha256": sha256_of(m), "weight": w}
                   for lab, m, w in zip(model_labels(len(models)), models, weights)],
        "method": method,
        "scope": scope,
        "include": list(include or []),
        "exclude": list(exclude or []),
        "forced": bool(forced),
        "entries": len(plans),
        "merged_entries": len(merged),
        "values": sum(p.numel for p in plans if p.shapes[0] is not None),
        "merged_values": sum(p.numel for p in merged),
        "changed_entries": changed_entries,
        "changed_values": changed,
        "report": str(report),
        "audio": None if audio is None else str(audio),
        "renders": [str(r) for r in renders],
        "listening_page": None if page is None else str(page),
        "alignment": alignment or {"used": False},
        "repair": repair or {"used": False},
    })
