"""Pool statistics computed separately (one stats.json per shard of a corpus) into the statistics of the whole.

Every moment a stats.json holds pools exactly: the frame count adds up; the
mean, the co-moment matrix ``M2 = cov * (frames - 1)`` and from it ``cov``,
``std`` and ``corr`` combine with the parallel formulas of Chan, Golub and
LeVeque (1979)::

    n = n_a + n_b
    delta = mean_b - mean_a
    mean = mean_a + delta * n_b / n
    M2 = M2_a + M2_b + outer(delta, delta) * n_a * n_b / n

which is what :class:`ravekit.generate.pooling.MomentAccumulator` does file by
file on one machine; ``min`` and ``max`` pool as the min and max, and the code
histograms of discrete latents add up.  The result equals a one-machine
analysis of all the latents up to float64 rounding (about 1e-15 relative),
not an average of averages.

Quartiles (``--iqr``) do not pool: the median of the shards' medians is not the
median of the whole, and no summary short of every value gives exact
quartiles.  :func:`pool_stats` drops them and :func:`load_pooled` refuses a
request for them, saying what to do instead.

Statistics of different latents are refused, naming the difference: latent
dims, continuous or discrete (and the codebook size), sample rate and ratio,
the model that encoded them (its sha256, from the latents' sidecars), and a
latent file counted in two of them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ravekit.errors import RavekitError
from ravekit.generate.pooling import MomentAccumulator
from ravekit.generate.stats import Stats, load_stats

QUARTILES_DO_NOT_POOL = (
    "quartiles (--iqr) do not pool: the median of the shards' medians is not the median of all latents; "
    "for exact quartiles analyse every latent file in one run (generator.py --input ALL --iqr --stats_only, "
    "which holds the corpus once in float32 memory), or pool without --iqr")


def _describe_kind(stats: Stats) -> str:
    return f"codes of a codebook of {stats.codebook_size}" if stats.discrete else "continuous latents"


def check_poolable(parts: Sequence[Stats]) -> None:
    """Refuse statistics that are not of one kind of latents, naming the first difference and both files.

    Raises
    ------
    RavekitError
        Different latent dims, kinds (continuous/discrete, codebook size), sr / ratio, models,
        or a latent file that two of them counted (it would count twice).
    """
    first = parts[0]
    a = first.source or "the first statistics"
    seen: dict[str, str] = {}
    for part in parts:
        b = part.source or "these statistics"
        for what, mine, theirs in (
                ("latent dims", part.latent_dims, first.latent_dims),
                ("kind", _describe_kind(part), _describe_kind(first))):
            if mine != theirs:
                raise RavekitError(f"{b}: {what} {mine} but {a} has {theirs}; pool only statistics of latents "
                                   "of one model, analysed the same way")
        # An unknown rate or model (an older stats.json) is no difference; two known ones that differ are.
        if None not in (part.sr, part.ratio, first.sr, first.ratio) and (part.sr, part.ratio) != (first.sr,
                                                                                                   first.ratio):
            raise RavekitError(f"{b}: latents at sr {part.sr} / ratio {part.ratio} but {a} at sr {first.sr} / "
                               f"ratio {first.ratio}; pool only statistics of latents of one model")
        if part.model and first.model and part.model.get("sha256") != first.model.get("sha256"):
            raise RavekitError(
                f"{b}: latents of model {part.model.get('file')} (sha256 {str(part.model.get('sha256'))[:12]}) "
                f"but {a} of model {first.model.get('file')} (sha256 {str(first.model.get('sha256'))[:12]}); "
                "pool only statistics of latents of one model")
        for name in part.sources:
            key = os.path.normpath(name)
            if key in seen:
                raise RavekitError(f"{b}: counts {name}, which {seen[key]} counts too: it would be pooled twice; "
                                   "analyse disjoint shards (--shard K/N with one N)")
            seen[key] = b


def pool_stats(parts: Sequence[Stats]) -> Stats:
    """The statistics of all the latents that ``parts`` were computed from, exactly (see the module docstring).

    Parameters
    ----------
    parts : sequence of Stats, at least one
        Statistics of disjoint sets of latent files (checked by :func:`check_poolable`).

    Returns
    -------
    Stats
        Without quartiles (they do not pool); ``sources`` in the order given.
    """
    if not parts:
        raise RavekitError("no statistics to pool; pass stats.json files to --stats")
    check_poolable(parts)
    first = parts[0]
    acc = MomentAccumulator(first.latent_dims)
    for part in parts:
        acc.combine(part.frames, part.mean, part.cov * (part.frames - 1), part.min, part.max)
    hist = None
    if first.discrete:
        hist = sum((p.histograms for p in parts if p.histograms is not None),
                   np.zeros((first.latent_dims, first.codebook_size or 0), dtype=np.int64))
    known = [p for p in parts if p.sr is not None and p.ratio is not None]
    models = [p.model for p in parts if p.model]
    return Stats(latent_dims=first.latent_dims, frames=acc.n, **acc.moments(),
                 sr=known[0].sr if known else None, ratio=known[0].ratio if known else None,
                 sources=[s for p in parts for s in p.sources], codebook_size=first.codebook_size,
                 histograms=hist, model=dict(models[0]) if len(models) == len(parts) else None)


def load_pooled(paths: Sequence[os.PathLike | str], quartiles: bool = False) -> Stats:
    """Read each stats.json and pool them (one file is read as it is, quartiles and all).

    Raises
    ------
    RavekitError
        A file that does not load, statistics that do not pool (:func:`check_poolable`), or
        ``quartiles`` asked of more than one file (exit code 2).
    """
    parts = [load_stats(p) for p in paths]
    if len(parts) == 1:
        return parts[0]
    if quartiles and not parts[0].discrete:  # codes have no quartiles, pooled or not
        raise RavekitError(f"{len(parts)} statistics files: {QUARTILES_DO_NOT_POOL}", 2)
    return pool_stats(parts)
