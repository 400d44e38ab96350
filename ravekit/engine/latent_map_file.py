"""A fitted latent map (:mod:`ravekit.engine.latent_map`) as an artefact: fit it, save it, load it, check it.

The file is an ``.npz`` read with ``allow_pickle=False``: the arrays of both
fits (``audio_weight``, ``audio_bias``, ``audio_r2_fit``, ``audio_r2_holdout``
and the same for ``latents_``) and ``meta``, one JSON string saying what it is
(``format`` ``ravekit.latent_map``, ``format_version``), both models (file,
sha256, dims, sr, ratio), the spaces, the ridge, the seed, the audio fitted and
held out (file, sha256, seconds) and the R² summaries.  Reading it needs only
numpy: ``json.loads(str(np.load(path)["meta"]))``.
"""

from __future__ import annotations

import json
import math
import os
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ravekit import __version__
from ravekit.choices import DEFAULT_CHUNK_SECONDS
from ravekit.engine.encode import Encoder
from ravekit.engine.latent_map import (
    DEFAULT_RIDGE,
    EXPORTED,
    FULL,
    POOR_R2,
    SHORT_FRAMES_PER_PARAMETER,
    Affine,
    MeanEncoding,
    check_mappable,
    encode_pair,
    fit_affine,
    full_space,
    r_squared,
    shared_reading,
    weighted_r2,
)
from ravekit.engine.model import ModelInfo, RaveModel
from ravekit.errors import RavekitError, first_line
from ravekit.io import formats
from ravekit.io.audio import probe
from ravekit.io.files import atomic_write, sha256_of

FORMAT, FORMAT_VERSION = formats.LATENT_MAP, 1
PARTS = ("audio", "latents")


def model_facts(info: ModelInfo) -> dict:
    return {"file": Path(info.path).name, "sha256": info.sha256, "latent_size": info.latent_size,
            "full_latent_size": info.full_latent_size, "sr": info.sr, "ratio": info.ratio}


@dataclass(frozen=True)
class LatentMap:
    """Both fits and what they were fitted on (``meta``, the file's JSON); ``path``/``sha256`` once saved or loaded."""

    meta: dict
    audio: Affine
    latents: Affine
    path: str = ""
    sha256: str = ""
    # Seconds the fit took, for the report; not saved, so the same fit is the same bytes.
    fit_seconds: float | None = None

    def part(self, kind: str) -> Affine:
        """The fit for inputs of ``kind`` (``"audio"`` or ``"latents"``)."""
        return self.audio if kind == "audio" else self.latents

    def check_pair(self, enc: ModelInfo, dec: ModelInfo) -> None:
        """Refuse (exit 2) this map for any pair but the one it was fitted for, by sha256."""
        was, now = (self.meta["encoder"], self.meta["decoder"]), (enc, dec)
        if was[0]["sha256"] != enc.sha256 or was[1]["sha256"] != dec.sha256:
            raise RavekitError(
                f"--map {self.path}: fitted for {was[0]['file']} -> {was[1]['file']} (sha256 {was[0]['sha256'][:12]}"
                f"... -> {was[1]['sha256'][:12]}...), not for --encoder {Path(now[0].path).name} -> --model "
                f"{Path(now[1].path).name} (sha256 {enc.sha256[:12]}... -> {dec.sha256[:12]}...); fit one for "
                "this pair with --map fit --map_audio FILES", 2)

    def to_record(self, kind: str) -> dict:
        """The record's ``map`` section: the file, its sha256, the fit used, and the order of operations."""
        part = self.part(kind)
        return {"file": Path(self.path).name, "sha256": self.sha256, "fit": kind, "space_in": part.space_in,
                "space_out": part.space_out, "dims_in": part.in_dims, "dims_out": part.out_dims,
                "order": "map, then --dims, --scale, --bias (on the map's output dims)"}

    def save(self, path: os.PathLike | str) -> LatentMap:
        """Write atomically; returns the map with its ``path`` and ``sha256``."""
        arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(self.meta, allow_nan=False))}
        for name in PARTS:
            part = self.part(name)
            arrays.update({f"{name}_weight": part.weight, f"{name}_bias": part.bias, f"{name}_r2_fit": part.r2_fit})
            if part.r2_holdout is not None:
                arrays[f"{name}_r2_holdout"] = part.r2_holdout

        def write(tmp: Path) -> None:
            # np.savez's zip entries carry the time of writing; fixed ones make the same fit the same bytes
            # (the same sha256), so runs that fit it at once (--jobs workers, --part shards) agree on the file.
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
                for name, array in arrays.items():
                    entry = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                    with archive.open(entry, "w", force_zip64=True) as f:
                        np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)

        atomic_write(path, write)
        return LatentMap(self.meta, self.audio, self.latents, str(path), sha256_of(path), self.fit_seconds)


def load_map(path: os.PathLike | str) -> LatentMap:
    """Read a map written by :meth:`LatentMap.save`; anything else is refused (exit 2) in one line."""
    bad = f"--map {path}: not a latent map written by ravekit"
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"PK\x03\x04":
                raise ValueError("not an .npz archive")
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise ValueError("its meta does not say format ravekit.latent_map")
            if int(meta.get("format_version", 0)) > FORMAT_VERSION:
                raise RavekitError(f"--map {path}: format version {meta['format_version']} is newer than this "
                                   f"ravekit reads ({FORMAT_VERSION}); upgrade ravekit or fit the map again", 2)
            parts = {}
            for name in PARTS:
                spaces = meta["maps"][name]
                w, b = data[f"{name}_weight"], data[f"{name}_bias"]
                if w.ndim != 2 or b.shape != (w.shape[0],) or not (np.isfinite(w).all() and np.isfinite(b).all()):
                    raise ValueError(f"its {name} map has the wrong shape or non-finite values")
                held = data[f"{name}_r2_holdout"] if f"{name}_r2_holdout" in data.files else None
                parts[name] = Affine(spaces["space_in"], spaces["space_out"], w, b, data[f"{name}_r2_fit"], held)
            for key in ("encoder", "decoder"):
                if not isinstance(meta[key].get("sha256"), str):
                    raise ValueError(f"its meta names no {key} sha256")
    except FileNotFoundError:
        raise RavekitError(f"--map {path}: file not found; give a map saved by --map fit, or fit one", 2) from None
    except RavekitError:
        raise
    except Exception as exc:  # noqa: BLE001 - a corrupt, truncated or foreign file: one line, no traceback
        raise RavekitError(f"{bad} ({first_line(exc)}); fit one with --map fit --map_audio FILES", 2) from None
    return LatentMap(meta, parts["audio"], parts["latents"], str(path), sha256_of(path))


def fit_map(enc: RaveModel, dec: RaveModel, files: Sequence[os.PathLike | str],
            holdout: Sequence[os.PathLike | str] = (), *, ridge: float = DEFAULT_RIDGE, seed: int | None = 0,
            channel_mode: str = "auto", chunk_seconds: float = DEFAULT_CHUNK_SECONDS, channels: list[int] | None = None,
            progress: Callable[[float], None] | None = None) -> tuple[LatentMap, list[str]]:
    """Encode ``files`` (and ``holdout``) with both models and fit the map.

    Returns the map (not yet saved) and warnings for the user: resampled
    audio, a short fit, a poor fit.  Refuses discrete models and models whose
    frames last differently (exit 2), and too little audio for the fit (exit 1).
    """

    check_mappable(enc.info, "--encoder")
    check_mappable(dec.info, "--model")
    a, b = enc.info, dec.info
    if a.ratio * b.sr != b.ratio * a.sr:
        raise RavekitError(f"--map: a latent frame lasts {1000 * a.ratio / a.sr:.2f} ms in {Path(a.path).name} and "
                           f"{1000 * b.ratio / b.sr:.2f} ms in {Path(b.path).name}; a map pairs frames one to one, "
                           "so it needs models whose frames last the same; use raw transfer with --dims", 2)
    started = time.perf_counter()
    spaces = [FULL if full_space(m) else EXPORTED for m in (enc, dec)]
    coders = [Encoder(MeanEncoding(m) if space == FULL else m, seed, channel_mode, chunk_seconds, channels)
              for m, space in zip((enc, dec), spaces)]

    def encoding(coder: Encoder) -> Callable:
        def run(path, reading=None):
            first = next(iter(coder.encode_file(path, reading, progress)))
            return first.z, first.sidecar.source["duration"], first.sidecar.source["sha256"]
        return run

    # Each file read (and resampled) once for both models, when they share a rate.
    read = (lambda path: shared_reading(path, a.sr)) if a.sr == b.sr else None

    warnings = []
    everything = list(files) + list(holdout)
    other = [p for p in everything if probe(p).sr not in (a.sr, b.sr)]
    if other:  # said once, not per file
        warnings.append(f"--map: {len(other)} of the {len(everything)} audio files (e.g. {other[0]}) are not at "
                        f"{a.sr} Hz; resampled to each model's rate for the fit")
    fitted = encode_pair(files, encoding(coders[0]), encoding(coders[1]), read)
    held = encode_pair(holdout, encoding(coders[0]), encoding(coders[1]), read) if holdout else []
    za, zb = (np.concatenate([getattr(e, s) for e in fitted], 1) for s in ("a", "b"))
    frames, seconds = za.shape[1], sum(e.seconds for e in fitted)
    if frames <= za.shape[0] + 1:
        raise RavekitError(f"--map_audio: {seconds:.1f} s of audio gives {frames} latent frames, but the map fits "
                           f"{za.shape[0] + 1} values per dim of {Path(b.path).name}; give at least "
                           f"{math.ceil(SHORT_FRAMES_PER_PARAMETER * (za.shape[0] + 1) / a.latent_rate)} s")
    parts = {}
    ha, hb = (np.concatenate([getattr(e, s) for e in held], 1) for s in ("a", "b")) if held else (None, None)
    for name, rows in (("audio", za.shape[0]), ("latents", a.latent_size)):
        w, bias = fit_affine(za[:rows], zb, ridge)
        r2_held = r_squared(w, bias, ha[:rows], hb) if ha is not None and hb is not None else None
        space_in = spaces[0] if name == "audio" else EXPORTED
        parts[name] = Affine(space_in, spaces[1], w, bias, r_squared(w, bias, za[:rows], zb), r2_held)
    need = SHORT_FRAMES_PER_PARAMETER * (za.shape[0] + 1)
    if frames < need:
        warnings.append(f"--map_audio: {seconds:.1f} s ({frames} frames) for {za.shape[0] + 1} values per dim is "
                        f"short; the fit may not carry over to other audio: give {need / a.latent_rate:.0f} s or more"
                        f"{'' if held else ', and check with --map_holdout'}")
    summary: dict[str, dict] = {}
    for name, part in parts.items():
        summary[name] = {"space_in": part.space_in, "space_out": part.space_out, "dims_in": part.in_dims,
                         "dims_out": part.out_dims, "r2_fit": weighted_r2(part.r2_fit, zb),
                         "r2_holdout": None if hb is None or part.r2_holdout is None
                         else weighted_r2(part.r2_holdout, hb),
                         # B's exported dims, what it plays from: the figures a user reads first.
                         "r2_fit_exported_dims": [round(float(v), 4) for v in part.r2_fit[:b.latent_size]],
                         "r2_holdout_exported_dims": None if part.r2_holdout is None
                         else [round(float(v), 4) for v in part.r2_holdout[:b.latent_size]]}
    judged = float(summary["audio"]["r2_holdout"] if held else summary["audio"]["r2_fit"])
    if judged < POOR_R2:
        warnings.append(f"--map: a poor fit: R² {judged:.2f} on the {'held-out' if held else 'fitting'} audio "
                        f"(below {POOR_R2}: the map explains less than half of what {Path(b.path).name} encodes); "
                        "fit on more, or more varied, audio like what you will transfer")
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "ravekit_version": __version__,
            "created_by": "decoder.py --map fit", "encoder": model_facts(a), "decoder": model_facts(b),
            "ridge": ridge, "seed": seed,
            "encoding": {"channel_mode": channel_mode,
                         "channels": None if channels is None else [c + 1 for c in channels],
                         # Full spaces are posterior means; exported dims are the model's own draws with the seed.
                         "encoder": spaces[0], "decoder": spaces[1]},
            "audio": [{"file": e.path, "sha256": e.sha256, "seconds": e.seconds} for e in fitted],
            "holdout": [{"file": e.path, "sha256": e.sha256, "seconds": e.seconds} for e in held],
            "seconds": seconds, "seconds_holdout": sum(e.seconds for e in held), "frames": frames,
            "maps": summary}
    return LatentMap(meta, parts["audio"], parts["latents"], fit_seconds=time.perf_counter() - started), warnings
