"""generator.py's whole run, one pipeline for both sources: statistics or prior -> bases -> pattern -> files.

:func:`generate` carries out a checked :class:`~ravekit.generate.request.GenerateRequest`:

1. open the source (:mod:`ravekit.generate.sources`): the inputs' sidecars,
   a stats file, or the prior and its model; no latent is read yet;
2. choose the loop length ``k`` (``--bpm`` or ``--num_latents``), checking
   for it that each file fits ``--max_frames`` and that none of the files
   the run will write exists (unless ``force``) or is an input, then claim
   the output folder;
3. prepare the source (the analysis and stats.json, or the prompt), then for
   each file its pattern, written with its sidecar (and plot); last the Pd
   patch.  A run that fails here takes back what it wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from ravekit.errors import RavekitError
from ravekit.generate.drawing import write_output
from ravekit.generate.plan import Unpublished, Warn, check_k_fits, check_outputs, choose_k
from ravekit.generate.plots import plot_pattern
from ravekit.generate.request import GenerateRequest
from ravekit.generate.sources import PriorSource, StatsSource
from ravekit.io.claims import claim_output
from ravekit.io.latents import sidecar_path
from ravekit.puredata.patch import patch_name, write_run_patch


def generate(req: GenerateRequest, *, warn: Warn, info: Warn, on_output: Callable[[Path], None],
             stdin: TextIO | None = None, progress: Callable[[float, float], None] | None = None) -> list[Path]:
    """Make ``req.num_files`` pattern files (and stats.json, plots, a Pd patch, as asked).

    Parameters
    ----------
    req : GenerateRequest
    warn, info : callable(str)
        Hear warnings and notes, one line each.
    on_output : callable(pathlib.Path)
        Called after each pattern file is written.
    stdin : text stream or None
        Where ``-`` among ``req.inputs`` reads paths.
    progress : callable(float, float) or None
        With a prior: ``progress(done, total)`` in seconds of generated audio, after every call of the prior.

    Returns
    -------
    paths : list of pathlib.Path
        The pattern files, in order.
    """
    source = PriorSource(req, stdin, warn, info, progress) if req.prior_file else StatsSource(req, stdin, warn, info)
    planned: list[Path] = []

    def check_plan(k: int) -> None:
        if source.dims is not None:
            check_k_fits(req.module, req.pattern, k, source.dims, req.num_loops, dict(req.pattern_options),
                         req.max_frames, source.sr, source.ratio, req.bpm)
        files = [req.output / req.file_name(source.label, k, i) for i in range(req.num_files)]
        planned[:] = source.extra_outputs + \
            ([req.output / patch_name(req.pattern, source.label, req.iqr, k, req.seed)] if req.pd else []) + \
            [p for f in files for p in [f, sidecar_path(f)] + ([f.with_suffix(".png")] if req.plot else [])]
        check_outputs(planned, source.read, req.force)
        claim_output(req.output)  # last: a refused run leaves no empty output folder behind

    k = choose_k(req.num_latents, req.bpm, source.sr, source.ratio, warn, info, check=check_plan)
    # What this run writes from here on is removed again if it fails part-way (a bad input, a pattern that
    # raises, a full disk, Ctrl-C): left behind, it would only refuse the next run.
    with Unpublished(planned):
        source.prepare(k)
        written = []
        for index in range(req.num_files):
            array, meta = source.pattern_file(index, k)
            if array.shape[0] > req.max_frames:
                raise RavekitError(f"pattern {req.pattern!r} made {array.shape[0]} frames, more than --max_frames "
                                   f"{req.max_frames}; lower --num_latents or --num_loops")
            path = write_output(req.output / req.file_name(source.label, k, index), array,
                                embeddings=req.embeddings, double=req.double and not req.embeddings, sr=source.sr,
                                ratio=source.ratio, meta=meta, warn=warn)
            written.append(path)
            on_output(path)
            if req.plot:
                plot_pattern(array, req.loop_boundaries(k, array.shape[0]), path.with_suffix(".png"), path.stem,
                             rate=source.sr / source.ratio)
        if req.pd:
            assert req.model_file is not None  # the request refused --pd without --model
            write_run_patch(req.output, written, module=req.module, pattern=req.pattern, distribution=source.label,
                            iqr=req.iqr, k=k, seed=req.seed, num_loops=req.num_loops,
                            options=dict(req.pattern_options), model_file=req.model_file, model=source.model,
                            warn=warn, info=info)
        return written
