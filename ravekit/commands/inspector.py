#!/usr/bin/env python3
"""inspector.py: what is inside a RAVE model, at a glance, in a CSV, or interactively."""

from __future__ import annotations

import sys

from ravekit.choices import MODEL_EXTENSIONS, extensions_text
from ravekit.commands.console import check_printable, fatal, info, print_path, run_main
from ravekit.commands.flags import (
    add_null_arg,
    add_output_arg,
    check_common,
    make_parser,
    parse_args,
    prog_name,
    seconds,
    threads_count,
)
from ravekit.errors import RavekitError
from ravekit.io.claims import claim_output
from ravekit.io.inputs import collect_inputs, parse_extensions

# start-up: torch and the inspection code load inside the functions that inspect, so --help is fast.

REALTIME_SECONDS = 3.0  # audio timed per method and buffer by --realtime
PROG = prog_name("inspector.py")  # or ravekit-inspector, as the user ran it
DESCRIPTION = """\
Show what a model is: sample rate, channels, latent size, compression ratio,
nn~ methods and attributes, streaming or not, prior or not, how many latent
dims carry 80/90/95/99 % of the variance, and the size of each component.
Works on exported models (.ts) and on training checkpoints (.ckpt, read
safely: weights only, no code from the file is ever run).

examples:
  inspector.py -i model.ts                    summary of one model
  inspector.py -i models/ --save              CSVs for every .ts under models/
  inspector.py -i a.ts b.ts --compare         side by side, state_dict keys aligned
  inspector.py -i model.ts --dict             every state_dict entry, then ask for one
  echo fidelity | inspector.py -i model.ts --dict    the same, scripted
  inspector.py -i run/version_0/checkpoints/best.ckpt --config
  inspector.py -i model.ts --realtime          will it keep up in nn~ here, per buffer size
"""


def get_parser():
    parser = make_parser(PROG, DESCRIPTION)
    parser.add_argument("--input", "-i", nargs="+", required=True, metavar="PATH",
                        help="model files and/or folders (searched recursively for --extensions), "
                        "or - to read paths from stdin")
    add_null_arg(parser)
    parser.add_argument("--extensions", default=extensions_text(MODEL_EXTENSIONS),
                        help="comma-separated file endings picked up inside folders, e.g. .ts,.ckpt")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--compare", action="store_true",
                      help="the models side by side, then their state_dict keys aligned "
                      "(same shape in all / different shapes / only in some)")
    mode.add_argument("--dict", action="store_true",
                      help="list every state_dict entry, then show one on request "
                      "(type its name; one name per line from a pipe; q to quit)")
    mode.add_argument("--attr", action="store_true",
                      help="list attributes, methods and submodules, then show one on request")
    mode.add_argument("--config", action="store_true",
                      help="print the training configuration stored with a checkpoint "
                      "(config.gin beside it, or its hyper_parameters)")
    mode.add_argument("--realtime", action="store_true",
                      help="time warm calls of each method nn~ can call (forward, encode, decode) on this machine, "
                      "per buffer size: median and worst call, real-time factor, how many such models fit on one "
                      "core, and a verdict per method (plays live at buffer N and up, or not at all)")
    parser.add_argument("--buffer", type=buffer_list, default=None, metavar="LIST",
                        help="with --realtime: nn~ buffer sizes in samples to try, each a multiple of the model's "
                        "ratio (default: those of 1024,2048,4096,8192 that are)")
    parser.add_argument("--threads", type=threads_count, default=None, metavar="N",
                        help="with --realtime: torch threads per call (default: torch's own choice, the number "
                        "of cores, which is what nn~ gets)")
    parser.add_argument("--seconds", type=seconds, default=None, metavar="S",
                        help="with --realtime: audio timed per method and buffer (at least 8 calls each; "
                        f"default {REALTIME_SECONDS:g})")
    parser.add_argument("--json", action="store_true",
                        help="print the summary (or --compare, --config) as JSON on stdout, for scripts")
    parser.add_argument("--save", action="store_true",
                        help="write CSVs (summary, components, one row per state_dict entry) under --output "
                        "and print their paths on stdout; the text summary then goes to stderr")
    add_output_arg(parser, "./_inspector-output")
    return parser


def realtime(pairs, args) -> int:
    """--realtime: each model timed in turn; a file that fails is reported and the others still measured."""
    import json

    from ravekit.inspection.realtime import run_realtime

    docs, failed = [], False
    for path, _ in pairs:
        try:
            doc, text = run_realtime(path, args.buffer, args.seconds or REALTIME_SECONDS, args.threads)
        except RavekitError as exc:
            if exc.exit_code == 2:  # a buffer nn~ cannot use is the command line's fault, whatever the file
                raise
            fatal(PROG, str(exc) if str(path) in str(exc) else f"{path}: {exc}")
            failed = True
            continue
        docs.append(doc)
        if not args.json:
            print(text, flush=True)
    if args.json:  # one list, one object per model, as the summary's --json
        print(json.dumps(docs, indent=2))
    return 1 if failed else 0


def buffer_list(text: str) -> list[int]:
    """An argparse type: ``"1024,4096"`` -> ``[1024, 4096]`` (checked against the model's ratio later)."""
    import argparse

    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values:
        raise argparse.ArgumentTypeError(f"{text!r}: give buffer sizes in samples, e.g. 1024,2048,4096,8192")
    return values


def main(argv=None) -> int:
    parser = get_parser()
    args = parse_args(parser, argv)

    def body() -> int:
        from pathlib import Path

        from ravekit.inspection import run as inspect_run

        check_common(args)
        detail = "dict" if args.dict else "attr" if args.attr else None
        if detail and (args.json or args.save):
            raise RavekitError(f"--{detail} is interactive; --json and --save apply to the summary and --compare", 2)
        given = [f for f in ("buffer", "threads", "seconds") if getattr(args, f) is not None]
        if given and not args.realtime:
            raise RavekitError(f"--{given[0]} applies with --realtime; add --realtime or leave it out", 2)
        if args.realtime and args.save:
            raise RavekitError("--save applies to the summary and --compare, not to --realtime", 2)
        if args.config and args.save:
            raise RavekitError("--save applies to the summary and --compare, not to --config", 2)
        if detail and "-" in args.input:
            raise RavekitError(f"--{detail} reads its queries from stdin; give the model path to --input", 2)
        out_dir = Path(args.output)
        out = inspect_run.Reports(error=lambda m: fatal(PROG, m), info=lambda m: info(PROG, m),
                                  output=lambda p: print_path(p, args.null),
                                  check_output=lambda p: check_printable(p, args.null))
        pairs = collect_inputs(args.input, parse_extensions(args.extensions), out_dir, null=args.null)
        if args.save:
            claim_output(out_dir)  # before any model is read
        if detail:
            if len(pairs) != 1:
                raise RavekitError(f"--{detail} shows one model at a time; {len(pairs)} files were given", 2)
            return inspect_run.run_detail(pairs[0][0], detail, out)
        if args.config:
            return inspect_run.run_config([p for p, _ in pairs], args.json, out)
        if args.realtime:
            return realtime(pairs, args)
        if args.compare:
            return inspect_run.run_compare(pairs, args.json, args.save, out_dir, out)
        return inspect_run.run_summary(pairs, args.json, args.save, out_dir, out)

    return run_main(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
