"""generator.py ``--stats_only``: write the statistics (stats.json) and nothing else.

Either analyse latents (all of them, or the K-th of N shards of them, so that
shards can run on many machines), or pool several stats.json into one
(:mod:`ravekit.generate.stats_pool`).  The shard rule is the batch scripts':
the sorted list of inputs, every N-th file from the K-th, so N runs with
``--shard 1/N`` to ``N/N`` cover each file exactly once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from ravekit.errors import RavekitError
from ravekit.generate.plan import STATS_NAME, Unpublished, Warn, check_kind, check_outputs, gather_inputs, model_info
from ravekit.generate.pooling import compute_stats
from ravekit.generate.stats import save_stats
from ravekit.generate.stats_pool import load_pooled
from ravekit.io.claims import claim_output


def write_stats_only(*, inputs: Sequence[str] | None, stats_files: Sequence[str], extensions: Sequence[str],
                     stdin: TextIO | None, output: Path, iqr: bool, shard: tuple[int, int] | None,
                     model_file: str | None, force: bool, info: Warn, warn: Warn,
                     on_output: Callable[[Path], None], null: bool = False) -> Path | None:
    """Analyse ``inputs`` (or this ``shard`` of them) or pool ``stats_files``; write OUTPUT/stats.json.

    Parameters
    ----------
    inputs : latent files, folders or ``-``; or None with ``stats_files``.
    stats_files : stats.json files to pool (empty when analysing ``inputs``).
    iqr : also compute exact quartiles (an analysis; refused when pooling several files).
    shard : ``(K, N)``: analyse only the K-th of N slices of the sorted inputs.
    model_file : the model the latents were encoded with (its kind is checked), or None.

    Returns
    -------
    Path or None
        The stats.json written; None for a shard that holds no file (said through ``info``).

    Raises
    ------
    RavekitError
        Both or neither of ``inputs`` and ``stats_files`` (exit 2), ``shard`` with ``stats_files`` (exit 2),
        quartiles asked of several files, statistics that do not pool, an existing
        stats.json without ``force``.
    """

    if stats_files and inputs:
        raise RavekitError("give --input (latents to analyse) or --stats (statistics to pool), not both", 2)
    if not stats_files and not inputs:
        raise RavekitError("nothing to analyse: pass latents with --input (or stats.json files to pool with "
                           "--stats)", 2)
    if shard and stats_files:
        raise RavekitError("--shard splits an analysis of --input; pooling --stats files takes them all", 2)
    minfo = model_info(model_file)
    stats_path = output / STATS_NAME
    if stats_files:
        stats = load_pooled(stats_files, quartiles=iqr)
        check_kind(stats, minfo, model_file)
        check_outputs([stats_path], [*stats_files, *stats.sources], force)
        claim_output(output)
        with Unpublished([stats_path]):
            save_stats(stats_path, stats)
        info(f"pooled {len(stats_files)} statistics file(s): {len(stats.sources)} file(s), {stats.frames} latent "
             f"frames of {stats.latent_dims} dims")
    else:
        files = gather_inputs(inputs or (), extensions, stdin, exclude_dir=output, null=null)
        if shard:
            k, n = shard
            files = files[k - 1::n]
            if not files:
                # As encoder.py's empty shards: a job array sized above the number of files still pools.
                info(f"--shard {k}/{n}: this shard holds no latent file (the inputs hold fewer than {k}); "
                     "no statistics to write")
                return None
        check_outputs([stats_path], files, force)
        claim_output(output)
        with Unpublished([stats_path]):
            stats = compute_stats(files, quartiles=iqr, warn=warn,
                                  codebook_size=minfo.codebook_size if minfo and minfo.discrete else None)
            check_kind(stats, minfo, model_file)
            save_stats(stats_path, stats)
        info(f"analysed {len(files)} file(s), {stats.frames} latent frames of {stats.latent_dims} dims")
    on_output(stats_path)
    return stats_path
