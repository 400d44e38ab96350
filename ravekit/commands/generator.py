#!/usr/bin/env python3
"""Analyse latents, draw synthetic latent frames from their statistics, and arrange them in tempo-quantized
looping patterns, written as latent WAVs for Pure Data (one channel per latent dim) or .npy for decoder.py.

Statistics (mean, std, covariance, correlation; with --iqr median, quartiles, Tukey fences) are pooled over
all inputs and written as stats.json beside the outputs; pass it back with --stats to skip the analysis.
A pattern of k = --num_latents frames loops at 60 * (sr / ratio) / k BPM (see --tempo_table, --bpm).
With --prior PRIOR.ts an MSPrior model generates the frames instead, prompted by --input.

example:
  generator.py --input latents/ --model model.ts --pattern orale --bpm 120 --num_files 4 --seed 7
  generator.py --stats _generator-output/stats.json --pattern blender --num_latents 8 --embeddings
  generator.py --prior prior.ts --model model.ts --input latents/ --pattern loop --bpm 120 --num_files 4 --seed 1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ravekit.choices import DISTRIBUTIONS, LATENT_EXTENSIONS, extensions_text
from ravekit.commands import console
from ravekit.commands import flags as cli
from ravekit.commands.progress import Progress
from ravekit.errors import RavekitError
from ravekit.generate import patterns as reg
from ravekit.generate.patterns import discover, load_pattern
from ravekit.generate.request import GenerateRequest
from ravekit.io import inputs

# start-up: numpy, torch and the generator's pipeline load inside body(), so --help is fast.

PROG = cli.prog_name("generator.py")  # or ravekit-generator, as the user ran it


def _chosen_pattern(argv) -> tuple[str, list[str]]:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--pattern", default="loop")
    pre.add_argument("--patterns_dir", action="append", default=[])
    known, _ = pre.parse_known_args(argv)
    return ("loop" if known.pattern == "default" else known.pattern), known.patterns_dir


def get_parser(argv=None) -> argparse.ArgumentParser:
    """The command line; the chosen --pattern's own flags are added when it defines any."""

    name, dirs = _chosen_pattern(argv)
    patterns = discover(dirs)
    p = cli.make_parser(PROG, __doc__)
    p.add_argument("--input", "-i", nargs="+", default=None, metavar="PATH",
                   help="latents to analyse: .npy / latent WAV files, folders (recursive), or - for paths on stdin")
    p.add_argument("--prior", default=None, metavar="PRIOR.ts",
                   help="generate the frames with this MSPrior model (msprior export) instead of statistics; "
                   "needs --model (the RAVE model it was trained on); --input is then the prompt it hears first "
                   "(latents, or audio encoded by --model); without --input it hears silence")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="with --prior: sampling temperature (1 = as trained; lower is more predictable, 0 always "
                   "takes the likeliest token; higher is wilder)")
    p.add_argument("--stats", nargs="+", default=None, metavar="STATS.json",
                   help="use statistics written by an earlier run instead of analysing --input; several are "
                   "pooled exactly (counts, means, covariances, min, max; not quartiles) into OUTPUT/stats.json")
    p.add_argument("--stats_only", action="store_true",
                   help="write OUTPUT/stats.json (the analysis of --input, or the pool of --stats) and nothing else")
    p.add_argument("--shard", default=None, metavar="K/N",
                   help="with --stats_only: analyse only the K-th of N slices of the sorted inputs, for SLURM job "
                   "arrays; pool the N stats.json with --stats")
    cli.add_null_arg(p)
    p.add_argument("--extensions", default=extensions_text(LATENT_EXTENSIONS),
                   help="file endings picked up inside --input folders")
    cli.add_output_arg(p, "./_generator-output")
    cli.add_force_arg(p, help="overwrite the files of an earlier run (by default a run that would replace "
                      "any file in --output is refused before it starts)")
    cli.add_seed_arg(p)
    p.add_argument("--pattern", default="loop", choices=sorted(set(patterns) | {"default"}),
                   help="pattern to build ('default' = loop); see --list_patterns; a pattern's own flags show "
                   "with --pattern NAME --help")
    p.add_argument("--patterns_dir", action="append", default=[], metavar="DIR",
                   help="also load patterns from this folder (one .py file per pattern); repeatable")
    p.add_argument("--list_patterns", action="store_true", help="list the patterns and exit")
    p.add_argument("--distribution", default=None, choices=DISTRIBUTIONS,
                   help="how base frames are drawn: per-dim normal, uniform (mean +- 3 std, or the Tukey "
                   "fences with --iqr), iqr-uniform (between the fences), correlation-based (multivariate "
                   "normal); for codes of a discrete model histogram (per-dim code frequencies) or uniform "
                   "(every code that occurs). Default: normal, or histogram for codes")
    p.add_argument("--smoothing", type=float, default=0.0, metavar="ALPHA",
                   help="discrete models: pseudo-count added to every code of the codebook before drawing "
                   "(0: only codes found in the material; 1: Laplace smoothing)")
    p.add_argument("--iqr", action="store_true",
                   help="robust statistics: median and IQR / 1.349 instead of mean and std (computes quartiles)")
    p.add_argument("--num_latents", type=int, default=10, metavar="K", help="base pattern length k, in latent frames")
    p.add_argument("--bpm", type=float, default=None,
                   help="choose k so that one loop of k frames is one beat nearest this tempo "
                   "(overrides --num_latents)")
    p.add_argument("--num_loops", type=int, default=1, help="repetitions inside each pattern")
    p.add_argument("--num_files", type=int, default=1, help="number of files to generate")
    p.add_argument("--embeddings", action="store_true",
                   help="write .npy latents (1, dims, frames) for decoder.py instead of latent WAVs")
    p.add_argument("--pd", action="store_true",
                   help="also write a Pure Data patch beside the WAVs that plays them through [nn~ MODEL decode] "
                   "in tempo (needs --model; uses the abstractions in pd/)")
    p.add_argument("--double", action="store_true",
                   help="64-bit float latent WAVs (Pure Data 0.53 cannot read them; default is 32-bit float)")
    p.add_argument("--plot", action="store_true",
                   help="also write PNGs: input distributions, correlation matrix, each pattern as a heatmap")
    p.add_argument("--tempo_table", action="store_true", help="print k, BPM and double-time BPM for k = 1..64 and exit")
    cli.add_model_arg(p, required=False, help="exported RAVE model the latents belong to: gives the sample rate, "
                      "ratio and kind of latents (codes of a discrete model are checked against its codebook); the "
                      "model --pd plays and --prior belongs to")
    p.add_argument("--sample_rate", type=int, default=None,
                   help="audio sample rate of the model in Hz (as in UnRAVEl; default: from sidecars or --model)")
    p.add_argument("--ratio", type=int, default=None,
                   help="compression ratio, audio samples per latent frame (default: from sidecars or --model)")
    p.add_argument("--max_frames", type=int, default=2_000_000,
                   help="refuse patterns longer than this many frames per file (blender grows with k squared)")
    dests = []
    if name in patterns and patterns[name].has_options:
        group = p.add_argument_group(f"options of --pattern {name}")
        before = {a.dest for a in p._actions}
        load_pattern(patterns[name]).add_arguments(group)
        dests = [a.dest for a in p._actions if a.dest not in before]
    p.set_defaults(pattern_options=dests)
    return p


def body(argv) -> int:
    parser = get_parser(argv)
    args = cli.parse_args(parser, argv)
    cli.check_common(args)

    patterns = reg.discover(args.patterns_dir)
    if args.list_patterns:
        print(reg.list_text(patterns))
        return 0

    from ravekit.generate import pipeline, plan  # numpy and torch: loaded once the command line is checked

    warn = lambda m: console.warn(PROG, m)  # noqa: E731
    extensions = inputs.parse_extensions(args.extensions)
    named = [Path(p).resolve() for p in args.stats or ()]
    if len(set(named)) < len(named):
        twice = next(p for p in args.stats if named.count(Path(p).resolve()) > 1)
        raise RavekitError(f"--stats {twice}: given twice; name each statistics file once", 2)
    if args.stats_only or args.shard:
        return _stats_only(args, parser, extensions, warn)
    if args.stats and len(args.stats) > 1 and (args.prior or args.tempo_table):
        raise RavekitError("--prior and --tempo_table take one --stats file; pool them first with --stats_only", 2)
    if args.tempo_table:
        print(plan.tempo_table_text(
            sample_rate=args.sample_rate, ratio=args.ratio, model_file=args.model, inputs=args.input,
            stats_file=args.stats[0] if args.stats else None, extensions=extensions, stdin=sys.stdin, warn=warn,
            null=args.null))
        return 0
    pattern = "loop" if args.pattern == "default" else args.pattern
    request = make_request(args, reg.load_pattern(reg.find(patterns, pattern)), pattern, extensions)
    on_output = lambda path: console.print_path(path, args.null)  # noqa: E731
    if not args.prior:
        pipeline.generate(request, warn=warn, info=lambda m: console.info(PROG, m), on_output=on_output,
                          stdin=sys.stdin)
        return 0
    bar = Progress(PROG)  # a prior takes its time: progress in seconds of generated audio

    def progress(done: float, total: float) -> None:
        if not bar.total:
            bar.add_total(total)
        bar.advance(done - bar.done)

    try:  # messages go above the bar: printed straight to stderr, they would land in the middle of its line
        pipeline.generate(request, warn=lambda m: bar.write(f"{PROG}: warning: {console.one_line(m)}"),
                          info=lambda m: bar.write(f"{PROG}: {m}"), on_output=on_output, stdin=sys.stdin,
                          progress=progress if bar.active else None)
    finally:
        bar.close()
    return 0


# What --stats_only leaves out: the flags of the patterns it does not make (refused, never ignored).
GENERATING = ("prior", "pattern", "num_latents", "bpm", "num_loops", "num_files", "distribution", "smoothing",
              "embeddings", "pd", "double", "plot", "max_frames", "temperature", "sample_rate", "ratio")


def _stats_only(args, parser, extensions, warn) -> int:
    """--stats_only (and --shard, which needs it): ravekit.generate.stats_run."""
    if not args.stats_only:
        raise RavekitError(f"--shard {args.shard} splits the analysis only: add --stats_only, then pool the "
                           "shards' stats.json with --stats", 2)
    given = [d for d in [*GENERATING, *args.pattern_options] if getattr(args, d) != parser.get_default(d)]
    if given:
        flag = "--" + given[0]
        raise RavekitError(f"{flag} makes patterns, and --stats_only writes statistics only; leave {flag} out, and "
                           "give it to the run that generates from the statistics", 2)
    from ravekit.generate.stats_run import write_stats_only  # numpy: loaded once the command line is checked

    write_stats_only(inputs=args.input, stats_files=args.stats or [], extensions=extensions, stdin=sys.stdin,
                     output=Path(args.output), iqr=args.iqr, shard=inputs.parse_shard(args.shard),
                     model_file=args.model, force=args.force, info=lambda m: console.info(PROG, m), warn=warn,
                     on_output=lambda path: console.print_path(path, args.null), null=args.null)
    return 0


def make_request(args: argparse.Namespace, module, pattern: str, extensions: tuple[str, ...]) -> GenerateRequest:
    """The one :class:`~ravekit.generate.request.GenerateRequest` of the parsed flags (checked as it is made)."""
    return GenerateRequest(
        module=module, pattern=pattern, output=Path(args.output),
        pattern_options={d: getattr(args, d) for d in args.pattern_options}, inputs=tuple(args.input or ()),
        stats_files=tuple(args.stats or ()), prior_file=args.prior, temperature=args.temperature, extensions=extensions,
        null=args.null, seed=args.seed, distribution=args.distribution, smoothing=args.smoothing, iqr=args.iqr,
        num_latents=args.num_latents, bpm=args.bpm, num_loops=args.num_loops, num_files=args.num_files,
        max_frames=args.max_frames, embeddings=args.embeddings, double=args.double, plot=args.plot, pd=args.pd,
        force=args.force, model_file=args.model, sample_rate=args.sample_rate, ratio=args.ratio)


def main(argv=None) -> int:
    # A failed run takes back the files it wrote (ravekit.generate.plan.Unpublished): nothing resumes.
    return console.run_main(PROG, lambda: body(argv), interrupted="interrupted; the files this run had written "
                        "were removed, so running it again starts afresh")


if __name__ == "__main__":
    sys.exit(main())
