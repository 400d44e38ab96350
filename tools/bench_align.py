"""Benchmark rows for ``averager.py --align``: how a merge of two exports of one architecture plays.

For the first two exports of one architecture in $RAVE_TEST_MODELS it merges them (linear, equal
weights) without and with ``--align`` and puts 3 s of a 220 Hz tone plus noise through ``forward``
of A, B and both merges, with one seed.  Rows (information, no target): each merge's output RMS
relative to the parents' mean RMS, and the RMS distance of its log-magnitude spectrum to A's and
to B's (A to B given for scale).  Weight matching itself is checked by tests/test_align.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _play(module, x: np.ndarray) -> np.ndarray:
    import torch

    torch.manual_seed(0)
    with torch.no_grad():
        return module.forward(torch.from_numpy(x)[None, None]).numpy().ravel()


def _log_spectrum(y: np.ndarray, n: int = 2048) -> np.ndarray:
    frames = np.lib.stride_tricks.sliding_window_view(y, n)[::n // 2] * np.hanning(n)
    return np.log(np.abs(np.fft.rfft(frames, axis=-1)).mean(0) + 1e-9)


def pair_of_one_architecture(models: list[Path]) -> tuple[Path, Path] | None:
    """The first two exports whose state_dicts have the same names and shapes, or None."""
    from ravekit.engine.model import load_module

    shapes = {}
    for path in models:
        if path.name == "demo.ts":
            continue
        sd = load_module(path, "cpu").state_dict()
        key = tuple(sorted((k, tuple(v.shape)) for k, v in sd.items()))
        if key in shapes:
            return shapes[key], path
        shapes[key] = path
    return None


def align_rows(models: list[Path], rows: list) -> None:
    from ravekit.engine.model import load_module
    from ravekit.merging.plan import merge_models

    pair = pair_of_one_architecture(models)
    if pair is None:
        return
    sr = int(load_module(pair[0], "cpu").sr)
    t = np.arange(3 * sr) / sr
    x = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.02 * np.random.default_rng(0).standard_normal(t.size))
    x = x.astype(np.float32)
    a, b = (_play(load_module(p, "cpu"), x) for p in pair)
    parents = (np.sqrt(np.mean(a ** 2)) + np.sqrt(np.mean(b ** 2))) / 2
    spec_a, spec_b = _log_spectrum(a), _log_spectrum(b)

    def distance(s1, s2) -> float:
        return float(np.sqrt(np.mean((s1 - s2) ** 2)))

    name = f"{pair[0].stem} + {pair[1].stem}"
    rows.append(dict(model=name, metric="log-spectrum distance A to B (scale)", measured=round(
        distance(spec_a, spec_b), 3), ratio=None, target=None))
    for label, align in (("unaligned", False), ("--align", True)):
        y = _play(merge_models(list(pair), align=align).module, x)
        spec = _log_spectrum(y)
        rows.append(dict(model=name, metric=f"{label} merge: output RMS vs parents' mean",
                         measured=f"{np.sqrt(np.mean(y ** 2)):.2e}", ratio=round(float(
                             np.sqrt(np.mean(y ** 2)) / parents), 3), target=None))
        rows.append(dict(model=name, metric=f"{label} merge: log-spectrum distance to A / B",
                         measured=f"{distance(spec, spec_a):.3f} / {distance(spec, spec_b):.3f}",
                         ratio=None, target=None))
