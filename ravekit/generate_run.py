"""generator.py's whole run: flag checks first, then analysis, stats.json, plots and pattern files.

Plain functions with explicit parameters; ``generator.py`` only maps its
flags onto :func:`run` (or :func:`tempo_table_text`).  Every flag value is
checked by :func:`check_request` before any input is read or output written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Sequence

from .errors import RavekitError
from .generate import STATS_NAME, Warn, check_size, gather_inputs, generate_files, resolve_rate
from .tempo import bpm_of, latent_rate

BPM_TOLERANCE = 0.05  # a loop more than 5 % off the asked tempo is worth a warning


def check_request(*, seed: int, bpm: float | None, sample_rate: int | None, ratio: int | None,
                  counts: dict[str, int], pattern_module=None, options: dict | None = None) -> None:
    """Refuse impossible flag values before anything is read or written (exit code 2).

    ``counts`` maps flag names (``num_latents``, ...) to values that must be 1
    or more; ``pattern_module.check_options(**options)``, when defined, checks
    the pattern's own flags and raises ``ValueError`` with the reason.
    """
    import math

    if seed < 0:
        raise RavekitError(f"--seed {seed}: use a seed of 0 or more", 2)
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
    """The :class:`~ravekit.model.ModelInfo` of an exported model, or ``None`` without one."""
    if not model_file:
        return None
    from .model import load_model

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
              stdin: Iterable[str] | None) -> tuple[int | None, int | None]:
    """``(sr, ratio)`` the data says: the stats file, else the first input's sidecar."""
    if stats_file:
        from .stats_io import load_stats

        st = load_stats(stats_file)
        return st.sr, st.ratio
    if inputs:
        from .latents import read_sidecar

        meta = read_sidecar(gather_inputs(inputs, extensions, stdin)[0])
        return meta.get("sr"), meta.get("ratio")
    return None, None


def choose_k(num_latents: int, bpm: float | None, sr: int, ratio: int, warn: Warn, info: Warn) -> int:
    """The loop length: ``num_latents``, or the one nearest ``bpm`` (warning when far from it)."""
    from .tempo import nearest_k

    if bpm is None:
        info(f"k = {num_latents} frames loops at {bpm_of(num_latents, sr, ratio):.2f} BPM at {sr} Hz / ratio {ratio}")
        return num_latents
    k, achieved = nearest_k(bpm, sr, ratio)
    info(f"--bpm {bpm:g}: k = {k} frames gives {achieved:.2f} BPM at {sr} Hz / ratio {ratio}")
    if abs(achieved - bpm) > BPM_TOLERANCE * bpm:
        warn(f"--bpm {bpm:g}: the nearest loop (k = {k} frames) plays at {achieved:.2f} BPM, "
             f"{abs(achieved / bpm - 1):.0%} off; at {sr} Hz / ratio {ratio} tempi range from "
             f"{bpm_of(1, sr, ratio):.2f} BPM (k = 1) downwards in steps of whole frames, see --tempo_table")
    return k


def load_or_analyse(stats_file: str | None, inputs: Sequence[str] | None, extensions: Sequence[str],
                    stdin: Iterable[str] | None, output: Path, quartiles: bool, warn: Warn, info: Warn,
                    codebook_size: int | None = None):
    """The :class:`~ravekit.stats.Stats` of an earlier run (``stats_file``) or of ``inputs``."""
    from .stats import compute_stats
    from .stats_io import load_stats

    if stats_file and inputs:
        raise RavekitError("give --input (latents to analyse) or --stats (an earlier analysis), not both", 2)
    if stats_file:
        stats = load_stats(stats_file)
    elif inputs:
        files = gather_inputs(inputs, extensions, stdin, exclude_dir=output)
        stats = compute_stats(files, quartiles=quartiles, warn=warn, codebook_size=codebook_size)
        kind = f" (codes of a codebook of {stats.codebook_size})" if stats.discrete else ""
        info(f"analysed {len(files)} file(s), {stats.frames} latent frames of {stats.latent_dims} dims{kind}")
    else:
        raise RavekitError("nothing to analyse: pass latents with --input (or a stats.json with --stats)", 2)
    if quartiles and not stats.discrete:  # codes have no quartiles: check_distribution says so
        stats.require_quartiles()
    return stats


def run(*, module, pattern: str, options: dict, inputs: Sequence[str] | None, stats_file: str | None,
        extensions: Sequence[str], stdin: Iterable[str] | None, output: Path, seed: int, distribution: str | None,
        iqr: bool, num_latents: int, bpm: float | None, num_loops: int, num_files: int, embeddings: bool,
        double: bool, plot: bool, model_file: str | None, sample_rate: int | None, ratio: int | None,
        max_frames: int, warn: Warn, info: Warn, on_output: Callable[[Path], None],
        smoothing: float = 0.0) -> list[Path]:
    """generator.py's whole run: check flags, analyse, save stats.json, plot, write ``num_files`` files.

    Every flag is checked before the inputs are read; ``on_output(path)`` is
    called for each pattern file written.  ``distribution`` ``None`` picks
    the default for the kind of latents (``histogram`` for codes, else ``normal``).
    """
    import math

    from .distributions import check_distribution, default_distribution, needs_quartiles
    from .stats_io import save_stats

    check_request(seed=seed, bpm=bpm, sample_rate=sample_rate, ratio=ratio, pattern_module=module,
                  options=options, counts={"num_latents": num_latents, "num_loops": num_loops,
                                           "num_files": num_files, "max_frames": max_frames})
    if not (math.isfinite(smoothing) and smoothing >= 0):
        raise RavekitError(f"--smoothing {smoothing:g}: give a pseudo-count of 0 or more, e.g. --smoothing 1", 2)
    minfo = model_info(model_file)
    rate, latent_size = ((minfo.sr, minfo.ratio), minfo.latent_size) if minfo else (None, None)
    quartiles = needs_quartiles(distribution or "normal", iqr)
    stats = load_or_analyse(stats_file, inputs, extensions, stdin, output, quartiles, warn, info,
                            minfo.codebook_size if minfo and minfo.discrete else None)
    check_kind(stats, minfo, model_file)
    distribution = distribution or default_distribution(stats)
    check_distribution(stats, distribution, iqr, smoothing)
    stats.smoothing = smoothing
    for d in stats.constant_dims:
        if stats.discrete:
            warn(f"latent dim {d + 1} is always code {stats.mean[d]:.0f} in all inputs; "
                 + ("--smoothing also draws other codes there" if smoothing else "it is generated as that code"))
        else:
            warn(f"latent dim {d + 1} is constant ({stats.mean[d]:.6g}) in all inputs; "
                 "it is generated as that constant")
    sr, ratio = resolve_rate(sample_rate, ratio, rate, (stats.sr, stats.ratio), warn)
    if stats.sr is None:
        stats.sr, stats.ratio = sr, ratio
    if latent_size is not None and stats.latent_dims != latent_size:
        warn(f"{model_file}: the model has {latent_size} latent dims but the latents have "
             f"{stats.latent_dims}; decoding them needs a model of the same size")
    k = choose_k(num_latents, bpm, sr, ratio, warn, info)
    check_size(module, pattern, k, stats.latent_dims, num_loops, options, max_frames, latent_rate(sr, ratio))
    if not embeddings and stats.latent_dims > 64:
        warn(f"{stats.latent_dims} latent dims: Pure Data's soundfiler reads at most 64 channels of a WAV")
    if double:
        warn("--embeddings writes .npy: --double is ignored" if embeddings else
             "--double: Pure Data 0.53 cannot read 64-bit float WAVs; leave it out for Pd")
    stats_path = output / STATS_NAME
    if not (stats_file and Path(stats_file).resolve() == stats_path.resolve()):
        save_stats(stats_path, stats)
    info(f"statistics in {stats_path}")
    if plot:
        from .plots import plot_correlation, plot_distributions

        plot_distributions(stats, output / "stats_distributions.png")
        plot_correlation(stats, output / "stats_correlation.png")

    def on_file(path: Path, array) -> None:
        on_output(path)
        if plot:
            from .plots import plot_pattern

            bounds_fn = getattr(module, "loop_boundaries", None)
            bounds = bounds_fn(k, num_loops, **options) if bounds_fn else range(0, array.shape[0], k)
            plot_pattern(array, list(bounds), path.with_suffix(".png"), path.stem, rate=sr / ratio)

    return generate_files(module=module, pattern=pattern, stats=stats, distribution=distribution, iqr=iqr, k=k,
                          num_loops=num_loops, num_files=num_files, seed=seed, sr=sr, ratio=ratio, output=output,
                          embeddings=embeddings, double=double and not embeddings, options=options,
                          max_frames=max_frames, model_file=model_file, stats_file=str(stats_file or stats_path),
                          warn=warn, on_file=on_file)


def tempo_table_text(*, sample_rate: int | None, ratio: int | None, model_file: str | None,
                     inputs: Sequence[str] | None, stats_file: str | None, extensions: Sequence[str],
                     stdin: Iterable[str] | None, warn: Warn) -> str:
    """The ``--tempo_table`` text for the rate given by flags, the model, or the data."""
    from .tempo import format_tempo_table

    check_request(seed=0, bpm=None, sample_rate=sample_rate, ratio=ratio, counts={})
    minfo = model_info(model_file)
    rate = (minfo.sr, minfo.ratio) if minfo else None
    sr, rt = resolve_rate(sample_rate, ratio, rate, data_rate(stats_file, inputs, extensions, stdin), warn)
    return format_tempo_table(sr, rt)
