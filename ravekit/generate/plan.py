"""Planning a generator.py run before any latent is read.

The inputs (:func:`gather_inputs`) and what their sidecars say
(:func:`sidecar_facts`), the rate (:func:`resolve_rate`), the loop length
``--bpm`` asks for (:func:`choose_k`), the size of each output
(:func:`check_size`, :func:`check_k_fits`), the kind of latents against the
model (:func:`check_kind`), and the files the run will write, none of which
may exist (unless ``force``) or be an input (:func:`check_outputs`); a run
that fails part-way takes them back (:class:`Unpublished`).  The flags were
checked when the request was made (:mod:`ravekit.generate.request`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TextIO

from ravekit.errors import RavekitError
from ravekit.generate.request import check_rate_flags
from ravekit.generate.stats import load_stats
from ravekit.generate.tempo import bpm_of, format_tempo_table, latent_rate, nearest_k
from ravekit.io.inputs import check_link, collect_inputs
from ravekit.io.latents import Sidecar, sidecar_path

STATS_NAME = "stats.json"
BPM_TOLERANCE = 0.05  # a loop more than 5 % off the asked tempo is worth a warning
Warn = Callable[[str], None]


def gather_inputs(inputs: Sequence[str], extensions: Sequence[str], stdin: TextIO | None = None,
                  exclude_dir: os.PathLike | str | None = None, null: bool = False) -> list[Path]:
    """Latent files named by ``inputs``: files, folders (recursive, sorted) or ``-`` (paths on stdin,
    NUL-separated with ``null``).

    Files inside ``exclude_dir`` (the output folder) are skipped, so earlier
    generations are not analysed as sources.  A file named twice counts once.
    A broken symbolic link in a folder is an error naming it: the statistics
    would silently leave that file out.
    """

    pairs = collect_inputs(inputs, tuple(extensions), Path(exclude_dir) if exclude_dir else None, stdin, null)
    seen: set[Path] = set()
    unique = []
    for f, _ in pairs:
        check_link(f)
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def resolve_rate(sample_rate: int | None, ratio: int | None, model_info: tuple[int, int] | None,
                 data_rate: tuple[int | None, int | None], warn: Warn) -> tuple[int, int]:
    """``(sr, ratio)``: flags first, then the model, then the inputs' sidecars.

    ``data_rate`` is what the sidecars (or a stats file) say; a flag that
    contradicts them is obeyed with a warning.
    """
    sources = [("flags", (sample_rate, ratio)), ("--model", model_info or (None, None)), ("inputs", data_rate)]
    # "is not None": a 0 given on the command line must be refused above, not skipped as "unset".
    sr = next((v[0] for _, v in sources if v[0] is not None), None)
    rt = next((v[1] for _, v in sources if v[1] is not None), None)
    if sr is None or rt is None:
        missing = " and ".join(x for x, v in (("--sample_rate", sr), ("--ratio", rt)) if v is None)
        raise RavekitError(f"the inputs have no sidecar saying the model's sample rate and ratio; pass --model "
                           f"MODEL.ts or {missing} (e.g. --sample_rate 44100 --ratio 2048)", 2)
    data_sr, data_ratio = data_rate
    if data_sr is not None and data_ratio is not None and (int(data_sr), int(data_ratio)) != (int(sr), int(rt)):
        warn(f"the inputs were made at sr {data_sr} / ratio {data_ratio}, but {sr} / {rt} is used "
             "as given; tempi follow the latter")
    if int(sr) <= 0 or int(rt) <= 0:
        raise RavekitError(f"sample rate {sr} and ratio {rt} must be positive", 2)
    return int(sr), int(rt)


def check_size(module, name: str, k: int, latent_dims: int, num_loops: int, options: dict, max_frames: int,
               rate: float) -> int | None:
    """Refuse a request whose output would exceed ``max_frames``.

    Parameters
    ----------
    module : module
        The pattern; without ``output_frames`` its length is not known ahead.
    name : str
        The pattern's name, for the message.
    k : int > 0
        Latent frames per loop.
    latent_dims : int > 0
    num_loops : int > 0
    options : dict
        The pattern's own flags.
    max_frames : int > 0
        --max_frames: the most latent frames per file.
    rate : float > 0
        Latent frames per second, to say how long the output would be.

    Returns
    -------
    frames : int or None
        Latent frames per file, when the pattern says.
    """
    fn = getattr(module, "output_frames", None)
    if fn is None:
        return None
    frames = int(fn(k, latent_dims, num_loops, **options))
    if frames > max_frames:
        mb = frames * latent_dims * 4 / 1e6
        raise RavekitError(
            f"--pattern {name} with --num_latents {k}, {latent_dims} dims and --num_loops {num_loops} would make "
            f"{frames} frames per file ({frames / rate / 3600:.1f} hours, {mb:.0f} MB); lower --num_latents or "
            f"--num_loops, or raise --max_frames", 2)
    return frames


def model_info(model_file: str | None):
    """The :class:`~ravekit.engine.model.ModelInfo` of an exported model, or ``None`` without one."""
    if not model_file:
        return None
    from ravekit.engine.model import load_model  # torch at start-up only when a model is named

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
              stdin: TextIO | None, null: bool = False) -> tuple[int | None, int | None]:
    """``(sr, ratio)`` the data says: the stats file, else the first input's sidecar."""
    if stats_file:
        st = load_stats(stats_file)
        return st.sr, st.ratio
    if inputs:
        meta = Sidecar.read(gather_inputs(inputs, extensions, stdin, null=null)[0]).raw
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


def check_k_fits(module, pattern: str, k: int, latent_dims: int, num_loops: int, options: dict, max_frames: int,
                 sr: int, ratio: int, bpm: float | None) -> None:
    """:func:`check_size`, saying which slower ``--bpm`` would fit when ``--bpm`` chose ``k``.

    ``sr`` (Hz) and ``ratio`` (samples per latent frame) give the latent rate;
    ``bpm`` is --bpm or ``None``.  The other parameters are :func:`check_size`'s.
    """
    try:
        check_size(module, pattern, k, latent_dims, num_loops, options, max_frames, latent_rate(sr, ratio))
    except RavekitError:
        def fits(c: int) -> bool:
            return int(module.output_frames(c, latent_dims, num_loops, **options)) <= max_frames

        if bpm is None or not fits(1):
            raise
        lo, hi = 1, k  # output_frames grows with k: the largest k that fits, by bisection
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if fits(mid) else (lo, mid)
        frames = int(module.output_frames(k, latent_dims, num_loops, **options))
        raise RavekitError(
            f"--bpm {bpm:g}: k = {k} frames would make {frames} "
            f"frames per file with --pattern {pattern}, more than --max_frames {max_frames}; give --bpm "
            f"{bpm_of(lo, sr, ratio):.2f} or faster (k = {lo}), or raise --max_frames", 2) from None


def sidecar_facts(files: Sequence[Path]) -> tuple[tuple[int | None, int | None], int | None, bool | None]:
    """``((sr, ratio), latent_dims, discrete)`` from the inputs' sidecars, as the analysis will pool them.

    The rate is the first sidecar's that has one (as :func:`~ravekit.generate.pooling.compute_stats`
    takes it); ``discrete`` is None when no sidecar says.  Only sidecars are
    read, not the latents.
    """
    dims: int | None = None
    rate: tuple[int | None, int | None] = (None, None)
    discrete: bool | None = None
    for f in files:
        meta = Sidecar.read(f).raw
        if dims is None and isinstance(meta.get("latent_dims"), int):
            dims = meta["latent_dims"]
        if discrete is None and isinstance(meta.get("discrete"), bool):
            discrete = meta["discrete"]
        if rate == (None, None) and meta.get("sr") and meta.get("ratio"):
            rate = (int(meta["sr"]), int(meta["ratio"]))
        if rate != (None, None) and dims is not None and discrete is not None:
            break
    return rate, dims, discrete


def check_outputs(planned: Sequence[Path], inputs: Iterable[str | Path], force: bool) -> None:
    """Refuse a run that would replace an input (exit 2, even with ``force``) or, without
    ``force``, an existing file (exit 1), naming the first clash and how many there are."""
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


class Unpublished:
    """Remove, when the run fails, every planned output it created: a failed run leaves nothing behind that
    would refuse the next one (:func:`check_outputs`), and nothing resumes a generator run.

    Files that were already there before (``--force``) are left as they are: each is whole, written atomically.

    >>> with Unpublished(planned):
    ...     write_everything()
    """

    def __init__(self, planned: Sequence[Path]):
        self.planned = list(planned)
        self.existed = {p for p in self.planned if p.exists()}

    def __enter__(self) -> Unpublished:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if kind is None:
            return
        for p in self.planned:
            if p not in self.existed:
                with contextlib.suppress(OSError):
                    p.unlink()


def tempo_table_text(*, sample_rate: int | None, ratio: int | None, model_file: str | None,
                     inputs: Sequence[str] | None, stats_file: str | None, extensions: Sequence[str],
                     stdin: TextIO | None, warn: Warn, null: bool = False) -> str:
    """The ``--tempo_table`` text for the rate given by flags, the model, or the data."""
    check_rate_flags(sample_rate, ratio)
    minfo = model_info(model_file)
    rate = (minfo.sr, minfo.ratio) if minfo else None
    sr, rt = resolve_rate(sample_rate, ratio, rate, data_rate(stats_file, inputs, extensions, stdin, null), warn)
    return format_tempo_table(sr, rt)
