#!/usr/bin/env python3
"""Decode RAVE latents (.npy or latent WAV) into audio through a model.

Each input becomes OUTPUT/<mirrored path>.wav at the model's sample rate,
32-bit float by default. When the latents' sidecar knows the source's length,
the audio is cut to it. Output paths go to stdout, messages to stderr.

example:
  python decoder.py --model model.ts --input latents/ --output decoded
"""

from __future__ import annotations

import sys

from ravekit import cli

PROG = "decoder.py"


def get_parser():
    parser = cli.make_parser(PROG, __doc__)
    cli.add_model_batch_args(parser, "latents to decode (.npy, or latent WAV written by generator.py)",
                             "./_decoder-output", ".npy,.wav")
    parser.add_argument("--subtype", default="FLOAT", choices=["FLOAT", "PCM_16", "PCM_24"],
                        help="sample format of the WAVs written")
    parser.add_argument("--no_trim", action="store_true",
                        help="keep the padding of the last frame instead of cutting to the source's length")
    return parser


def main(argv=None) -> int:
    return cli.batch_main(PROG, get_parser(), argv, __file__, run)


def run(args) -> int:
    from pathlib import Path

    from ravekit.batch import find_jobs, run_jobs, summarise
    from ravekit.decoding import Decoder
    from ravekit.model import load_model

    jobs = find_jobs(args.input, args.extensions, Path(args.output), ".wav", args.shard, args.part,
                     args.null)
    decoder = Decoder(load_model(args.model, args.device), args.seed, args.subtype, args.chunk, not args.no_trim)

    def work(job):
        path, warnings = decoder.decode_file(job.source, job.output)
        for message in warnings:
            cli.warn(PROG, message)
        return [path]

    report = run_jobs(PROG, jobs, work, lambda job: [job.output] if job.output.exists() else [],
                      args.force, args.quiet, args.null)
    return summarise(PROG, report, args.quiet)


if __name__ == "__main__":
    sys.exit(main())
