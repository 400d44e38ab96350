"""generator.py with ``--prior``: the bases of every pattern are frames an MSPrior model generates.

Like :func:`ravekit.generate.run.run`, everything is checked before any
input is read: flags, the prior (an MSPrior export that fits ``--model``:
same latent dims, ratio and kind of latents), the loop length, and the files
the run will write.  Then the prompt is read once (latents, or audio through
``--model``'s encoder; silence encoded by ``--model`` without one), and for
each output file ``i`` the prior is reset, seeded from ``(seed, i)``, hears
the prompt and generates ``NUM_BASES x base length`` frames, which are cut
into the pattern's bases.  The pattern varies them by statistics of those
generated frames (``stats.scale``, code histograms), so no stats.json is
written.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ravekit.errors import RavekitError
from ravekit.generate.drawing import make_pattern, write_output
from ravekit.generate.plan import (
    Unpublished,
    Warn,
    check_k_fits,
    check_outputs,
    check_request,
    choose_k,
    gather_inputs,
    output_name,
)
from ravekit.generate.tempo import bpm_of, double_time_of

SOURCE = "prior"  # in output names where a distribution's name goes


def base_frames(module, k: int, num_loops: int, options: dict) -> int:
    """Frames in each base: ``k``, or what the pattern's ``base_frames`` says."""
    fn = getattr(module, "base_frames", None)
    return int(fn(k, num_loops, **options)) if fn else k


def frames_stats(frames: np.ndarray, *, iqr: bool, smoothing: float, codebook_size: int | None):
    """Statistics of generated latents, for the pattern's variations.

    Parameters
    ----------
    frames : np.ndarray [shape=(frames, latent_dims)]
        What the prior generated.
    iqr : bool
        Also compute quartiles (--iqr).
    smoothing : float >= 0
        The run's --smoothing, for code probabilities.
    codebook_size : int > 0 or None
        The discrete model's codebook size; ``None`` for continuous latents.

    Returns
    -------
    stats : ravekit.generate.stats.Stats
    """
    from ravekit.generate.pooling import MomentAccumulator, _finalize, quartiles_in_place
    from ravekit.generate.stats import Stats
    from ravekit.io.codes import histogram

    n, dims = frames.shape
    x = frames.T.astype(np.float64)
    if n >= 2:
        acc = MomentAccumulator(dims)
        acc.add(x)
        parts = _finalize(acc.n, acc.mean, acc.m2, acc.lo, acc.hi)
    else:  # one frame has no spread
        zero = np.zeros((dims, dims))
        parts = {"mean": x[:, 0].copy(), "std": np.zeros(dims), "cov": zero, "corr": np.eye(dims),
                 "min": x[:, 0].copy(), "max": x[:, 0].copy()}
    stats = Stats(latent_dims=dims, frames=n, robust=iqr, smoothing=smoothing, **parts)
    if iqr:
        stats.q1, stats.median, stats.q3 = quartiles_in_place(frames.T.astype(np.float32))
    if codebook_size:
        stats.codebook_size, stats.histograms = codebook_size, histogram(frames.T, codebook_size)
    return stats


def is_audio(path: Path) -> bool:
    """A prompt file to encode: not ``.npy``, and no latent WAV (whose header rate is the latent rate)."""
    if path.suffix.lower() == ".npy":
        return False
    if path.suffix.lower() != ".wav":
        return True
    import soundfile as sf

    from ravekit.io.latents import AUDIO_RATE_FLOOR

    try:
        return sf.info(str(path)).samplerate >= AUDIO_RATE_FLOOR
    except Exception:  # noqa: BLE001 - unreadable: read_latent_wav says why
        return False


def read_prompt(files: Sequence[Path], model, prior, seed: int,
                warn: Warn | None = None) -> tuple[np.ndarray | None, dict]:
    """The prompt from ``files`` in order, and its sidecar record.

    Without files the prompt is silence as ``model`` encodes it.

    Parameters
    ----------
    files : sequence of pathlib.Path
        Latent files or audio (encoded by ``model``).
    model : ravekit.engine.model.RaveModel
        The RAVE model the prior was trained on.
    prior : ravekit.generate.prior.Prior
    seed : int
    warn : callable(str) or None
        Hears about latents whose sidecar names another model (or ratio) than ``model``, as the decoder
        says of latents it decodes: the prior would hear them as ``model``'s.

    Returns
    -------
    prompt : np.ndarray [shape=(latent_dims, frames), dtype=float32] or None
        At most the prior's ``seq_len`` last frames.
    record : dict
        The ``prompt`` section of the outputs' sidecars.
    """
    from ravekit.generate.prior import SILENCE_FRAMES, silence_prompt
    from ravekit.io.codes import check_codes
    from ravekit.io.files import sha256_of

    p = prior.info
    if not files:
        z = silence_prompt(model, seed)
        return z, {"source": "silence", "frames": SILENCE_FRAMES, "encoded_by": Path(model.info.path).name}
    tail = np.zeros((p.latent_size, 0), dtype=np.float32)
    record: list[dict[str, Any]] = []
    for f in files:
        audio = is_audio(f)
        if audio:
            from ravekit.engine.encode import Encoder

            z = next(iter(Encoder(model, seed=seed).encode_file(f))).z[0]
        else:
            from ravekit.io.latents import Latents

            latents = Latents.load(f)
            z = latents.z[0]
            for found in latents.sidecar.mismatches(model.info, ("ratio", "model")):
                if warn is None:
                    continue
                name = Path(model.info.path).name
                if found.what == "ratio":
                    warn(f"{f}: made for compression ratio {found.recorded}, but {name} and its prior run at "
                         f"{model.info.ratio}; the prior hears the prompt at the wrong speed")
                else:
                    warn(f"{f}: encoded with {found.recorded or 'another model'}, but the prior belongs to {name}; "
                         f"it hears the prompt as {name}'s latents (prompt it with latents of {name}, or audio)")
        if z.shape[0] != p.latent_size:
            raise RavekitError(f"{f}: has {z.shape[0]} latent dims, but the prior {p.path} takes {p.latent_size}; "
                               "prompt it with latents of its RAVE model (or audio)")
        if p.discrete:
            check_codes(z, p.num_tokens, f, f"the prior's {p.num_tokens} codes", "prompt it with codes of its model")
        tail = np.concatenate([tail, z.astype(np.float32)], axis=1)
        if p.seq_len:  # only the last seq_len frames are heard: keeping just those bounds memory
            tail = tail[:, -p.seq_len:]
        record.append({"file": str(f), "sha256": sha256_of(f), "frames": int(z.shape[1]), "audio": audio})
    prompt = tail
    total = sum(r["frames"] for r in record)
    return prompt, {"source": "input", "files": record, "frames": total, "heard": int(prompt.shape[1])}


def run(*, module, pattern: str, options: dict, prior_file: str, temperature: float, inputs: Sequence[str] | None,
        stats_file: str | None, distribution: str | None, extensions: Sequence[str], stdin: TextIO | None,
        output: Path, seed: int, iqr: bool, smoothing: float, num_latents: int, bpm: float | None, num_loops: int,
        num_files: int, embeddings: bool, double: bool, plot: bool, model_file: str | None, max_frames: int,
        warn: Warn, info: Warn, on_output: Callable[[Path], None], force: bool = False, null: bool = False,
        progress: Callable[[float, float], None] | None = None, sample_rate: int | None = None,
        ratio: int | None = None, pd: bool = False) -> list[Path]:
    """generator.py ``--prior``: check everything, read the prompt, write ``num_files`` pattern files.

    ``progress(done, total)`` is called in seconds of generated audio (frames
    / latent rate) of the whole run after every call of the prior; ``on_output(path)`` after each file is written.
    With ``pd`` a Pure Data patch that plays the WAVs is written beside them, as for the other sources.
    """
    from ravekit.engine.layout import use_threads
    from ravekit.engine.model import load_model
    from ravekit.generate.prior import check_fit, load_prior
    from ravekit.io.claims import claim_output
    from ravekit.io.latents import sidecar_path

    check_request(seed=seed, bpm=bpm, sample_rate=None, ratio=None, pattern_module=module, options=options,
                  counts={"num_latents": num_latents, "num_loops": num_loops, "num_files": num_files,
                          "max_frames": max_frames})
    if sample_rate is not None or ratio is not None:
        raise RavekitError("--prior takes the sample rate and ratio from --model; leave out --sample_rate and "
                           "--ratio", 2)
    if stats_file or distribution:
        what = "--stats" if stats_file else f"--distribution {distribution}"
        raise RavekitError(f"{what} draws frames from statistics, --prior generates them; give one or the other "
                           "(--input with --prior is the prompt the prior hears)", 2)
    if not (math.isfinite(temperature) and temperature >= 0):
        raise RavekitError(f"--temperature {temperature:g}: give 0 or more (1 is the prior's own; lower is "
                           "more predictable)", 2)
    if not (math.isfinite(smoothing) and smoothing >= 0):
        raise RavekitError(f"--smoothing {smoothing:g}: give a pseudo-count of 0 or more, e.g. --smoothing 1", 2)
    if not model_file:
        raise RavekitError("--prior needs --model: the RAVE model the prior was trained on (it gives the sample "
                           "rate, encodes the prompt or silence, and is checked against the prior)", 2)
    if pd:
        from ravekit.puredata.patch import check_request as check_pd
        from ravekit.puredata.patch import patch_name

        check_pd(model_file=model_file, embeddings=embeddings, double=double)
    prior = load_prior(prior_file)
    # The prompt's encoding is a model call like any other: one thread, the reproducible layout.
    use_threads(1)
    model = load_model(model_file, device="cpu")
    check_fit(prior.info, model.info, model_file)
    sr, ratio, dims = model.info.sr, model.info.ratio, prior.info.latent_size
    files = gather_inputs(inputs, extensions, stdin, exclude_dir=output, null=null) if inputs else []
    ext = ".npy" if embeddings else ".wav"

    def names(k: int) -> list[Path]:
        return [output / output_name(pattern, SOURCE, iqr, k, seed, i, ext) for i in range(num_files)]

    planned: list[Path] = []

    def check_plan(k: int) -> None:
        check_k_fits(module, pattern, k, dims, num_loops, options, max_frames, sr, ratio, bpm)
        planned[:] = [q for p in names(k) for q in [p, sidecar_path(p)] + ([p.with_suffix(".png")] if plot else [])]
        if pd:
            planned.append(output / patch_name(pattern, SOURCE, iqr, k, seed))
        check_outputs(planned, files, force)
        claim_output(output)

    k = choose_k(num_latents, bpm, sr, ratio, warn, info, check=check_plan)
    if double:
        warn("--embeddings writes .npy: --double is ignored" if embeddings else
             "--double: Pure Data 0.53 cannot read 64-bit float WAVs; leave it out for Pd")
    # A run that fails part-way (a bad prompt, the prior, a full disk, Ctrl-C) takes back what it wrote:
    # left behind, it would only refuse the next run.
    with Unpublished(planned):
        prompt, prompt_record = read_prompt(files, model, prior, seed, warn)
        if files:
            info(f"prompt: {prompt_record['frames']} frames from {len(files)} file(s); the prior hears the last "
                 f"{prompt_record['heard']}")
        per_base = base_frames(module, k, num_loops, options)
        per_file = per_base * module.NUM_BASES
        total, rate = per_file * num_files, sr / ratio
        codebook = prior.info.num_tokens if prior.info.discrete else None
        paths = []
        for index in range(num_files):
            array = _one_file(module, pattern, prior, prompt, index, seed, temperature, per_base, k, num_loops,
                              options, iqr, smoothing, codebook, warn,
                              (lambda done, i=index: progress((i * per_file + done) / rate, total / rate))
                              if progress else None)
            if array.shape[0] > max_frames:
                raise RavekitError(f"pattern {pattern!r} made {array.shape[0]} frames, more than --max_frames "
                                   f"{max_frames}; lower --num_latents or --num_loops")
            path = names(k)[index]
            meta = _sidecar(model, prior, temperature, prompt_record, pattern, options, iqr, smoothing, k,
                            num_loops, index, seed, array.shape[0], per_base)
            written = write_output(path, array, embeddings=embeddings, double=double and not embeddings, sr=sr,
                                   ratio=ratio, meta=meta, warn=warn)
            paths.append(written)
            on_output(written)
            if plot:
                from ravekit.generate.plots import plot_pattern

                bounds_fn = getattr(module, "loop_boundaries", None)
                bounds = bounds_fn(k, num_loops, **options) if bounds_fn else range(0, array.shape[0], k)
                plot_pattern(array, list(bounds), written.with_suffix(".png"), written.stem, rate=sr / ratio)
        if pd:
            from ravekit.puredata.patch import write_run_patch

            write_run_patch(output, paths, module=module, pattern=pattern, distribution=SOURCE, iqr=iqr, k=k,
                            seed=seed, num_loops=num_loops, options=options, model_file=model_file, model=model.info,
                            warn=warn, info=info)
        return paths


def _one_file(module, pattern, prior, prompt, index, seed, temperature, per_base, k, num_loops, options, iqr,
              smoothing, codebook, warn, progress):
    """Generate file ``index``'s bases with the prior and run the pattern on them."""
    from ravekit.generate.drawing import file_rng
    from ravekit.generate.prior import describe_error, torch_seed

    try:
        frames = prior.generate(per_base * module.NUM_BASES, seed=torch_seed(seed, index), prompt=prompt,
                                temperature=temperature, progress=progress)
    except RuntimeError as exc:
        raise describe_error(prior.info.path, exc) from None
    bases = [frames[i * per_base:(i + 1) * per_base] for i in range(module.NUM_BASES)]
    stats = frames_stats(frames, iqr=iqr, smoothing=smoothing, codebook_size=codebook)
    return make_pattern(module, pattern, stats, SOURCE, iqr, k, num_loops, file_rng(seed, index), options, warn,
                        bases=bases)


def _sidecar(model, prior, temperature, prompt_record, pattern, options, iqr, smoothing, k, num_loops, index,
             seed, frames, per_base) -> dict:
    from ravekit.generate.prior import prior_sidecar
    from ravekit.io.latents import make_sidecar

    m = model.info
    return make_sidecar(
        sr=m.sr, ratio=m.ratio, latent_dims=prior.info.latent_size, frames=frames,
        model={"file": Path(m.path).name, "sha256": m.sha256}, source={"prior": Path(prior.info.path).name},
        seed=seed, created_by="generator.py", discrete=prior.info.discrete,
        codebook_size=prior.info.num_tokens if prior.info.discrete else None,
        prior=prior_sidecar(prior.info, temperature, prompt_record),
        generator={
            "pattern": pattern, "pattern_options": options, "distribution": SOURCE, "iqr": iqr,
            "num_latents": k, "base_frames": per_base, "num_loops": num_loops, "index": index,
            "smoothing": smoothing, "bpm": bpm_of(k, m.sr, m.ratio),
            "double_time_bpm": double_time_of(k, m.sr, m.ratio),
        },
    )
