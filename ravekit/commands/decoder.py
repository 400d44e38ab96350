#!/usr/bin/env python3
"""Decode RAVE latents (.npy or latent WAV) into audio through a model.

Each input becomes OUTPUT/<mirrored path>.wav at the model's sample rate,
32-bit float by default (RF64 beyond 4 GiB), with a JSON record (.json) of how
it was made: a re-run keeps outputs made the same way and reports those made
otherwise. When the latents' sidecar knows the source's length, the audio is
cut to it. Output paths go to stdout, messages to stderr.

example:
  python decoder.py --model model.ts --input latents/ --output decoded
"""

from __future__ import annotations

import sys

from ravekit.choices import DECODER_SUBTYPES, LATENT_EXTENSIONS, extensions_text
from ravekit.commands import flags as cli

PROG = "decoder.py"


def get_parser():
    parser = cli.make_parser(PROG, __doc__)
    cli.add_model_batch_args(parser, "latents to decode (.npy, or latent WAV written by generator.py)",
                             "./_decoder-output", extensions_text(LATENT_EXTENSIONS))
    parser.add_argument("--subtype", default="FLOAT", choices=DECODER_SUBTYPES,
                        help="sample format of the WAVs written")
    parser.add_argument("--no_trim", action="store_true",
                        help="keep the padding of the last frame instead of cutting to the source's length")
    return parser


def main(argv=None) -> int:
    return cli.batch_main(PROG, get_parser(), argv, "ravekit.commands.decoder", run)


def run(args) -> int:
    from pathlib import Path

    from ravekit.commands.batch import find_jobs, run_jobs, summarise
    from ravekit.engine.decode import Decoder
    from ravekit.engine.model import load_model

    jobs = find_jobs(args.input, args.extensions, Path(args.output), ".wav", args.shard, args.part,
                     args.null, records=True)
    decoder = Decoder(load_model(args.model, args.device), args.seed, args.subtype, args.chunk, not args.no_trim,
                      warn=lambda message: cli.warn(PROG, message))

    from ravekit.commands.progress import latent_seconds

    def work(job, progress):
        path, warnings = decoder.decode_file(job.source, job.output, progress)
        for message in warnings:
            cli.warn(PROG, message)
        return [path]

    m = decoder.model.info
    report = run_jobs(PROG, jobs, work, lambda job: [job.output] if decoder.finished(job.source, job.output) else [],
                      args.force, args.quiet, lambda job: latent_seconds(job.source, m.sr, m.ratio), args.null)
    return summarise(PROG, report, args.quiet)


if __name__ == "__main__":
    sys.exit(main())
