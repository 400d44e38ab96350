"""Where a generator run's frames come from: statistics of latents, or an MSPrior model.

Both sources answer the pipeline (:mod:`ravekit.generate.pipeline`) the same
questions, in the same order:

1. on opening, before any latent is read: the label in output names, the
   rate, the latent dims when known, the files read (never to be replaced)
   and the extra files the source writes;
2. :meth:`prepare`, once the loop length ``k`` is known: the analysis (and
   stats.json) or the prompt;
3. :meth:`pattern_file` for each output: the pattern's frames and sidecar.

Randomness: file ``i`` draws from ``seeds.file_rng(seed, i)`` (and a prior
from ``seeds.file_torch_seed(seed, i)``), so file ``i`` does not depend on
how many files are made.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import numpy as np

from ravekit.engine.layout import use_threads
from ravekit.engine.model import load_model
from ravekit.generate.distributions import check_distribution, needs_quartiles, sample
from ravekit.generate.drawing import make_pattern
from ravekit.generate.plan import (
    STATS_NAME,
    Warn,
    check_k_fits,
    check_kind,
    gather_inputs,
    model_info,
    resolve_rate,
    sidecar_facts,
)
from ravekit.generate.plots import plot_correlation, plot_distributions
from ravekit.generate.pooling import compute_stats, stats_of_frames
from ravekit.generate.prior import check_fit, describe_error, load_prior, prior_sidecar
from ravekit.generate.prompt import read_prompt
from ravekit.generate.request import PRIOR_LABEL, GenerateRequest
from ravekit.generate.stats import Stats, save_stats
from ravekit.generate.stats_pool import load_pooled
from ravekit.generate.tempo import bpm_of, double_time_of
from ravekit.io.latents import PD_MAX_CHANNELS, make_sidecar
from ravekit.seeds import file_rng, file_torch_seed

STATS_PLOTS = ("stats_distributions.png", "stats_correlation.png")


class StatsSource:
    """Frames drawn from statistics: of ``--input`` latents (analysed in :meth:`prepare`) or a ``--stats`` file."""

    def __init__(self, req: GenerateRequest, stdin: TextIO | None, warn: Warn, info: Warn):
        self.req, self.warn, self.info = req, warn, info
        self.model = model_info(req.model_file)
        self.stats: Stats | None = None
        self.files: list[Path] = []
        self.dims: int | None
        data: tuple[int | None, int | None]
        if req.stats_files:
            # Several files pool exactly into one analysis, written as this run's stats.json.
            self.stats = load_pooled(req.stats_files, quartiles=needs_quartiles(req.distribution or "", req.iqr))
            data, self.dims, discrete = (self.stats.sr, self.stats.ratio), self.stats.latent_dims, self.stats.discrete
        else:
            self.files = gather_inputs(req.inputs, req.extensions, stdin, exclude_dir=req.output, null=req.null)
            data, self.dims, said = sidecar_facts(self.files)
            # No sidecar says: the latents are taken to be the model's kind.
            discrete = said if said is not None else bool(self.model and self.model.discrete)
        # The kind of latents is known before they are read, so the distribution (in every output's name) is too.
        self.label = req.distribution or ("histogram" if discrete else "normal")
        self.discrete = discrete
        if self.stats is not None:
            self._check(self.stats)
        rate = (self.model.sr, self.model.ratio) if self.model else None
        self.sr, self.ratio = resolve_rate(req.sample_rate, req.ratio, rate, data, warn)
        self.stats_path = req.output / STATS_NAME
        # The one stats file given is what the outputs name; several are pooled into this run's stats.json.
        self.stats_file = req.stats_files[0] if len(req.stats_files) == 1 else None
        self.writes_stats = not (self.stats_file and Path(self.stats_file).resolve() == self.stats_path.resolve())
        self.read = self.files or (self.stats.sources if self.stats else [])
        self.extra_outputs = ([self.stats_path] if self.writes_stats else []) + \
            ([req.output / name for name in STATS_PLOTS] if req.plot else [])

    def _check(self, stats: Stats) -> None:
        """The statistics fit the model and the distribution (checked once, whichever way they came)."""
        check_kind(stats, self.model, self.req.model_file)
        check_distribution(stats, self.label, self.req.iqr, self.req.smoothing)
        if needs_quartiles(self.label, self.req.iqr) and not stats.discrete:
            stats.require_quartiles()

    def prepare(self, k: int) -> None:
        """Analyse the inputs (unless a stats file was given), then write stats.json and its plots."""
        req = self.req
        if self.stats is None:
            model_codebook = self.model.codebook_size if self.model and self.model.discrete else None
            stats = compute_stats(self.files, quartiles=needs_quartiles(self.label, req.iqr) and not self.discrete,
                                  warn=self.warn, codebook_size=model_codebook)
            kind = f" (codes of a codebook of {stats.codebook_size})" if stats.discrete else ""
            self.info(f"analysed {len(self.files)} file(s), {stats.frames} latent frames of {stats.latent_dims} "
                      f"dims{kind}")
            self._check(stats)
            if self.dims is None:  # no sidecar said: the size limit is checked now that the dims are known
                check_k_fits(req.module, req.pattern, k, stats.latent_dims, req.num_loops, dict(req.pattern_options),
                             req.max_frames, self.sr, self.ratio, req.bpm)
            self.stats = stats
        stats = self.stats
        stats.smoothing = req.smoothing
        constant = constant_dims_warning(stats, req.smoothing)
        if constant:  # one line for all of them: a corpus of silence can have every dim constant
            self.warn(constant)
        if stats.sr is None:
            stats.sr, stats.ratio = self.sr, self.ratio
        if self.model is not None and stats.latent_dims != self.model.latent_size:
            self.warn(f"{req.model_file}: the model has {self.model.latent_size} latent dims but the latents have "
                      f"{stats.latent_dims}; decoding them needs a model of the same size")
        if not req.embeddings and stats.latent_dims > PD_MAX_CHANNELS:
            self.warn(f"{stats.latent_dims} latent dims: Pure Data's soundfiler reads at most {PD_MAX_CHANNELS} "
                      "channels of a WAV")
        double_warning(req, self.warn)
        if self.writes_stats:
            save_stats(self.stats_path, stats)
        self.info(f"statistics in {self.stats_path}")
        if req.plot:
            plot_distributions(stats, req.output / STATS_PLOTS[0])
            plot_correlation(stats, req.output / STATS_PLOTS[1])

    def pattern_file(self, index: int, k: int) -> tuple[np.ndarray, dict]:
        """File ``index``: its pattern ``[shape=(frames, latent_dims)]``, float32, and its sidecar."""
        req, stats = self.req, self.stats
        assert stats is not None  # prepare() ran
        rng = file_rng(req.seed, index)
        size = req.base_frames(k)
        bases = [sample(stats, self.label, size, rng, iqr=req.iqr, warn=self.warn) for _ in range(req.module.NUM_BASES)]
        array = make_pattern(req.module, req.pattern, stats, bases, rng, iqr=req.iqr, num_loops=req.num_loops,
                             options=dict(req.pattern_options))
        stats_file = str(self.stats_file or self.stats_path)
        meta = make_sidecar(
            sr=self.sr, ratio=self.ratio, latent_dims=stats.latent_dims, frames=array.shape[0],
            model={"file": Path(req.model_file).name} if req.model_file else None,
            source={"stats": stats_file, "files": len(stats.sources), "frames": stats.frames},
            seed=req.seed, created_by="generator.py", discrete=stats.discrete, codebook_size=stats.codebook_size,
            generator={**_generator_record(req, self.label, k, index, self.sr, self.ratio, stats.smoothing),
                       "stats_source": stats_file},
        )
        return array, meta


class PriorSource:
    """Frames an MSPrior generates, prompted by ``--input`` (latents or audio) or silence.

    The pattern varies its bases by statistics of those generated frames
    (``stats.scale``, code histograms), so no stats.json is written.
    ``progress(done, total)`` hears seconds of generated audio of the whole run.
    """

    def __init__(self, req: GenerateRequest, stdin: TextIO | None, warn: Warn, info: Warn,
                 progress: Callable[[float, float], None] | None = None):
        assert req.prior_file is not None and req.model_file is not None  # the request checked both
        self.req, self.warn, self.info, self.progress = req, warn, info, progress
        self.prior = load_prior(req.prior_file)
        use_threads(1)  # the prompt's encoding is a model call like any other: one thread, the reproducible layout
        self.rave = load_model(req.model_file, device="cpu")
        self.model = self.rave.info
        check_fit(self.prior.info, self.model, req.model_file)
        self.label = PRIOR_LABEL
        self.dims: int | None = self.prior.info.latent_size
        self.sr, self.ratio = self.model.sr, self.model.ratio
        self.files = gather_inputs(req.inputs, req.extensions, stdin, exclude_dir=req.output, null=req.null) \
            if req.inputs else []
        self.read: list[Path] = self.files
        self.extra_outputs: list[Path] = []

    def prepare(self, k: int) -> None:
        """Read the prompt once."""
        double_warning(self.req, self.warn)
        self.prompt, self.prompt_record = read_prompt(self.files, self.rave, self.prior, self.req.seed, self.warn)
        if self.files:
            self.info(f"prompt: {self.prompt_record['frames']} frames from {len(self.files)} file(s); the prior "
                      f"hears the last {self.prompt_record['heard']}")

    def pattern_file(self, index: int, k: int) -> tuple[np.ndarray, dict]:
        """File ``index``: the prior generates its bases, the pattern arranges them."""
        req, info = self.req, self.prior.info
        per_base = req.base_frames(k)
        per_file = per_base * req.module.NUM_BASES
        rate = self.sr / self.ratio
        progress = None
        if self.progress is not None:
            report, total = self.progress, per_file * req.num_files / rate
            progress = lambda done: report((index * per_file + done) / rate, total)  # noqa: E731
        try:
            frames = self.prior.generate(per_file, seed=file_torch_seed(req.seed, index), prompt=self.prompt,
                                         temperature=req.temperature, progress=progress)
        except RuntimeError as exc:
            raise describe_error(info.path, exc) from None
        bases = [frames[i * per_base:(i + 1) * per_base] for i in range(req.module.NUM_BASES)]
        stats = stats_of_frames(frames, quartiles=req.iqr, codebook_size=info.num_tokens if info.discrete else None)
        stats.robust, stats.smoothing = req.iqr, req.smoothing
        array = make_pattern(req.module, req.pattern, stats, bases, file_rng(req.seed, index), iqr=req.iqr,
                             num_loops=req.num_loops, options=dict(req.pattern_options))
        meta = make_sidecar(
            sr=self.sr, ratio=self.ratio, latent_dims=info.latent_size, frames=array.shape[0],
            model=self.model.identity(kind=False),  # the prior's outputs have always named these two
            source={"prior": Path(info.path).name}, seed=req.seed, created_by="generator.py",
            discrete=info.discrete, codebook_size=info.num_tokens if info.discrete else None,
            prior=prior_sidecar(info, req.temperature, self.prompt_record),
            generator=_generator_record(req, self.label, k, index, self.sr, self.ratio, req.smoothing, per_base),
        )
        return array, meta


def _generator_record(req: GenerateRequest, label: str, k: int, index: int, sr: int, ratio: int, smoothing: float,
                      base_frames: int | None = None) -> dict:
    """The ``generator`` section of a pattern file's sidecar (in this key order, which its bytes keep)."""
    record = {"pattern": req.pattern, "pattern_options": dict(req.pattern_options), "distribution": label,
              "iqr": req.iqr, "num_latents": k}
    if base_frames is not None:
        record["base_frames"] = base_frames
    return {**record, "num_loops": req.num_loops, "index": index, "smoothing": smoothing,
            "bpm": bpm_of(k, sr, ratio), "double_time_bpm": double_time_of(k, sr, ratio)}


def double_warning(req: GenerateRequest, warn: Warn) -> None:
    """Say once what ``--double`` does here: nothing with ``--embeddings``, unreadable WAVs for Pd otherwise."""
    if req.double:
        warn("--embeddings writes .npy: --double is ignored" if req.embeddings else
             "--double: Pure Data 0.53 cannot read 64-bit float WAVs; leave it out for Pd")


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
