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

from ravekit.commands import flags as cli

PROG = "encoder.py"
AUDIO_EXTENSIONS = ".wav,.aif,.aiff,.flac,.ogg,.opus,.mp3,.m4a,.aac"


def get_parser():
    parser = cli.make_parser(PROG, __doc__)
    cli.add_model_batch_args(parser, "audio to encode", "./_encoder-output", AUDIO_EXTENSIONS)
    parser.add_argument(
        "--channel_mode", default="auto", choices=["auto", "mix", "fold", "left", "right", "split"],
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
    return parser


def main(argv=None) -> int:
    return cli.batch_main(PROG, get_parser(), argv, "ravekit.commands.encoder", run)


def run(args) -> int:
    from pathlib import Path

    from ravekit.commands.batch import check_link, find_jobs, run_jobs, summarise
    from ravekit.engine.encode import Encoder
    from ravekit.errors import RavekitError
    from ravekit.io.latents import read_sidecar, save_npy
    from ravekit.engine.model import load_model
    from ravekit.io.prefetch import AudioPrefetcher
    from ravekit.io.records import stale_error

    jobs = find_jobs(args.input, args.extensions, Path(args.output), ".npy", args.shard, args.part,
                     args.null)
    encoder = Encoder(load_model(args.model, args.device), args.seed, args.channel_mode, args.chunk, args.channels)

    def outputs(job, suffixes):
        return [job.output.with_name(job.output.stem + s + ".npy") for s in suffixes]

    def exists(job):
        planned = outputs(job, encoder.plan(job.source)) if args.channel_mode == "split" else [job.output]
        if not all(p.exists() for p in planned):
            return []
        for path in planned:
            changed = encoder.differences(read_sidecar(path))
            if changed:
                raise stale_error(path, changed)
        return planned

    def to_do(job) -> bool:
        try:
            check_link(job.source)
            cli.check_printable(job.output, args.null)
            return args.force or not exists(job)
        except RavekitError:
            return False  # run_jobs meets the problem again and reports it with the file

    # Decode and resample upcoming files on a thread while the model works.
    todo = [job for job in jobs if to_do(job)]
    order = {id(job): i for i, job in enumerate(todo)}
    prefetcher = AudioPrefetcher([job.source for job in todo], encoder.model.info.sr,
                                 max_blocks=prefetch_blocks(encoder))

    def work(job, progress):
        written = []
        for result in encoder.encode_file(job.source, prefetcher.open(order[id(job)]), progress):
            for message in result.warnings:
                cli.warn(PROG, message)
            written.append(save_npy(outputs(job, [result.suffix])[0], result.z, result.meta))
        return written

    def estimate(job):
        """Seconds of audio the file puts through the model (every pass), from its header."""
        from ravekit.io.channels import channel_plan
        from ravekit.commands.progress import audio_seconds

        found = audio_seconds(job.source)
        if found is None:
            return None
        try:
            return found[0] * len(channel_plan(found[1], encoder.model.info.n_channels, args.channel_mode,
                                               args.channels))
        except RavekitError:
            return found[0]

    with prefetcher:
        report = run_jobs(PROG, jobs, work, exists, args.force, args.quiet, estimate, args.null)
    return summarise(PROG, report, args.quiet)


def prefetch_blocks(encoder) -> int:
    """Enough read-ahead for one model chunk, so reading the next one overlaps its encoding."""
    from ravekit.io.audio import BLOCK

    m = encoder.model.info
    return 2 + min(encoder.chunk * m.ratio, 4 * m.sr * 60) // BLOCK


if __name__ == "__main__":
    sys.exit(main())
