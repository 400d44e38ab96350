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
    cli.add_input_arg(parser, "audio to encode")
    cli.add_model_arg(parser)
    cli.add_output_arg(parser, "./_encoder-output")
    cli.add_batch_args(parser, AUDIO_EXTENSIONS)
    cli.add_seed_arg(parser)
    cli.add_device_arg(parser)
    cli.add_force_arg(parser)
    parser.add_argument(
        "--channel_mode", default="auto", choices=["auto", "mix", "left", "right", "split"],
        help="how file channels feed the model: auto mixes down for a mono model and duplicates mono "
        "into a stereo one; split encodes each channel separately (NAME.ch1.npy, NAME.ch2.npy, ...)",
    )
    cli.add_chunk_arg(parser)
    return parser


def main(argv=None) -> int:
    args = cli.parse_args(get_parser(), argv)
    return cli.run_main(PROG, lambda: run(args))


def run(args) -> int:
    from pathlib import Path

    from ravekit.batch import collect_inputs, plan_jobs, run_jobs, summarise
    from ravekit.encoding import Encoder
    from ravekit.latents import save_npy
    from ravekit.model import load_model
    from ravekit.prefetch import AudioPrefetcher

    output = Path(args.output)
    shard = cli.parse_shard(args.shard)
    pairs = collect_inputs(args.input, cli.parse_extensions(args.extensions), output)
    jobs = plan_jobs(pairs, output, ".npy", shard)
    encoder = Encoder(load_model(args.model, args.device), args.seed, args.channel_mode, args.chunk)

    def outputs(job, suffixes):
        return [job.output.with_name(job.output.stem + s + ".npy") for s in suffixes]

    def exists(job):
        planned = outputs(job, encoder.plan(job.source)) if args.channel_mode == "split" else [job.output]
        return planned if all(p.exists() for p in planned) else []

    # Decode and resample upcoming files on a thread while the model works.
    todo = [job for job in jobs if args.force or not exists(job)]
    order = {id(job): i for i, job in enumerate(todo)}
    prefetcher = AudioPrefetcher([job.source for job in todo], encoder.model.info.sr,
                                 max_blocks=prefetch_blocks(encoder))

    def work(job):
        written = []
        for result in encoder.encode_file(job.source, prefetcher.open(order[id(job)])):
            written.append(save_npy(outputs(job, [result.suffix])[0], result.z, result.meta))
        return written

    with prefetcher:
        report = run_jobs(PROG, jobs, work, exists, args.force, args.quiet)
    return summarise(PROG, report, args.quiet)


def prefetch_blocks(encoder) -> int:
    """Enough read-ahead for one model chunk, so reading the next one overlaps its encoding."""
    from ravekit.audio import BLOCK

    m = encoder.model.info
    return 2 + min(encoder.chunk * m.ratio, 4 * m.sr * 60) // BLOCK


if __name__ == "__main__":
    sys.exit(main())
