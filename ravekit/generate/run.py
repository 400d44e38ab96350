"""generator.py's whole run: flag checks first, then analysis, stats.json, plots and pattern files.

Plain functions with explicit parameters; ``generator.py`` only maps its
flags onto :func:`run` (or :func:`tempo_table_text`).  Before any latent is
read, :func:`run` checks every flag (:func:`check_request`), that the output
folder is writable, the loop length ``--bpm`` asks for, and that none of the
files it will write exists (unless ``force``) or is an input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from ravekit.commands.flags import check_seed
from ravekit.errors import RavekitError
from ravekit.generate.output import (
    STATS_NAME,
    Warn,
    check_size,
    gather_inputs,
    generate_files,
    output_name,
    resolve_rate,
)
from ravekit.generate.tempo import bpm_of, latent_rate

BPM_TOLERANCE = 0.05  # a loop more than 5 % off the asked tempo is worth a warning


def check_request(*, seed: int, bpm: float | None, sample_rate: int | None, ratio: int | None,
                  counts: dict[str, int], pattern_module=None, options: dict | None = None) -> None:
    """Refuse impossible flag values before anything is read or written (exit code 2).

    ``counts`` maps flag names (``num_latents``, ...) to values that must be 1
    or more; ``pattern_module.check_options(**options)``, when defined, checks
    the pattern's own flags and raises ``ValueError`` with the reason.
    """
    import math

    check_seed(seed)
    for flag, value in counts.items():
        if value < 1:
            raise RavekitError(f"--{flag} {value}: must be 1 or more", 2)
    if bpm is not None and not (math.isfinite(bpm) and bpm > 0):
        raise RavekitError(f"--bpm {bpm:g}: give a positive tempo in beats per minute, e.g. --bpm 120", 2)
    for flag, value in (("--sample_rate", sample_rate), ("--ratio", ratio)):
        if value is not None and value <= 0:
            raise RavekitError(f"{flag} {value}: must be a positive whole number", 2)
    check = getattr(pattern_module, "check_options", None)
    if check is not None:
        try:
            check(**(options or {}))
        except ValueError as exc:
            raise RavekitError(str(exc), 2) from None


def model_info(model_file: str | None):
    """The :class:`~ravekit.engine.model.ModelInfo` of an exported model, or ``None`` without one."""
    if not model_file:
        return None
    from ravekit.engine.model import load_model

    return load_model(model_file, device="cpu", checksum=False).info


def check_kind(stats, info, model_file: str | None) -> None:
    """Refuse statistics of discrete codes for a continuous model, and the reverse (exit code 2)."""
    if info is None or (info.discrete and info.codebook_size is None and stats.discrete):
        return
    where = stats.source or "the inputs"
    if info.discrete and not stats.discrete:
        codes = (f"codes 0 to {info.codebook_size - 1}" if info.codebook_size
                 else "its codebook size unknown: encode with it so the sidecars say it")
        raise RavekitError(f"{where}: continuous latents, but {model_file} is a discrete model ({codes}); "
                           "analyse latents encoded with this model", 2)
    if stats.discrete and not info.discrete:
        raise RavekitError(f"{where}: codes of a discrete model (codebook of {stats.codebook_size}), but "
                           f"{model_file} is a continuous model; use the discrete model they were encoded with", 2)
    if stats.discrete and stats.codebook_size != info.codebook_size:
        raise RavekitError(f"{where}: codes of a codebook of {stats.codebook_size}, but {model_file} has a "
                           f"codebook of {info.codebook_size}; use the model they were encoded with", 2)


def data_rate(stats_file: str | None, inputs: Sequence[str] | None, extensions: Sequence[str],
              stdin: Iterable[str] | None, null: bool = False) -> tuple[int | None, int | None]:
    """``(sr, ratio)`` the data says: the stats file, else the first input's sidecar."""
    if stats_file:
        from ravekit.generate.stats import load_stats

        st = load_stats(stats_file)
        return st.sr, st.ratio
    if inputs:
        from ravekit.io.latents import read_sidecar

        meta = read_sidecar(gather_inputs(inputs, extensions, stdin, null=null)[0])
        return meta.get("sr"), meta.get("ratio")
    return None, None


def choose_k(num_latents: int, bpm: float | None, sr: int, ratio: int, warn: Warn, info: Warn,
             check: Callable[[int], None] | None = None) -> int:
    """The loop length: ``num_latents``, or the one nearest ``bpm`` (warning when far from it).

    A ``bpm`` faster than the one-frame loop (beyond the 5 % tolerance) has no
    valid k: refused with exit code 2, naming the fastest tempo there is.
    ``check(k)`` (the size limit, the outputs) runs before anything is said
    about k, so a refusal stays the run's one line.
    """
    from ravekit.generate.tempo import nearest_k

    if bpm is None:
        if check:
            check(num_latents)
        info(f"k = {num_latents} frames loops at {bpm_of(num_latents, sr, ratio):.2f} BPM at {sr} Hz / ratio {ratio}")
        return num_latents
    fastest = bpm_of(1, sr, ratio)
    if bpm > fastest * (1 + BPM_TOLERANCE):
        raise RavekitError(
            f"--bpm {bpm:g}: no loop is that fast at {sr} Hz / ratio {ratio}; the fastest, k = 1 frame, plays at "
            f"{fastest:.2f} BPM: give --bpm {fastest:.2f} or slower, or --num_latents (see --tempo_table)", 2)
    k, achieved = nearest_k(bpm, sr, ratio)
    if check:
        check(k)
    info(f"--bpm {bpm:g}: k = {k} frames gives {achieved:.2f} BPM at {sr} Hz / ratio {ratio}")
    if abs(achieved - bpm) > BPM_TOLERANCE * bpm:
        warn(f"--bpm {bpm:g}: the nearest loop (k = {k} frames) plays at {achieved:.2f} BPM, "
             f"{abs(achieved / bpm - 1):.0%} off; at {sr} Hz / ratio {ratio} tempi range from "
             f"{bpm_of(1, sr, ratio):.2f} BPM (k = 1) downwards in steps of whole frames, see --tempo_table")
    return k


def check_k_fits(module, pattern: str, k: int, dims: int, num_loops: int, options: dict, max_frames: int,
                 sr: int, ratio: int, bpm: float | None) -> None:
    """:func:`check_size`, saying which slower ``--bpm`` would fit when ``--bpm`` chose ``k``."""
    try:
        check_size(module, pattern, k, dims, num_loops, options, max_frames, latent_rate(sr, ratio))
    except RavekitError:
        def fits(c: int) -> bool:
            return int(module.output_frames(c, dims, num_loops, **options)) <= max_frames

        if bpm is None or not fits(1):
            raise
        lo, hi = 1, k  # output_frames grows with k: the largest k that fits, by bisection
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if fits(mid) else (lo, mid)
        raise RavekitError(
            f"--bpm {bpm:g}: k = {k} frames would make {int(module.output_frames(k, dims, num_loops, **options))} "
            f"frames per file with --pattern {pattern}, more than --max_frames {max_frames}; give --bpm "
            f"{bpm_of(lo, sr, ratio):.2f} or faster (k = {lo}), or raise --max_frames", 2) from None


def sidecar_facts(files: Sequence[Path]) -> tuple[tuple[int | None, int | None], int | None, bool | None]:
    """``((sr, ratio), latent_dims, discrete)`` from the inputs' sidecars, as the analysis will pool them.

    The rate is the first sidecar's that has one (as :func:`~ravekit.generate.pooling.compute_stats`
    takes it); ``discrete`` is None when no sidecar says.  Only sidecars are
    read, not the latents.
    """
    from ravekit.io.latents import read_sidecar

    dims, rate, discrete = None, (None, None), None
    for f in files:
        meta = read_sidecar(f)
        if dims is None and isinstance(meta.get("latent_dims"), int):
            dims = meta["latent_dims"]
        if discrete is None and isinstance(meta.get("discrete"), bool):
            discrete = meta["discrete"]
        if rate == (None, None) and meta.get("sr") and meta.get("ratio"):
            rate = (int(meta["sr"]), int(meta["ratio"]))
        if rate != (None, None) and dims is not None and discrete is not None:
            break
    return rate, dims, discrete


def planned_outputs(output: Path, *, pattern: str, distribution: str, iqr: bool, k: int, seed: int,
                    num_files: int, embeddings: bool, plot: bool, writes_stats: bool, pd: bool = False) -> list[Path]:
    """Every file the run will write: stats.json, plots, each pattern with its sidecar (and PNG), the Pd patch."""
    from ravekit.io.latents import sidecar_path
    from ravekit.puredata.patch import patch_name

    paths = [output / STATS_NAME] if writes_stats else []
    if pd:
        paths.append(output / patch_name(pattern, distribution, iqr, k, seed))
    if plot:
        paths += [output / "stats_distributions.png", output / "stats_correlation.png"]
    for index in range(num_files):
        path = output / output_name(pattern, distribution, iqr, k, seed, index, ".npy" if embeddings else ".wav")
        paths += [path, sidecar_path(path)] + ([path.with_suffix(".png")] if plot else [])
    return paths


def check_outputs(planned: Sequence[Path], inputs: Iterable[str | Path], force: bool) -> None:
    """Refuse a run that would replace an input (exit 2, even with ``force``) or, without
    ``force``, an existing file (exit 1), naming the first clash and how many there are."""
    from ravekit.io.latents import sidecar_path

    protected = set()
    for f in inputs:
        protected |= {Path(f).resolve(), sidecar_path(Path(f)).resolve()}
    for p in planned:
        if p.resolve() in protected:
            raise RavekitError(f"{p}: is one of the inputs (or its sidecar) and would be overwritten; choose "
                               "another --output", 2)
    existing = [p for p in planned if p.exists()]
    if existing and not force:
        raise RavekitError(f"{existing[0]}: already exists ({len(existing)} of the {len(planned)} files this run "
                           "writes are there); use --force to overwrite them, or another --output")


def run(*, module, pattern: str, options: dict, inputs: Sequence[str] | None, stats_file: str | None,
        extensions: Sequence[str], stdin: Iterable[str] | None, output: Path, seed: int, distribution: str | None,
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
    (``histogram`` for codes, else ``normal``).
    """
    import math

    from ravekit.generate.distributions import check_distribution, needs_quartiles
    from ravekit.generate.pooling import compute_stats
    from ravekit.generate.stats import load_stats, save_stats
    from ravekit.io.files import check_writable

    check_request(seed=seed, bpm=bpm, sample_rate=sample_rate, ratio=ratio, pattern_module=module,
                  options=options, counts={"num_latents": num_latents, "num_loops": num_loops,
                                           "num_files": num_files, "max_frames": max_frames})
    if stats_file and inputs:
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
    stats, files = None, []
    if stats_file:
        stats = load_stats(stats_file)
        data, dims, discrete = (stats.sr, stats.ratio), stats.latent_dims, stats.discrete
    else:
        files = gather_inputs(inputs, extensions, stdin, exclude_dir=output, null=null)
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

    def check_plan(k: int) -> None:
        if dims is not None:
            check_k_fits(module, pattern, k, dims, num_loops, options, max_frames, sr, ratio, bpm)
        check_outputs(planned_outputs(output, pattern=pattern, distribution=distribution, iqr=iqr, k=k, seed=seed,
                                      num_files=num_files, embeddings=embeddings, plot=plot,
                                      writes_stats=writes_stats, pd=pd), files or stats.sources, force)
        check_writable(output)  # last: a refused run leaves no empty output folder behind

    k = choose_k(num_latents, bpm, sr, ratio, warn, info, check=check_plan)
    if stats is None:
        stats = compute_stats(files, quartiles=quartiles and not discrete, warn=warn,
                              codebook_size=minfo.codebook_size if minfo and minfo.discrete else None)
        kind = f" (codes of a codebook of {stats.codebook_size})" if stats.discrete else ""
        info(f"analysed {len(files)} file(s), {stats.frames} latent frames of {stats.latent_dims} dims{kind}")
        check_kind(stats, minfo, model_file)
        check_distribution(stats, distribution, iqr, smoothing)
    stats.smoothing = smoothing
    for d in stats.constant_dims:
        if stats.discrete:
            warn(f"latent dim {d + 1} is always code {stats.mean[d]:.0f} in all inputs; "
                 + ("--smoothing also draws other codes there" if smoothing else "it is generated as that code"))
        else:
            warn(f"latent dim {d + 1} is constant ({stats.mean[d]:.6g}) in all inputs; "
                 "it is generated as that constant")
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

    written = generate_files(module=module, pattern=pattern, stats=stats, distribution=distribution, iqr=iqr, k=k,
                             num_loops=num_loops, num_files=num_files, seed=seed, sr=sr, ratio=ratio, output=output,
                             embeddings=embeddings, double=double and not embeddings, options=options,
                             max_frames=max_frames, model_file=model_file, stats_file=str(stats_file or stats_path),
                             warn=warn, on_file=on_file)
    if pd:
        from ravekit.puredata.patch import write_run_patch

        write_run_patch(output, written, module=module, pattern=pattern, distribution=distribution, iqr=iqr, k=k,
                        seed=seed, num_loops=num_loops, options=options, model_file=model_file, model=minfo,
                        warn=warn, info=info)
    return written


def tempo_table_text(*, sample_rate: int | None, ratio: int | None, model_file: str | None,
                     inputs: Sequence[str] | None, stats_file: str | None, extensions: Sequence[str],
                     stdin: Iterable[str] | None, warn: Warn, null: bool = False) -> str:
    """The ``--tempo_table`` text for the rate given by flags, the model, or the data."""
    from ravekit.generate.tempo import format_tempo_table

    check_request(seed=0, bpm=None, sample_rate=sample_rate, ratio=ratio, counts={})
    minfo = model_info(model_file)
    rate = (minfo.sr, minfo.ratio) if minfo else None
    sr, rt = resolve_rate(sample_rate, ratio, rate, data_rate(stats_file, inputs, extensions, stdin, null), warn)
    return format_tempo_table(sr, rt)
