"""One generator run, as one frozen request: built from the flags, checked once, read by every step.

:class:`GenerateRequest` holds what a run is asked to do and nothing it
learns on the way (the rate, the loop length, the statistics).  Building one
checks every value that can be judged without reading a file, each failure a
``RavekitError`` with exit code 2, so a request that exists is a valid one.
:func:`ravekit.generate.pipeline.generate` carries it out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ravekit.choices import LATENT_EXTENSIONS
from ravekit.errors import RavekitError
from ravekit.seeds import check_seed

PRIOR_LABEL = "prior"  # in output names where a distribution's name goes, for frames a prior generated


@dataclass(frozen=True)
class GenerateRequest:
    """What generator.py is asked to do (one field per flag; see docs/generator.md).

    Attributes
    ----------
    module : module
        The pattern (:func:`ravekit.generate.patterns.load_pattern`).
    pattern : str
        Its name, for output names and messages.
    output : pathlib.Path
        The output folder.
    pattern_options : mapping
        The pattern's own flags, checked by its ``check_options`` when it has one.
    inputs : tuple of str
        Latents to analyse, or with ``prior_file`` the prompt (files, folders, ``-`` for stdin).
    stats_files : tuple of str
        Earlier analyses to use instead of ``inputs``; several are pooled exactly
        (:mod:`ravekit.generate.stats_pool`).
    prior_file : str or None
        An MSPrior export that generates the frames instead of statistics.
    temperature : float >= 0
        The prior's sampling temperature.
    extensions : tuple of str
        File endings picked up inside input folders.
    null : bool
        Paths on stdin are NUL-separated.
    seed : int in 0..2**32-1
    distribution : str or None
        How base frames are drawn; None: ``histogram`` for codes, else ``normal``.
    smoothing : float >= 0
        Pseudo-count added to every code (discrete models).
    iqr : bool
        Robust statistics (median, IQR / 1.349).
    num_latents, num_loops, num_files, max_frames : int >= 1
    bpm : float > 0 or None
        Choose the loop length nearest this tempo instead of ``num_latents``.
    embeddings, double, plot, pd, force : bool
    model_file : str or None
    sample_rate, ratio : int > 0 or None
        Hz, and audio samples per latent frame.
    """

    module: Any = field(repr=False, compare=False)
    pattern: str
    output: Path
    pattern_options: Mapping[str, Any] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    stats_files: tuple[str, ...] = ()
    prior_file: str | None = None
    temperature: float = 1.0
    extensions: tuple[str, ...] = LATENT_EXTENSIONS
    null: bool = False
    seed: int = 0
    distribution: str | None = None
    smoothing: float = 0.0
    iqr: bool = False
    num_latents: int = 10
    bpm: float | None = None
    num_loops: int = 1
    num_files: int = 1
    max_frames: int = 2_000_000
    embeddings: bool = False
    double: bool = False
    plot: bool = False
    pd: bool = False
    force: bool = False
    model_file: str | None = None
    sample_rate: int | None = None
    ratio: int | None = None

    def __post_init__(self) -> None:
        check_seed(self.seed)
        for flag in ("num_latents", "num_loops", "num_files", "max_frames"):
            if getattr(self, flag) < 1:
                raise RavekitError(f"--{flag} {getattr(self, flag)}: must be 1 or more", 2)
        if self.bpm is not None and not (math.isfinite(self.bpm) and self.bpm > 0):
            raise RavekitError(f"--bpm {self.bpm:g}: give a positive tempo in beats per minute, e.g. --bpm 120", 2)
        check_rate_flags(self.sample_rate, self.ratio)
        check = getattr(self.module, "check_options", None)
        if check is not None:
            try:
                check(**self.pattern_options)
            except ValueError as exc:
                raise RavekitError(str(exc), 2) from None
        if self.prior_file:
            self._check_prior()
        else:
            self._check_statistics()
        if self.pd:
            _check_pd(self.model_file, self.embeddings, self.double)

    def _check_statistics(self) -> None:
        if self.stats_files and self.inputs:
            raise RavekitError("give --input (latents to analyse) or --stats (an earlier analysis), not both", 2)
        if not self.stats_files and not self.inputs:
            raise RavekitError("nothing to analyse: pass latents with --input (or a stats.json with --stats)", 2)
        _check_smoothing(self.smoothing)

    def _check_prior(self) -> None:
        if self.sample_rate is not None or self.ratio is not None:
            raise RavekitError("--prior takes the sample rate and ratio from --model; leave out --sample_rate and "
                               "--ratio", 2)
        if self.stats_files or self.distribution:
            what = "--stats" if self.stats_files else f"--distribution {self.distribution}"
            raise RavekitError(f"{what} draws frames from statistics, --prior generates them; give one or the "
                               "other (--input with --prior is the prompt the prior hears)", 2)
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise RavekitError(f"--temperature {self.temperature:g}: give 0 or more (1 is the prior's own; lower "
                               "is more predictable)", 2)
        _check_smoothing(self.smoothing)
        if not self.model_file:
            raise RavekitError("--prior needs --model: the RAVE model the prior was trained on (it gives the "
                               "sample rate, encodes the prompt or silence, and is checked against the prior)", 2)

    @property
    def suffix(self) -> str:
        """The pattern files' ending: ``.npy`` with ``embeddings``, else ``.wav``."""
        return ".npy" if self.embeddings else ".wav"

    def file_name(self, label: str, k: int, index: int) -> str:
        """e.g. ``loop_normal_k11_s1_000.wav``: pattern, source label (``_iqr`` with iqr), k, seed, index."""
        return output_name(self.pattern, label, self.iqr, k, self.seed, index, self.suffix)

    def loop_boundaries(self, k: int, frames: int) -> list[int]:
        """Where each loop of a file of ``frames`` frames starts, for its plot."""
        fn = getattr(self.module, "loop_boundaries", None)
        return list(fn(k, self.num_loops, **self.pattern_options) if fn else range(0, frames, k))

    def base_frames(self, k: int) -> int:
        """Frames in each base: ``k``, or what the pattern's ``base_frames`` says."""
        fn = getattr(self.module, "base_frames", None)
        return int(fn(k, self.num_loops, **self.pattern_options)) if fn else k


def output_name(pattern: str, label: str, iqr: bool, k: int, seed: int, index: int, ext: str) -> str:
    """e.g. ``loop_normal_k11_s1_000.wav``; ``_iqr`` after the distribution (or ``prior``) with --iqr."""
    return f"{pattern}_{label}{'_iqr' if iqr else ''}_k{k}_s{seed}_{index:03d}{ext}"


def check_rate_flags(sample_rate: int | None, ratio: int | None) -> None:
    """Refuse a ``--sample_rate`` or ``--ratio`` of 0 or less (exit code 2)."""
    for flag, given in (("--sample_rate", sample_rate), ("--ratio", ratio)):
        if given is not None and given <= 0:
            raise RavekitError(f"{flag} {given}: must be a positive whole number", 2)


def _check_smoothing(smoothing: float) -> None:
    if not (math.isfinite(smoothing) and smoothing >= 0):
        raise RavekitError(f"--smoothing {smoothing:g}: give a pseudo-count of 0 or more, e.g. --smoothing 1", 2)


def _check_pd(model_file: str | None, embeddings: bool, double: bool) -> None:
    """Refuse --pd with flags it cannot honour."""
    if not model_file:
        raise RavekitError("--pd needs --model MODEL.ts: the patch's [nn~] loads that model", 2)
    if embeddings:
        raise RavekitError("--pd plays latent WAVs in Pure Data; leave out --embeddings (which writes .npy)", 2)
    if double:
        raise RavekitError("--pd: Pure Data 0.53 cannot read the 64-bit WAVs --double writes; leave out --double", 2)
