"""Running a pattern on its bases, and writing the result with its sidecar.

A file's generator (:func:`ravekit.seeds.file_rng`) feeds first the draws
of its bases, then the pattern's own choices: the same seed gives
byte-identical files.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ravekit.errors import RavekitError
from ravekit.io.codes import first_bad_code, show, valid_range
from ravekit.io.latents import Latents, Sidecar


def make_pattern(module, name: str, stats, bases: list, rng, *, iqr: bool, num_loops: int, options: dict):
    """Run the pattern on its bases: float32 ``(frames, latent_dims)``.

    Parameters
    ----------
    module : module
        The pattern; ``module.generate(bases, num_loops, rng, stats, **options)`` makes the frames.
    name : str
        Its name, for messages.
    stats : Stats
        What the bases follow (drawn from it, or statistics of a prior's frames); patterns vary by it.
    bases : list of np.ndarray [shape=(base_frames, latent_dims)]
        ``module.NUM_BASES`` of them.
    rng : np.random.Generator
        The file's generator, after the bases were drawn from it.
    iqr : bool
        Robust statistics: the pattern sees them through ``stats.scale``.
    num_loops : int > 0
    options : dict
        The pattern's own flags.

    For discrete ``stats`` the bases hold codes, and so must the pattern's
    output: a value that is not a code of the codebook is refused, never
    rounded into one (codes are categories; the nearest index means nothing).
    """
    # Patterns see whether the run is robust through ``stats.scale`` (a shallow copy: arrays are shared).
    view = dataclasses.replace(stats, robust=iqr)
    try:
        out = module.generate(bases, num_loops, rng, view, **options)
    except RavekitError:
        raise
    except Exception as exc:  # noqa: BLE001 - a pattern (maybe a user's) failed
        raise RavekitError(f"pattern {name!r} failed: {type(exc).__name__}: {exc}") from None
    where = getattr(module, "__file__", None) or name
    try:
        arr = np.asarray(out)
    except (TypeError, ValueError):  # ragged lists, objects numpy cannot hold in one array
        arr = None
    numeric = arr is not None and arr.dtype.kind in "biuf"
    if arr is None or not numeric or arr.ndim != 2 or arr.shape[1] != stats.latent_dims or arr.shape[0] < 1:
        got = type(out).__name__
        if arr is not None and not (arr.ndim == 0 and arr.dtype.kind == "O"):  # not a bare object such as None
            got += f" of shape {arr.shape}" + ("" if numeric else f" and dtype {arr.dtype}")
        raise RavekitError(f"{where}: pattern {name!r} returned a {got}; generate() must return a numeric "
                           f"array of shape (frames, {stats.latent_dims}) with frames >= 1 (see patterns/__init__.py)")
    if not np.isfinite(arr).all():
        raise RavekitError(f"{where}: pattern {name!r} produced NaN or infinite values; fix the pattern")
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if stats.discrete:
        bad = first_bad_code(out.T, stats.codebook_size)
        if bad is not None:
            raise RavekitError(
                f"{where}: pattern {name!r} produced {show(bad[2])} at frame {bad[0] + 1}, dim {bad[1] + 1}, which is "
                f"not a code of the discrete model ({valid_range(stats.codebook_size)}); a pattern for discrete "
                "latents must only rearrange the bases' codes or draw codes (see patterns/__init__.py)")
    return out


def write_output(path: Path, array, *, embeddings: bool, double: bool, sr: int, ratio: int, meta: dict,
                 warn: Callable[[str], None] | None = None) -> Path:
    """Write a pattern as ``.npy`` latents or as a latent WAV, with its sidecar.

    ``path``'s ending chooses (:meth:`~ravekit.io.latents.Latents.save`): callers name ``.npy`` files
    with ``embeddings`` and ``.wav`` files without.

    Parameters
    ----------
    path : pathlib.Path
    array : np.ndarray [shape=(frames, latent_dims)]
        The pattern.
    embeddings : bool
        Write ``.npy`` ``[shape=(1, latent_dims, frames)]`` (--embeddings)
        instead of a WAV with one channel per latent dim.
    double : bool
        A 64-bit float WAV (--double).
    sr : int > 0
        The model's sample rate in Hz.
    ratio : int > 0
        Samples per latent frame; the WAV's header rate is ``round(sr / ratio)``
        (the exact rate goes in the sidecar).
    meta : dict
        The sidecar.
    warn : callable(str) or None

    Returns
    -------
    path : pathlib.Path
    """
    return Latents(array.T[None], Sidecar(meta)).save(path, double=double, warn=warn, rate=round(sr / ratio))
