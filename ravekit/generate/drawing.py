"""Drawing and writing generator.py's pattern files: bases, the pattern, each file with its sidecar.

Randomness: file ``i`` of a run gets its own generator,
``default_rng(SeedSequence(seed, spawn_key=(i,)))``, which feeds both the
distribution draws and the pattern's choices.  The same seed therefore gives
byte-identical files, and file ``i`` does not depend on ``--num_files``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from ravekit.commands.flags import check_seed
from ravekit.errors import RavekitError
from ravekit.generate.plan import Warn, check_size, output_name
from ravekit.generate.tempo import bpm_of, double_time_of, latent_rate


def file_rng(seed: int, index: int):
    """The generator of output file ``index``: independent of how many files are made."""
    import numpy as np

    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


def make_pattern(module, name: str, stats, distribution: str, iqr: bool, k: int, num_loops: int, rng,
                 options: dict, warn: Warn, bases: list | None = None):
    """Draw the bases (unless given, e.g. by a prior) and run the pattern: float32 ``(frames, latent_dims)``.

    Each base has ``k`` frames, or ``module.base_frames(k, num_loops, **options)`` when the pattern says.

    For discrete ``stats`` the bases hold codes, and so must the pattern's
    output: a value that is not a code of the codebook is refused, never
    rounded into one (codes are categories; the nearest index means nothing).
    """
    import numpy as np

    from ravekit.generate.distributions import sample

    if bases is None:
        size = int(module.base_frames(k, num_loops, **options)) if hasattr(module, "base_frames") else k
        bases = [sample(stats, distribution, size, rng, iqr=iqr, warn=warn) for _ in range(module.NUM_BASES)]
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
        from ravekit.io.codes import first_bad_code, show, valid_range

        bad = first_bad_code(out.T, stats.codebook_size)
        if bad is not None:
            raise RavekitError(
                f"{where}: pattern {name!r} produced {show(bad[2])} at frame {bad[0] + 1}, dim {bad[1] + 1}, which is "
                f"not a code of the discrete model ({valid_range(stats.codebook_size)}); a pattern for discrete "
                "latents must only rearrange the bases' codes or draw codes (see patterns/__init__.py)")
    return out


def write_output(path: Path, array, *, embeddings: bool, double: bool, sr: int, ratio: int, meta: dict,
                 warn: Warn | None = None) -> Path:
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
    from ravekit.io.latents import Latents, Sidecar

    return Latents(array.T[None], Sidecar(meta)).save(path, double=double, warn=warn, rate=round(sr / ratio))


def generate_files(*, module, pattern: str, stats, distribution: str, iqr: bool, k: int, num_loops: int,
                   num_files: int, seed: int, sr: int, ratio: int, output: Path, embeddings: bool,
                   double: bool, options: dict, max_frames: int, model_file: str | None,
                   stats_file: str, warn: Warn, on_file: Callable[[Path, object], None]) -> list[Path]:
    """Make ``num_files`` pattern files; ``on_file(path, array)`` follows each write."""
    from ravekit.io.latents import make_sidecar

    check_seed(seed)
    rate = latent_rate(sr, ratio)
    check_size(module, pattern, k, stats.latent_dims, num_loops, options, max_frames, rate)
    ext = ".npy" if embeddings else ".wav"
    inputs = {Path(s).resolve() for s in stats.sources}
    paths = []
    for index in range(num_files):
        path = output / output_name(pattern, distribution, iqr, k, seed, index, ext)
        if path.resolve() in inputs:
            raise RavekitError(f"{path}: is one of the inputs and would be overwritten; choose another --output")
        array = make_pattern(module, pattern, stats, distribution, iqr, k, num_loops, file_rng(seed, index),
                             options, warn)
        if array.shape[0] > max_frames:
            raise RavekitError(f"pattern {pattern!r} made {array.shape[0]} frames, more than --max_frames "
                               f"{max_frames}; lower --num_latents or --num_loops")
        meta = make_sidecar(
            sr=sr, ratio=ratio, latent_dims=stats.latent_dims, frames=array.shape[0],
            model={"file": Path(model_file).name} if model_file else None,
            source={"stats": stats_file, "files": len(stats.sources), "frames": stats.frames},
            seed=seed, created_by="generator.py", discrete=stats.discrete, codebook_size=stats.codebook_size,
            generator={
                "pattern": pattern, "pattern_options": options, "distribution": distribution, "iqr": iqr,
                "num_latents": k, "num_loops": num_loops, "index": index, "smoothing": stats.smoothing,
                "bpm": bpm_of(k, sr, ratio), "double_time_bpm": double_time_of(k, sr, ratio),
                "stats_source": stats_file,
            },
        )
        written = write_output(path, array, embeddings=embeddings, double=double, sr=sr, ratio=ratio, meta=meta,
                               warn=warn)
        paths.append(written)
        on_file(written, array)
    return paths
