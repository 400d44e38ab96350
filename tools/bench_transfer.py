"""Benchmark rows for ``decoder.py --encoder A --map``: how far transfer lands from B's own resynthesis.

On the trained pair beside $RAVE_TEST_MODELS (``../trained-models/plucks_a.ts`` -> ``plucks_b.ts``) and
the 8 x 5 s of plucks in ``../audio/``, four folds: each fits a map on 6 files (30 s) and holds 2 out.
For every held-out file, through ``decoder.py`` itself: B's own resynthesis (``-m B --seed 1``), raw
transfer (``-m B --encoder A``) and mapped transfer (``--map``, the fold's map), and A's ``.npy``
latents (``encoder.py -m A``) decoded through the map, all with the default seed 0.  The reference
has its own seed: with the same seed, raw transfer and B's resynthesis fill B's dims 9-128 with the
very same noise, which brings raw transfer closer than any independent draw (as in Pd, where nn~
seeds nothing) would be; that figure is given too, as information.  Distance: the multi-scale spectral distance of
:mod:`ravekit.engine.distance` (RAVE's ``AudioDistanceV1``) of each transfer to B's resynthesis.
Rows: raw, mapped (ratio to raw; target <= 1/3), mapped from latents, the floor (B's own posterior
means over all its dims, decoded: what a perfect map would give), the held-out R².
Fit time: ``fit_map`` on 60 s of audio vs encoding the same 60 s with A and with B (``Encoder``,
as encoder.py does), medians of --repeat, interleaved; target <= 1.0.
"""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

TARGET_RATIO, TARGET_FIT = 1 / 3, 1.0


def trained_pair() -> tuple[Path, Path, list[Path]] | None:
    """``plucks_a.ts``, ``plucks_b.ts`` and the 8 audio files, beside $RAVE_TEST_MODELS; None when absent."""
    folder = os.environ.get("RAVE_TEST_MODELS")
    if not folder:
        return None
    shared = Path(folder).resolve().parent
    a, b = shared / "trained-models" / "plucks_a.ts", shared / "trained-models" / "plucks_b.ts"
    audio = sorted((shared / "audio").glob("plucks_777_*.wav"))
    return (a, b, audio) if a.exists() and b.exists() and len(audio) == 8 else None


def _run(command, *args) -> None:
    """``command.main(args)`` in this process, quiet; a failure stops the bench with its message."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = command.main([str(a) for a in args] + ["-q"])
    if code != 0:
        raise RuntimeError(f"{command.__name__} {' '.join(map(str, args))}: exit {code}: {err.getvalue().strip()}")


def _read(path: Path) -> np.ndarray:
    import soundfile as sf

    return sf.read(str(path), dtype="float32", always_2d=True)[0].T


def quality(a: Path, b: Path, audio: list[Path], work: Path) -> dict:
    """Distances to B's resynthesis of raw, mapped and latents-mapped transfer over four folds."""
    import torch

    import decoder
    import encoder
    from ravekit.engine.distance import spectral_distance
    from ravekit.engine.latent_map import MeanEncoding
    from ravekit.engine.latent_map_file import load_map
    from ravekit.engine.model import load_model

    found: dict[str, list[float]] = {"raw": [], "raw_same_seed": [], "mapped": [], "latents": [], "floor": [],
                                     "r2": [], "r2_exported": []}
    b_model = load_model(b, "cpu")
    for k in range(4):
        held = audio[2 * k:2 * k + 2]
        fit = [p for p in audio if p not in held]
        fold = work / f"fold{k}"
        _run(decoder, "-m", b, "-i", *held, "-o", fold / "own", "--force", "--seed", "1")
        _run(decoder, "-m", b, "-i", *held, "-o", fold / "own0", "--force")
        _run(decoder, "-m", b, "--encoder", a, "-i", *held, "-o", fold / "raw", "--force")
        _run(decoder, "-m", b, "--encoder", a, "--map", "fit", "--map_audio", *fit, "--map_holdout", *held,
             "-i", *held, "-o", fold / "mapped", "--force")
        saved = fold / "mapped" / f"{a.stem}_to_{b.stem}.map.npz"
        _run(encoder, "-m", a, "-i", *held, "-o", fold / "lat", "--force")
        _run(decoder, "-m", b, "--encoder", a, "--map", saved, "-i", fold / "lat", "-o", fold / "latmapped",
             "--force")
        summary = load_map(saved).meta["maps"]["audio"]
        found["r2"].append(summary["r2_holdout"])
        found["r2_exported"].append(float(np.mean(summary["r2_holdout_exported_dims"])))
        for path in held:
            own = _read(fold / "own" / (path.stem + ".wav"))
            raw = _read(fold / "raw" / (path.stem + ".wav"))
            # The floor: B's own posterior means over all its dims, decoded (what a perfect map would give).
            x = torch.from_numpy(_read(path))[None]
            means = b_model.decode(MeanEncoding(b_model).encode(x))[0].numpy()[:, :x.shape[-1]]
            found["floor"].append(spectral_distance(own, means))
            found["raw_same_seed"].append(spectral_distance(_read(fold / "own0" / (path.stem + ".wav")), raw))
            for key, sub in (("raw", "raw"), ("mapped", "mapped"), ("latents", "latmapped")):
                found[key].append(spectral_distance(own, _read(fold / sub / (path.stem + ".wav"))))
    return {key: float(np.mean(values)) for key, values in found.items()}


def fit_time(a: Path, b: Path, audio: list[Path], work: Path, repeat: int) -> tuple[float, float]:
    """Median seconds of fitting a map on 60 s of audio, and of encoding those 60 s with A and with B."""
    import soundfile as sf

    from ravekit.engine.encode import Encoder
    from ravekit.engine.latent_map_file import fit_map
    from ravekit.engine.model import load_model

    work.mkdir(parents=True, exist_ok=True)
    whole = np.concatenate([sf.read(str(p), dtype="float32")[0] for p in audio])
    minute = work / "minute.wav"
    sf.write(str(minute), np.concatenate([whole, whole])[:60 * 44100], 44100, subtype="FLOAT")
    ma, mb = load_model(a, "cpu"), load_model(b, "cpu")
    fits, encodes = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        fit_map(ma, mb, [minute])
        fits.append(time.perf_counter() - t)
        t = time.perf_counter()
        for model in (ma, mb):
            list(Encoder(model).encode_file(minute))
        encodes.append(time.perf_counter() - t)
    return statistics.median(fits), statistics.median(encodes)


def transfer_rows(rows: list, work: Path, repeat: int = 3) -> None:
    """Append the ``transfer`` group's rows; nothing when the trained pair is not there."""
    pair = trained_pair()
    if pair is None:  # said, not silently left out: the table would just miss the group's rows
        print("bench: transfer: no trained-models/ and audio/ beside $RAVE_TEST_MODELS; skipped", file=sys.stderr)
        return
    a, b, audio = pair
    name = f"{a.stem} -> {b.stem}"
    q = quality(a, b, audio, work)
    rows.append(dict(model=name, metric="raw transfer: spectral distance to B's own resynthesis (held out)",
                     measured=round(q["raw"], 3), ratio=None, target=None))
    rows.append(dict(model=name, metric="raw transfer vs B's resynthesis with the same seed (shared noise)",
                     measured=round(q["raw_same_seed"], 3), ratio=None, target=None))
    rows.append(dict(model=name, metric="mapped transfer (--map, full dims): distance, ratio to raw",
                     measured=round(q["mapped"], 3), ratio=round(q["mapped"] / q["raw"], 3), target=TARGET_RATIO))
    rows.append(dict(model=name, metric="mapped from A's .npy latents (8 dims): distance, ratio to raw",
                     measured=round(q["latents"], 3), ratio=round(q["latents"] / q["raw"], 3), target=None))
    rows.append(dict(model=name, metric="floor: B's own posterior means, all dims: distance, ratio to raw",
                     measured=round(q["floor"], 3), ratio=round(q["floor"] / q["raw"], 3), target=None))
    rows.append(dict(model=name, metric="map R² on held-out audio: all dims (weighted) / B's 8 exported dims",
                     measured=f"{q['r2']:.3f} / {q['r2_exported']:.3f}", ratio=None, target=None))
    fit, encode = fit_time(a, b, audio, work / "time", repeat)
    rows.append(dict(model=name, metric="fit on 60 s vs encoding it with A and B (s)",
                     measured=f"{fit:.2f} / {encode:.2f}", ratio=round(fit / encode, 3), target=TARGET_FIT))
