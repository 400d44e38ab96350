"""Pooled latent statistics over many files, in bounded memory.

Moments (mean, covariance, correlation, min, max) stream: each file is
loaded, folded into float64 running sums with Chan's pairwise update
(numerically safe for hours of frames) and dropped, so memory holds one file
plus ``latent_dims x latent_dims`` numbers.

Exact quartiles (``--iqr``) cannot stream.  Every frame's values are copied
into one preallocated float32 ``(latent_dims, frames)`` buffer whose size is known
up front from the file headers, then each row is partitioned in place
(``ndarray.partition``, O(frames)) at the ranks the quartiles need.  Peak
memory is therefore the corpus once, in float32, plus one file: a numpy
reference that loads everything holds the corpus at least twice (the loaded
arrays plus their concatenation) and ``np.cov`` a float64 copy on top.
Quantiles use numpy's default ("linear") definition, so the median is the
true median, not the midhinge.

Discrete latents (codebook indices, see :mod:`ravekit.io.codes`) also stream
into per-dim code histograms; their moments are kept for the plots, but the
histograms are what codes are drawn from.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ravekit.errors import RavekitError
from ravekit.generate.stats import Stats
from ravekit.io.codes import check_codes, histogram
from ravekit.io.latents import Latents, Sidecar, check_latent_wav_rate

CHUNK_FRAMES = 1 << 18  # bounds the float64 temporaries of one file
QUARTILES = (0.25, 0.5, 0.75)


def moments(n: int, mean: np.ndarray, m2: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> dict:
    """The :class:`Stats` fields of ``n >= 2`` frames from their running sums."""
    cov = m2 / (n - 1)
    cov = (cov + cov.T) / 2  # exact symmetry for eigh later
    std = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    constant = hi == lo
    std[constant] = 0.0
    safe = np.where(std > 0, std, 1.0)
    corr = np.clip(cov / np.outer(safe, safe), -1.0, 1.0)
    corr[constant, :] = 0.0
    corr[:, constant] = 0.0
    np.fill_diagonal(corr, 1.0)
    return dict(mean=mean, std=std, cov=cov, corr=corr, min=lo, max=hi)


class MomentAccumulator:
    """Running count, mean, co-moment matrix, min and max of ``(latent_dims, frames)`` blocks.

    Parameters
    ----------
    latent_dims : int > 0
    """

    def __init__(self, latent_dims: int):
        self.n = 0
        self.mean = np.zeros(latent_dims)
        self.m2 = np.zeros((latent_dims, latent_dims))
        self.lo = np.full(latent_dims, np.inf)
        self.hi = np.full(latent_dims, -np.inf)

    def add(self, x: np.ndarray) -> None:
        """Fold in ``x``, an ``np.ndarray [shape=(latent_dims, frames)]``, in chunks of float64."""
        for start in range(0, x.shape[1], CHUNK_FRAMES):
            block = x[:, start:start + CHUNK_FRAMES]
            nb = block.shape[1]
            mb = block.mean(axis=1, dtype=np.float64)
            centred = block - mb[:, None]  # float64, one chunk only
            self.combine(nb, mb, centred @ centred.T, block.min(axis=1), block.max(axis=1))

    def combine(self, nb: int, mb: np.ndarray, m2b: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        """Fold in the moments of ``nb`` more frames (Chan, Golub and LeVeque's parallel update, exact).

        ``mb``: their mean ``(latent_dims,)``; ``m2b``: their co-moment matrix (``cov * (nb - 1)``);
        ``lo``, ``hi``: their per-dim min and max.  Blocks of one file and shards' statistics
        (:mod:`ravekit.generate.stats_pool`) pool through this one rule.
        """
        n = self.n + nb
        delta = mb - self.mean
        self.m2 += m2b + np.outer(delta, delta) * (self.n * nb / n)
        self.mean += delta * (nb / n)
        self.n = n
        np.minimum(self.lo, lo, out=self.lo)
        np.maximum(self.hi, hi, out=self.hi)

    def moments(self) -> dict:
        """``mean``, ``std``, ``cov``, ``corr``, ``min``, ``max`` of what was added (2 frames or more)."""
        return moments(self.n, self.mean, self.m2, self.lo, self.hi)


def quartiles_in_place(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Q1, median, Q3 of each row of ``values``, reordering it.

    Same definition as ``np.quantile(..., method="linear")``; computed in
    float64.  The buffer's rows are partitioned in place: no copy.

    Parameters
    ----------
    values : np.ndarray [shape=(latent_dims, frames)]
        Reordered in place.

    Returns
    -------
    q1, median, q3 : np.ndarray [shape=(latent_dims,), dtype=float64]
    """
    n = values.shape[1]
    pos = [(n - 1) * q for q in QUARTILES]
    ranks = sorted({r for p in pos for r in (int(np.floor(p)), min(int(np.floor(p)) + 1, n - 1))})
    out = np.empty((len(QUARTILES), values.shape[0]))
    for d in range(values.shape[0]):
        row = values[d]
        row.partition(ranks)
        for i, p in enumerate(pos):
            lo = int(np.floor(p))
            a, b = float(row[lo]), float(row[min(lo + 1, n - 1)])
            out[i, d] = a + (b - a) * (p - lo)
    return out[0], out[1], out[2]


def stats_of_frames(frames: np.ndarray, *, quartiles: bool = False, codebook_size: int | None = None) -> Stats:
    """Statistics of frames held in memory (what a prior generated), as :func:`compute_stats` pools files.

    Parameters
    ----------
    frames : np.ndarray [shape=(frames, latent_dims)]
    quartiles : bool
        Also compute median, Q1 and Q3.
    codebook_size : int > 0 or None
        A discrete model's codebook size: code histograms are counted too.

    Returns
    -------
    stats : Stats
        One frame has no spread: its std, covariance and correlation are those of a constant.
    """
    n, dims = frames.shape
    x = frames.T.astype(np.float64)
    if n >= 2:
        acc = MomentAccumulator(dims)
        acc.add(x)
        parts = acc.moments()
    else:
        parts = {"mean": x[:, 0].copy(), "std": np.zeros(dims), "cov": np.zeros((dims, dims)), "corr": np.eye(dims),
                 "min": x[:, 0].copy(), "max": x[:, 0].copy()}
    stats = Stats(latent_dims=dims, frames=n, **parts)
    if quartiles:
        stats.q1, stats.median, stats.q3 = quartiles_in_place(frames.T.astype(np.float32))
    if codebook_size:
        stats.codebook_size, stats.histograms = codebook_size, histogram(frames.T, codebook_size)
    return stats


def probe_latent_file(path: os.PathLike | str) -> tuple[int, int]:
    """``(latent_dims, frames)`` of a latent file from its header, without reading the data."""
    p = Path(path)
    try:
        if p.suffix.lower() == ".wav":
            import soundfile as sf


            info = sf.info(str(p))
            check_latent_wav_rate(p, info.samplerate)
            return int(info.channels), int(info.frames)
        arr = np.load(p, mmap_mode="r", allow_pickle=False)
        shape = arr.shape
        if len(shape) == 2:
            return int(shape[0]), int(shape[1])
        if len(shape) == 3 and shape[0] == 1:
            return int(shape[1]), int(shape[2])
    except RavekitError:
        raise
    except Exception:  # noqa: BLE001 - let the full reader give its precise message
        pass

    latents = Latents.load(p)  # raises a precise error for a bad file
    return latents.latent_dims, latents.frames


def material_codebook(paths: Sequence[os.PathLike | str], model_codebook: int | None) -> int | None:
    """The codebook size of the inputs' codes, or ``None`` for continuous latents.

    encoder.py's sidecars say it (``codebook_size``: a number, or ``null`` for a
    continuous model); inputs whose sidecars do not (other tools, older files)
    take ``model_codebook``.  Inputs that disagree are refused, naming one.
    """

    said: tuple[os.PathLike | str, int | None] | None = None
    for p in paths:
        meta = Sidecar.read(p).raw
        if "codebook_size" not in meta:
            continue
        size = meta["codebook_size"]
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise RavekitError(f"{p}: its sidecar's codebook_size {size!r} is not a positive whole number; "
                               "encode the audio again")
        if said is None:
            said = (p, size)
        elif size != said[1]:
            def what(n):
                return f"codes of a codebook of {n}" if n else "continuous latents"
            raise RavekitError(f"{p}: holds {what(size)} but {said[0]} holds {what(said[1])}; "
                               "pool only latents of one model")
    return said[1] if said else model_codebook


def compute_stats(paths: Sequence[os.PathLike | str], quartiles: bool = False,
                  warn: Callable[[str], None] | None = None,
                  progress: Callable[[int], None] | None = None, codebook_size: int | None = None) -> Stats:
    """Statistics of all latent frames of ``paths``, pooled.

    Parameters
    ----------
    paths : sequence of str or os.PathLike
        Latent files (``.npy`` or latent WAV), all with the same ``latent_dims``.
    quartiles : bool
        Also compute median, Q1 and Q3 exactly (holds the corpus once in float32).
    warn : callable(str) or None
        Called with a message when inputs disagree on sr / ratio.
    progress : callable(int) or None
        Called with each file's index once it is folded in.
    codebook_size : int > 0 or None
        The codebook size of the model (``--model``) when it is discrete, for
        inputs whose sidecars do not say; the sidecars' word wins.

    Returns
    -------
    stats : Stats

    Raises
    ------
    RavekitError
        No inputs, mismatched dims (naming the odd file), fewer than 2 frames,
        discrete and continuous latents mixed, a value of discrete latents that is not a code.
    """

    if not paths:
        raise RavekitError("no latent files to analyse; pass .npy or latent WAV files or folders with --input")
    shapes = [probe_latent_file(p) for p in paths]  # fail fast, before a long pass
    dims = shapes[0][0]
    for p, (d, _) in zip(paths, shapes):
        if d != dims:
            raise RavekitError(
                f"{p}: has {d} latent dims but {paths[0]} has {dims}; pool only latents of one model"
            )
    total = sum(f for _, f in shapes)
    if total < 2:
        raise RavekitError(
            f"{paths[0]}: only {total} latent frame in all inputs; a spread needs at least 2, pass longer inputs"
        )
    codebook_size = material_codebook(paths, codebook_size)
    hist = np.zeros((dims, codebook_size), dtype=np.int64) if codebook_size else None
    acc = MomentAccumulator(dims)
    buf = np.empty((dims, total), dtype=np.float32) if quartiles else None
    filled = 0
    sr = ratio = None
    models: set[tuple[str, str]] = set()  # (file, sha256) of the models the sidecars name
    unknown_model = False
    for i, (p, (_, frames)) in enumerate(zip(paths, shapes)):
        latents = Latents.load(p)
        x, meta = latents.z[0], latents.sidecar.raw
        if x.shape != (dims, frames):
            raise RavekitError(f"{p}: header says {(dims, frames)} but the data is {x.shape}; the file is damaged")
        file_sr, file_ratio = meta.get("sr"), meta.get("ratio")
        model = meta.get("model")
        if isinstance(model, dict) and isinstance(model.get("sha256"), str):
            models.add((str(model.get("file", "")), model["sha256"]))
        else:
            unknown_model = True
        if file_sr and file_ratio:
            if sr is None:
                sr, ratio = int(file_sr), int(file_ratio)
            elif (int(file_sr), int(file_ratio)) != (sr, ratio) and warn:
                warn(f"{p}: made at sr {file_sr} / ratio {file_ratio}, not {sr} / {ratio} like earlier inputs; "
                     "pooling latents of different models")
        if hist is not None and codebook_size:
            check_codes(x, codebook_size, p, f"a codebook of {codebook_size}",
                        "analyse only codes encoded by one discrete model")
            hist += histogram(x, codebook_size)
        acc.add(x)
        if buf is not None:
            buf[:, filled:filled + frames] = x
            filled += frames
        del latents, x
        if progress:
            progress(i)
    stats = Stats(latent_dims=dims, frames=acc.n, sr=sr, ratio=ratio, sources=[str(p) for p in paths],
                  codebook_size=codebook_size, histograms=hist, **acc.moments())
    if len({sha for _, sha in models}) == 1 and not unknown_model:  # one model made them all: on record
        name, sha = sorted(models)[0]
        stats.model = {"file": name, "sha256": sha}
    if buf is not None:
        stats.q1, stats.median, stats.q3 = quartiles_in_place(buf)
    return stats
