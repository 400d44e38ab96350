"""Latent file formats: the contract between every script of the toolkit.

Two containers hold the same array:

``.npy``
    float32, shape ``(1, latent_dims, frames)``, exactly what ``model.encode``
    returns, so ``model.decode(torch.from_numpy(np.load(f)))`` works.  Readers
    also accept ``(latent_dims, frames)`` (files from other tools).
latent WAV
    32-bit float WAV with ``frames`` sample frames of ``latent_dims`` channels,
    header rate ``round(sr / ratio)``; Pure Data plays it from tables.

Either may have a JSON sidecar with the same stem (``song.npy`` ->
``song.json``) holding what the array alone cannot say: the exact latent
rate, the model, the source and the seed.  Readers work without it.

:class:`Latents` is the artifact: the array and its :class:`Sidecar`, read
and written as one (``Latents.load``, ``Latents.save``), with the one rule
that says how it differs from a model or a run (``Sidecar.mismatches``).
The containers themselves are in :mod:`ravekit.io.latent_arrays`.
"""


from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ravekit import __version__
from ravekit.choices import LATENT_EXTENSIONS  # noqa: F401 (re-exported)
from ravekit.errors import RavekitError
from ravekit.io import formats
from ravekit.io.files import OutputSet, read_json, write_json
from ravekit.io.latent_arrays import (  # noqa: F401 (re-exported: the readers' checks)
    AUDIO_RATE_FLOOR,
    check_array,
    check_latent_wav_rate,
    load_npy,
    read_latent_wav,
    write_latent_wav,
    write_npy,
)
from ravekit.io.records import Mismatch, ModelFacts, mismatches

FORMAT = formats.LATENTS
FORMAT_VERSION = 1
PD_MAX_CHANNELS = 64  # Pure Data's soundfiler reads at most this many channels of a WAV


def sidecar_path(path: os.PathLike | str) -> Path:
    """``song.npy`` -> ``song.json``."""
    return Path(path).with_suffix(".json")


def make_sidecar(*, sr: int, ratio: int, latent_dims: int, frames: int, n_channels: int | None = None,
                 model: dict | None = None, source: dict | None = None, seed: int | None = None,
                 created_by: str = "", **extra) -> dict:
    """The sidecar dict for a latent array.

    Parameters
    ----------
    sr : audio sample rate of the model, Hz.
    ratio : audio samples per latent frame.
    latent_dims, frames : the array's shape ``(1, latent_dims, frames)``.
    model : ``{"file": name, "sha256": hex}`` of the model that made it.
    source : what it was made from (``file``, ``samples``, ``duration``, ...).
    extra : further sections (e.g. ``generator``), stored as given.
    """
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "ravekit_version": __version__,
        "created_by": created_by,
        "sr": int(sr),
        "ratio": int(ratio),
        "latent_rate": sr / ratio,
        "latent_dims": int(latent_dims),
        "frames": int(frames),
        "n_channels": n_channels,
        "model": model,
        "source": source,
        "seed": seed,
    }
    meta.update(extra)
    return meta


# What each field a reader uses must hold when present and not null: (test, what to say).
def _positive(value: object) -> bool:
    return _whole(value) is not None and value > 0  # type: ignore[operator]


_FIELDS: dict[str, tuple[Callable[[object], bool], str]] = {
    "format_version": (_positive, "a whole number from 1"),
    "sr": (_positive, "a whole number of Hz above 0"),
    "ratio": (_positive, "a whole number of samples per latent frame above 0"),
    "latent_dims": (_positive, "a whole number of dims above 0"),
    "frames": (lambda v: _whole(v) is not None and v >= 0, "a whole number of frames"),  # type: ignore[operator]
    "n_channels": (_positive, "a whole number of audio channels above 0"),
    "codebook_size": (_positive, "a whole number of codes above 0"),
    "seed": (lambda v: _whole(v) is not None and v >= 0, "a whole number from 0"),  # type: ignore[operator]
    "latent_rate": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0,
                    "a number of frames per second above 0"),
    "discrete": (lambda v: isinstance(v, bool), "true or false"),
    **{key: (lambda v: isinstance(v, dict), "an object ({...})")
       for key in ("model", "source", "processing", "generator", "prior")},
}


def check_sidecar(meta: dict, side: os.PathLike | str) -> None:
    """Refuse a sidecar whose fields hold the wrong type (hand-edited, or another tool's), naming the field.

    ``null`` or a missing field is "not known"; ``meta`` is the parsed JSON object of ``side``.
    """
    for key, (ok, what) in _FIELDS.items():
        value = meta.get(key)
        if value is not None and not ok(value):
            text = json.dumps(value)
            shown_value = text if len(text) <= 40 else text[:37] + "..."
            raise RavekitError(f"{side}: {key!r} should be {what}, not {shown_value}; correct it, or delete the "
                               "sidecar to read the latents without it")


def _whole(value: object) -> int | None:
    """``value`` when it is a whole number (not a bool), else None: what a hand-edited sidecar may hold."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Sidecar:
    """The sidecar of a latent file, with typed access to what readers use.

    ``raw`` is the JSON as read or made (:func:`make_sidecar`), every key
    kept, so that a sidecar read and written again is the same.  An empty
    ``raw`` is no sidecar (files from other tools): none is written for it.
    :meth:`read` refuses a field of the wrong type (:func:`check_sidecar`);
    one made in memory with a wrong type reads as absent.
    """

    raw: dict = field(default_factory=dict)

    @classmethod
    def read(cls, path: os.PathLike | str) -> Sidecar:
        """The sidecar of latent file ``path`` (empty when there is none), refusing a newer format."""
        side = sidecar_path(path)
        if not side.exists():
            return cls()
        meta = read_json(side)
        check_sidecar(meta, side)
        version = meta.get("format_version", 1)
        if meta.get("format") == FORMAT and isinstance(version, int) and version > FORMAT_VERSION:
            raise RavekitError(f"{side}: written by a newer ravekit (format {version}); upgrade ravekit")
        return cls(meta)

    def write(self, path: os.PathLike | str) -> Path:
        """Write it beside latent file ``path``, atomically; returns the sidecar's path."""
        return write_json(sidecar_path(path), self.raw)

    def updated(self, **changes: object) -> Sidecar:
        """A copy with ``changes`` as top-level keys."""
        return Sidecar({**self.raw, **changes})

    @property
    def format(self) -> str | None:
        """``ravekit.latents`` for sidecars written by ravekit."""
        value = self.raw.get("format")
        return value if isinstance(value, str) else None

    @property
    def sr(self) -> int | None:
        """The audio sample rate of the model the latents belong to, Hz."""
        return _whole(self.raw.get("sr"))

    @property
    def ratio(self) -> int | None:
        """Audio samples per latent frame of that model."""
        return _whole(self.raw.get("ratio"))

    @property
    def seed(self) -> int | None:
        """The seed the latents were made with."""
        return _whole(self.raw.get("seed"))

    @property
    def model(self) -> dict:
        """The model that made them: ``file``, ``sha256``, ``original_name`` (``{}`` if unknown)."""
        value = self.raw.get("model")
        return value if isinstance(value, dict) else {}

    @property
    def source(self) -> dict:
        """What they were made from (``file``, ``samples``, ``duration``, ...; ``{}`` if unknown)."""
        value = self.raw.get("source")
        return value if isinstance(value, dict) else {}

    @property
    def processing(self) -> dict:
        """The settings that, with the seed and the model, reproduce them (``{}`` if unknown)."""
        value = self.raw.get("processing")
        return value if isinstance(value, dict) else {}

    @property
    def source_samples(self) -> int | None:
        """The source's length in samples at the model's rate, when known: what the decoder trims to."""
        samples = _whole(self.source.get("samples"))
        return samples if samples is not None and samples > 0 else None

    def mismatches(self, model: ModelFacts, compare: Iterable[str], seed: int | None = None,
                   processing: dict | None = None) -> list[Mismatch]:
        """What of ``compare`` (``model``, ``ratio``, ``seed``, ``processing`` keys) differs from ``model``
        and a run's ``seed`` and ``processing``, in that order (:func:`ravekit.io.records.mismatches`).

        The encoder's resume compares the model, seed and its settings; the
        decoder's check of latents the ratio and the model.
        """
        return mismatches(self.raw, model, compare, seed, processing)


@dataclass
class Latents:
    """A latent array with its sidecar: what encoder.py yields and writes, decoder.py reads and decodes.

    Attributes
    ----------
    z : np.ndarray, float32, shape ``(1, latent_dims, frames)``
    sidecar : :class:`Sidecar` (empty when the file had none)
    header_rate : int or None
        The header rate of a latent WAV read from disk (``round(sr / ratio)``); None otherwise.
    """

    z: np.ndarray
    sidecar: Sidecar = field(default_factory=Sidecar)
    header_rate: int | None = None

    @property
    def latent_dims(self) -> int:
        """Latent dims (``z.shape[1]``)."""
        return int(self.z.shape[1])

    @property
    def frames(self) -> int:
        """Latent frames (``z.shape[2]``)."""
        return int(self.z.shape[2])

    @classmethod
    def load(cls, path: os.PathLike | str) -> Latents:
        """Read ``.npy`` (never unpickling) or latent WAV, and its sidecar (:meth:`Sidecar.read`).

        Raises ``RavekitError`` naming the file for anything that is not latents.
        """
        p = Path(path)
        if p.suffix.lower() == ".wav":
            z, rate = read_latent_wav(p)
            return cls(z, Sidecar.read(p), rate)
        z = load_npy(p)
        return cls(z, Sidecar.read(p))

    def save(self, path: os.PathLike | str, *, double: bool = False, warn: Callable[[str], None] | None = None,
             rate: int | None = None) -> Path:
        """Write ``path``: a latent WAV when it ends in ``.wav``, else ``.npy``; returns the path.

        The array and its sidecar (when not empty) are written as one
        :class:`~ravekit.io.files.OutputSet`: both to temporary names, then the
        old sidecar removed, the array renamed into place and the sidecar last.
        A failed write (a full disk) leaves the earlier pair as it was, and an
        array without its sidecar is known to be unfinished.  A WAV's header rate is
        ``rate``, by default ``round(sr / ratio)`` from the sidecar (the exact
        rate stays in the sidecar); ``double`` writes 64-bit floats, which Pure
        Data cannot read, and ``warn`` hears when the length needs RF64.
        """
        if Path(path).suffix.lower() != ".wav":
            return self._write(path, None)
        if rate is None:
            sr, ratio = self.sidecar.sr, self.sidecar.ratio
            if not sr or not ratio:
                raise RavekitError(f"{path}: a latent WAV's header needs the sample rate and ratio, and the "
                                   "sidecar has none; save as .npy or give the rate")
            rate = round(sr / ratio)
        return self._write(path, max(1, int(rate)), double, warn)

    def _write(self, path: os.PathLike | str, rate: int | None, double: bool = False,
               warn: Callable[[str], None] | None = None) -> Path:
        """The one writer: ``.npy`` when ``rate`` is None, else a latent WAV at that header rate."""
        z = check_array(np.asarray(self.z), path)
        if not self.sidecar.raw:
            return write_npy(path, z) if rate is None else write_latent_wav(path, z, rate, double, warn)
        with OutputSet([Path(path), sidecar_path(path)]) as staged:  # the sidecar last: the pair's marker
            write_npy(path, z) if rate is None else write_latent_wav(path, z, rate, double, warn)
            self.sidecar.write(path)
            staged.commit()
        return Path(path)
