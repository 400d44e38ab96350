#!/usr/bin/env python3
"""Encode audio files and folders into RAVE latents.

Each input becomes OUTPUT/<mirrored path>.npy, float32 (1, latent_dims, frames),
one frame per `ratio` samples of the model, with a JSON sidecar (.json) that
records the model, source, exact latent rate and seed. Output paths go to
stdout, one per line; progress and messages go to stderr.

example:
  python encoder.py --model model.ts --input recordings/ --output latents
  find . -name '*.flac' | python encoder.py --model model.ts --input - | python generator.py --input - ...
"""

from __future__ import annotations

import sys

from ravekit.choices import AUDIO_EXTENSIONS, CHANNEL_MODES, extensions_text
from ravekit.commands import console, parallel
from ravekit.commands import flags as cli
from ravekit.commands.batch import find_jobs, pending, run_jobs, summarise
from ravekit.commands.progress import audio_seconds
from ravekit.commands.summary import summary_target

# start-up: torch, numpy and the engine load inside the functions that encode, so --help is fast.

PROG = cli.prog_name("encoder.py")  # or ravekit-encoder, as the user ran it


def get_parser():
    parser = cli.make_parser(PROG, __doc__)
    cli.add_model_batch_args(parser, "audio to encode", "./_encoder-output", extensions_text(AUDIO_EXTENSIONS))
    parser.add_argument(
        "--channel_mode", default="auto", choices=CHANNEL_MODES,
        help="how file channels feed the model: auto mixes down for a mono model, duplicates mono "
        "into a stereo one, and otherwise takes the first channels (saying so when it leaves some out); "
        "mix averages all into every model channel; fold averages file channel k into model channel "
        "k mod n (6 into 2: 1+3+5 left, 2+4+6 right); split encodes each channel separately "
        "(NAME.ch1.npy, NAME.ch2.npy, ...)",
    )
    parser.add_argument(
        "--channels", type=cli.channel_list, default=None, metavar="LIST",
        help="use only these file channels, counted from 1, in this order (e.g. 3,4 into a stereo model); "
        "--channel_mode then applies to them",
    )
    cli.add_live_args(parser, "encode")
    return parser


def main(argv=None) -> int:
    return parallel.batch_main(PROG, get_parser(), argv, "ravekit.commands.encoder", run)


def run(args, workers: int = 1) -> int:
    """Encode the inputs with ``workers`` processes sharing each file's model calls (``engine.pool``)."""
    from pathlib import Path

    from ravekit.engine.layout import use_threads
    from ravekit.engine.pool import ChunkPool

    if args.channels:
        from ravekit.io.channels import channel_plan

        # A mode the picked channels cannot serve (--channels 3 --channel_mode right) is a wrong command line.
        channel_plan(max(args.channels) + 1, 1, args.channel_mode, args.channels)
    jobs = find_jobs(args.input, args.extensions, Path(args.output), ".npy", args.shard, args.part,
                     args.null, summary=args.summary)
    use_threads(args.threads)
    if args.live is not None:
        workers = 1  # nn~'s calls run in order in this process: helpers would have nothing to do
    # Started first, the helpers load the model while this process does.
    pool = ChunkPool(workers, args.threads, preload=[args.model] if args.device in ("cpu", "auto") else [])
    with pool:  # the helpers stop however the run ends
        return _encode_jobs(args, jobs, pool)


def _encode_jobs(args, jobs, pool) -> int:
    """Encode ``jobs`` with the model's calls shared by ``pool`` (``run`` made both)."""
    from ravekit.engine.encode import Encoder
    from ravekit.engine.model import load_model
    from ravekit.io.prefetch import AudioPrefetcher

    encoder = Encoder(load_model(args.model, args.device), args.seed, args.channel_mode, args.chunk, args.channels,
                      cli.live_setting(args))
    pool.serve(encoder.model)

    def finished(job):
        return encoder.finished(job.source, job.output)

    # Decode and resample upcoming files on a thread while the model works.
    todo = pending(jobs, finished, args.force, args.null)
    order = {id(job): i for i, job in enumerate(todo)}
    prefetcher = AudioPrefetcher([job.source for job in todo], encoder.model.info.sr,
                                 max_blocks=encoder.prefetch_blocks())

    def work(job, progress):
        written = []
        for result in encoder.encode_file(job.source, prefetcher.open(order[id(job)]), progress):
            for message in result.warnings:
                console.warn(PROG, message)
            written.append(result.save(encoder.output_for(job.output, result.suffix)))
        return written

    def estimate(job):
        found = audio_seconds(job.source)
        return None if found is None else found[0] * encoder.passes(found[1])

    with prefetcher:
        report = run_jobs(PROG, jobs, work, finished, args.force, args.quiet, estimate, args.null)
    return summarise(PROG, report, args.quiet, summary_target(PROG, args))


if __name__ == "__main__":
    sys.exit(main())
