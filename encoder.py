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

from ravekit import cli

PROG = "encoder.py"
AUDIO_EXTENSIONS = ".wav,.aif,.aiff,.flac,.ogg,.opus,.mp3,.m4a,.aac"


def get_parser():
    parser = cli.make_parser(PROG, __doc__)
    cli.add_model_batch_args(parser, "audio to encode", "./_encoder-output", AUDIO_EXTENSIONS)
    parser.add_argument(
        "--channel_mode", default="auto", choices=["auto", "mix", "left", "right", "split"],
        help="how file channels feed the model: auto mixes down for a mono model and duplicates mono "
        "into a stereo one; split encodes each channel separately (NAME.ch1.npy, NAME.ch2.npy, ...)",
    )
    return parser


def main(argv=None) -> int:
    return cli.batch_main(PROG, get_parser(), argv, __file__, run)


def run(args) -> int:
    from pathlib import Path

    from ravekit.batch import check_link, find_jobs, run_jobs, summarise
    from ravekit.encoding import Encoder
    from ravekit.errors import RavekitError
    from ravekit.latents import read_sidecar, save_npy
    from ravekit.model import load_model
    from ravekit.prefetch import AudioPrefetcher

    jobs = find_jobs(args.input, args.extensions, Path(args.output), ".npy", args.shard, args.part,
                     args.null)
    encoder = Encoder(load_model(args.model, args.device), args.seed, args.channel_mode, args.chunk)

    def outputs(job, suffixes):
        return [job.output.with_name(job.output.stem + s + ".npy") for s in suffixes]

    def exists(job):
        planned = outputs(job, encoder.plan(job.source)) if args.channel_mode == "split" else [job.output]
        if not all(p.exists() for p in planned):
            return []
        for path in planned:
            changed = encoder.differences(read_sidecar(path))
            if changed:
                raise RavekitError(f"{path}: made by an earlier run with other settings ({', '.join(changed)}); "
                                   "use --force to redo it, or another --output")
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

    def work(job):
        written = []
        for result in encoder.encode_file(job.source, prefetcher.open(order[id(job)])):
            written.append(save_npy(outputs(job, [result.suffix])[0], result.z, result.meta))
        return written

    with prefetcher:
        report = run_jobs(PROG, jobs, work, exists, args.force, args.quiet, args.null)
    return summarise(PROG, report, args.quiet)


def prefetch_blocks(encoder) -> int:
    """Enough read-ahead for one model chunk, so reading the next one overlaps its encoding."""
    from ravekit.audio import BLOCK

    m = encoder.model.info
    return 2 + min(encoder.chunk * m.ratio, 4 * m.sr * 60) // BLOCK


if __name__ == "__main__":
    sys.exit(main())
