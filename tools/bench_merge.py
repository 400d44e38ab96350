"""Benchmark group ``merge``: how merges of two trained models reconstruct audio neither saw.

The pair is ``trained-models/plucks_a.ts`` and ``plucks_b.ts`` beside $RAVE_TEST_MODELS (two small
RAVE v2 models trained on plucked strings from different seeds) and ``audio/plucks_777_*.wav``.
The first half of the files calibrate ``--repair`` (and activation matching); the second half,
which the calibration never hears, is measured.  For every method and weight of B (0, .25, .5,
.75, 1) the merge plays each measured file through ``forward`` (seed 0) and is scored by:
  distance  RAVE's multi-scale spectral distance of the output to the input
            (``ravekit.engine.distance``, mean over the 5 STFT sizes), mean over files;
  barrier   distance minus the straight line between the parents' distances at that weight;
  loudness  output RMS in dB minus the parents' mean.
Targets (issue 22), for the best method (activation matching with --repair) at .25/.5/.75:
barrier <= 1/10 of the plain merge's, loudness within 2 dB.  About 4 minutes on 2 busy cores
(load 8), 2 on quiet ones.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
# label -> keyword arguments of merge_models (None: the flag is given the calibration files).
METHODS = {
    "plain": dict(align=False, repair=False),
    "--align": dict(align=True, repair=False),
    "--repair --align none": dict(align=False, repair=True),
    "--align --repair": dict(align=True, repair=True),
    "--align activations --repair": dict(align="activations", repair=True),
}
BEST = "--align activations --repair"  # measured best; averager --repair defaults to it


def shared_folder() -> Path | None:
    """The folder holding ``trained-models/`` and ``audio/``: beside $RAVE_TEST_MODELS."""
    folder = os.environ.get("RAVE_TEST_MODELS")
    if not folder:
        return None
    root = Path(folder).resolve().parent
    return root if (root / "trained-models" / "plucks_a.ts").exists() else None


def _play(module, audio: list[np.ndarray]) -> tuple[float, float]:
    import torch

    from ravekit.engine.distance import loudness_db, spectral_distance

    distances, levels = [], []
    for x in audio:
        torch.manual_seed(0)
        with torch.no_grad():
            y = module.forward(torch.from_numpy(x)[None, None]).numpy().ravel()[: x.size]
        distances.append(spectral_distance(x, y))
        levels.append(loudness_db(y))
    return float(np.mean(distances)), float(np.mean(levels))


def measure(root: Path, methods: dict = METHODS) -> dict:
    """``{method: [(weight, distance, loudness dB), ...]}`` plus the parents' figures under ``"parents"``."""
    import soundfile as sf

    from ravekit.engine.model import load_module
    from ravekit.merging.align_groups import UnsupportedArchitecture
    from ravekit.merging.plan import merge_models

    pair = [root / "trained-models" / "plucks_a.ts", root / "trained-models" / "plucks_b.ts"]
    files = sorted((root / "audio").glob("plucks_777_*.wav"))
    calibration, measured = files[: len(files) // 2], files[len(files) // 2:]
    audio = [sf.read(f, dtype="float32")[0] for f in measured]
    out: dict = {"parents": [_play(load_module(p, "cpu"), audio) for p in pair], "calibration": calibration,
                 "measured": measured, "seconds": {}}
    for label, how in methods.items():
        started, rows = time.perf_counter(), []
        for w in WEIGHTS:
            try:
                result = merge_models(pair, [1 - w, w], align=how["align"],
                                      repair_audio=calibration if how["repair"] else None)
            except (UnsupportedArchitecture, TypeError):  # a method this version does not have
                rows = []
                break
            rows.append((w, *_play(result.module, audio)))
        if rows:
            out[label] = rows
            out["seconds"][label] = time.perf_counter() - started
    return out


def merge_rows(rows: list) -> list[str]:
    """Add the ``merge`` rows to the bench table; returns the method x weight table as markdown lines."""
    root = shared_folder()
    if root is None:
        return ["merge: no trained-models/ and audio/ beside $RAVE_TEST_MODELS; skipped"]
    figures = measure(root)
    (da, la), (db, lb) = figures["parents"]
    loud = (la + lb) / 2
    lines = [f"merge (tools/bench_merge.py): calibration {', '.join(p.name for p in figures['calibration'])}; "
             f"measured on {', '.join(p.name for p in figures['measured'])}; A {da:.2f} at {la:.1f} dB, "
             f"B {db:.2f} at {lb:.1f} dB; cells: distance / barrier / loudness vs parents (dB)", "",
             "| method | " + " | ".join(f"w={w:g}" for w in WEIGHTS) + " | s |",
             "|---|" + "---|" * (len(WEIGHTS) + 1)]
    plain = {w: d - ((1 - w) * da + w * db) for w, d, _ in figures["plain"]}
    for label in METHODS:
        if label not in figures:
            continue
        cells = []
        for w, d, level in figures[label]:
            barrier = d - ((1 - w) * da + w * db)
            cells.append(f"{d:.2f} / {barrier:+.2f} / {level - loud:+.1f}")
            if 0 < w < 1 and label != "plain":
                target = 0.1 if label == BEST else None
                rows.append(dict(model="plucks_a + plucks_b", metric=f"merge {label} w={w:g}: barrier vs plain's "
                                 f"({barrier:+.2f} vs {plain[w]:+.2f})", measured=f"{d:.2f}",
                                 ratio=round(barrier / plain[w], 3), target=target))
                if label == BEST:
                    rows.append(dict(model="plucks_a + plucks_b", metric=f"merge {label} w={w:g}: loudness vs "
                                     "parents' mean (dB)", measured=f"{level - loud:+.1f}",
                                     ratio=round(abs(level - loud), 2), target=2.0))
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {figures['seconds'][label]:.0f} |")
    return lines
