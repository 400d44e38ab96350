"""generator.py's whole run: flag checks first, then analysis, stats.json, plots and pattern files.

Plain functions with explicit parameters; ``generator.py`` only maps its
flags onto :func:`run` (or :func:`tempo_table_text`).  Before any latent is
read, :func:`run` checks every flag, that the output folder is writable, the
loop length ``--bpm`` asks for, and that none of the files it will write
exists (unless ``force``) or is an input (see :mod:`ravekit.generate.plan`);
:mod:`ravekit.generate.drawing` then draws and writes the files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ravekit.errors import RavekitError
from ravekit.generate.drawing import generate_files
from ravekit.generate.plan import (
    STATS_NAME,
    Unpublished,
    Warn,
    check_k_fits,
    check_kind,
    check_outputs,
    check_request,
    choose_k,
    data_rate,
    gather_inputs,
    model_info,
    planned_outputs,
    resolve_rate,
    sidecar_facts,
)

if TYPE_CHECKING:
    from ravekit.generate.stats import Stats


def run(*, module, pattern: str, options: dict, inputs: Sequence[str] | None,
        stats_file: str | Sequence[str] | None,
        extensions: Sequence[str], stdin: TextIO | None, output: Path, seed: int, distribution: str | None,
        iqr: bool, num_latents: int, bpm: float | None, num_loops: int, num_files: int, embeddings: bool,
        double: bool, plot: bool, model_file: str | None, sample_rate: int | None, ratio: int | None,
        max_frames: int, warn: Warn, info: Warn, on_output: Callable[[Path], None], force: bool = False,
        null: bool = False, smoothing: float = 0.0, pd: bool = False) -> list[Path]:
    """generator.py's whole run: check flags, analyse, save stats.json, plot, write ``num_files`` files.

    Before any latent is read (only sidecars, for the rate): every flag, the
    loop length, the files it will write (none may exist unless ``force``,
    none may be an input) and the output folder's writability.  Paths on ``stdin`` are NUL-separated
    with ``null``.  ``on_output(path)`` is called for each pattern file written.
    ``distribution`` ``None`` picks the default for the kind of latents
    (``histogram`` for codes, else ``normal``).  Several ``stats_file`` are pooled
    (:mod:`ravekit.generate.stats_pool`) and the pooled statistics saved as stats.json.
    """
    import math

    from ravekit.generate.distributions import check_distribution, needs_quartiles
    from ravekit.generate.pooling import compute_stats
    from ravekit.generate.stats import save_stats
    from ravekit.generate.stats_pool import load_pooled
    from ravekit.io.claims import claim_output

    check_request(seed=seed, bpm=bpm, sample_rate=sample_rate, ratio=ratio, pattern_module=module,
                  options=options, counts={"num_latents": num_latents, "num_loops": num_loops,
                                           "num_files": num_files, "max_frames": max_frames})
    if stats_file and inputs:  # a name, or several
        raise RavekitError("give --input (latents to analyse) or --stats (an earlier analysis), not both", 2)
    if not stats_file and not inputs:
        raise RavekitError("nothing to analyse: pass latents with --input (or a stats.json with --stats)", 2)
    if pd:
        from ravekit.puredata.patch import check_request as check_pd

        check_pd(model_file=model_file, embeddings=embeddings, double=double)
    if not (math.isfinite(smoothing) and smoothing >= 0):
        raise RavekitError(f"--smoothing {smoothing:g}: give a pseudo-count of 0 or more, e.g. --smoothing 1", 2)
    minfo = model_info(model_file)
    rate, latent_size = ((minfo.sr, minfo.ratio), minfo.latent_size) if minfo else (None, None)
    stats: Stats | None = None
    files: list[Path] = []
    data: tuple[int | None, int | None]
    dims: int | None
    discrete: bool | None
    stats_files = [stats_file] if isinstance(stats_file, str) else list(stats_file or [])
    stats_file = stats_files[0] if len(stats_files) == 1 else None  # several are pooled into stats.json
    if stats_files:
        stats = load_pooled(stats_files, quartiles=needs_quartiles(distribution or "", iqr))
        data, dims, discrete = (stats.sr, stats.ratio), stats.latent_dims, stats.discrete
    else:
        files = gather_inputs(inputs or (), extensions, stdin, exclude_dir=output, null=null)
        data, dims, discrete = sidecar_facts(files)
        if discrete is None:  # no sidecar says: the latents are taken to be the model's kind
            discrete = bool(minfo and minfo.discrete)
    # The kind of latents is known before they are read, so the distribution (in every output's name) is too.
    distribution = distribution or ("histogram" if discrete else "normal")
    quartiles = needs_quartiles(distribution, iqr)
    if stats is not None:
        check_kind(stats, minfo, model_file)
        check_distribution(stats, distribution, iqr, smoothing)
        if quartiles and not stats.discrete:
            stats.require_quartiles()
    sr, ratio = resolve_rate(sample_rate, ratio, rate, data, warn)
    stats_path = output / STATS_NAME
    writes_stats = not (stats_file and Path(stats_file).resolve() == stats_path.resolve())

    planned: list[Path] = []

    def check_plan(k: int) -> None:
        if dims is not None:
            check_k_fits(module, pattern, k, dims, num_loops, options, max_frames, sr, ratio, bpm)
        inputs_read = files or (stats.sources if stats else [])
        planned[:] = planned_outputs(output, pattern=pattern, distribution=distribution, iqr=iqr, k=k, seed=seed,
                                     num_files=num_files, embeddings=embeddings, plot=plot,
                                     writes_stats=writes_stats, pd=pd)
        check_outputs(planned, inputs_read, force)
        claim_output(output)  # last: a refused run leaves no empty output folder behind

    k = choose_k(num_latents, bpm, sr, ratio, warn, info, check=check_plan)
    # What this run writes from here on is removed again if it fails part-way (a bad input, a pattern that
    # raises, a full disk, Ctrl-C): left behind, it would only refuse the next run.
    with Unpublished(planned):
        if stats is None:
            stats = compute_stats(files, quartiles=quartiles and not discrete, warn=warn,
                                  codebook_size=minfo.codebook_size if minfo and minfo.discrete else None)
            kind = f" (codes of a codebook of {stats.codebook_size})" if stats.discrete else ""
            info(f"analysed {len(files)} file(s), {stats.frames} latent frames of {stats.latent_dims} dims{kind}")
            check_kind(stats, minfo, model_file)
            check_distribution(stats, distribution, iqr, smoothing)
        stats.smoothing = smoothing
        constant = constant_dims_warning(stats, smoothing)
        if constant:  # one line for all of them: a corpus of silence can have every dim constant
            warn(constant)
        if stats.sr is None:
            stats.sr, stats.ratio = sr, ratio
        if latent_size is not None and stats.latent_dims != latent_size:
            warn(f"{model_file}: the model has {latent_size} latent dims but the latents have "
                 f"{stats.latent_dims}; decoding them needs a model of the same size")
        check_k_fits(module, pattern, k, stats.latent_dims, num_loops, options, max_frames, sr, ratio, bpm)
        if not embeddings and stats.latent_dims > 64:
            warn(f"{stats.latent_dims} latent dims: Pure Data's soundfiler reads at most 64 channels of a WAV")
        if double:
            warn("--embeddings writes .npy: --double is ignored" if embeddings else
                 "--double: Pure Data 0.53 cannot read 64-bit float WAVs; leave it out for Pd")
        if writes_stats:
            save_stats(stats_path, stats)
        info(f"statistics in {stats_path}")
        if plot:
            from ravekit.generate.plots import plot_correlation, plot_distributions

            plot_distributions(stats, output / "stats_distributions.png")
            plot_correlation(stats, output / "stats_correlation.png")

        def on_file(path: Path, array) -> None:
            on_output(path)
            if plot:
                from ravekit.generate.plots import plot_pattern

                bounds_fn = getattr(module, "loop_boundaries", None)
                bounds = bounds_fn(k, num_loops, **options) if bounds_fn else range(0, array.shape[0], k)
                plot_pattern(array, list(bounds), path.with_suffix(".png"), path.stem, rate=sr / ratio)

        written = generate_files(module=module, pattern=pattern, stats=stats, distribution=distribution, iqr=iqr,
                                 k=k, num_loops=num_loops, num_files=num_files, seed=seed, sr=sr, ratio=ratio,
                                 output=output, embeddings=embeddings, double=double and not embeddings,
                                 options=options, max_frames=max_frames, model_file=model_file,
                                 stats_file=str(stats_file or stats_path), warn=warn, on_file=on_file)
        if pd:
            from ravekit.puredata.patch import write_run_patch

            assert model_file is not None  # check_pd refused --pd without --model
            write_run_patch(output, written, module=module, pattern=pattern, distribution=distribution, iqr=iqr,
                            k=k, seed=seed, num_loops=num_loops, options=options, model_file=model_file,
                            model=minfo, warn=warn, info=info)
        return written


def constant_dims_warning(stats: Stats, smoothing: float) -> str | None:
    """One warning naming every latent dim that is constant in all inputs (counted from 1), or None."""
    dims = stats.constant_dims
    if not dims:
        return None
    one = len(dims) == 1
    head = f"latent dim{'' if one else 's'}"
    if stats.discrete:
        each = ", ".join(f"{d + 1} (code {stats.mean[d]:.0f})" for d in dims)
        then = "--smoothing also draws other codes there" if smoothing else \
            f"{'it is' if one else 'each is'} generated as that code"
        return f"{head} {each} {'holds' if one else 'hold'} one code in all inputs; {then}"
    each = ", ".join(f"{d + 1} ({stats.mean[d]:.6g})" for d in dims)
    return (f"{head} {each} {'is' if one else 'are'} constant in all inputs; "
            f"{'it is' if one else 'each is'} generated as that constant")


def tempo_table_text(*, sample_rate: int | None, ratio: int | None, model_file: str | None,
                     inputs: Sequence[str] | None, stats_file: str | None, extensions: Sequence[str],
                     stdin: TextIO | None, warn: Warn, null: bool = False) -> str:
    """The ``--tempo_table`` text for the rate given by flags, the model, or the data."""
    from ravekit.generate.tempo import format_tempo_table

    check_request(seed=0, bpm=None, sample_rate=sample_rate, ratio=ratio, counts={})
    minfo = model_info(model_file)
    rate = (minfo.sr, minfo.ratio) if minfo else None
    sr, rt = resolve_rate(sample_rate, ratio, rate, data_rate(stats_file, inputs, extensions, stdin, null), warn)
    return format_tempo_table(sr, rt)
