#!/usr/bin/env python3
"""Analyse latents, draw synthetic latent frames from their statistics, and arrange them in tempo-quantized
looping patterns, written as latent WAVs for Pure Data (one channel per latent dim) or .npy for decoder.py.

Statistics (mean, std, covariance, correlation; with --iqr median, quartiles, Tukey fences) are pooled over
all inputs and written as stats.json beside the outputs; pass it back with --stats to skip the analysis.
A pattern of k = --num_latents frames loops at 60 * (sr / ratio) / k BPM (see --tempo_table, --bpm).

example:
  generator.py --input latents/ --model model.ts --pattern orale --bpm 120 --num_files 4 --seed 7
  generator.py --stats _generator-output/stats.json --pattern blender --num_latents 8 --embeddings
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ravekit import cli
from ravekit.errors import RavekitError

PROG = "generator.py"
DISTRIBUTIONS = ("normal", "uniform", "iqr-uniform", "correlation-based")  # ravekit.distributions.DISTRIBUTIONS


def _chosen_pattern(argv) -> tuple[str, list[str]]:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--pattern", default="loop")
    pre.add_argument("--patterns_dir", action="append", default=[])
    known, _ = pre.parse_known_args(argv)
    return ("loop" if known.pattern == "default" else known.pattern), known.patterns_dir


def get_parser(argv=None) -> argparse.ArgumentParser:
    """The command line; the chosen --pattern's own flags are added when it defines any."""
    from ravekit.pattern_registry import discover, load_pattern

    name, dirs = _chosen_pattern(argv)
    patterns = discover(dirs)
    p = cli.make_parser(PROG, __doc__)
    p.add_argument("--input", "-i", nargs="+", default=None, metavar="PATH",
                   help="latents to analyse: .npy / latent WAV files, folders (recursive), or - for paths on stdin")
    p.add_argument("--stats", default=None, metavar="STATS.json",
                   help="use statistics written by an earlier run instead of analysing --input")
    p.add_argument("--extensions", default=".npy,.wav", help="file endings picked up inside --input folders")
    cli.add_output_arg(p, "./_generator-output")
    cli.add_seed_arg(p)
    p.add_argument("--pattern", default="loop", choices=sorted(set(patterns) | {"default"}),
                   help="pattern to build ('default' = loop); see --list_patterns; a pattern's own flags show "
                   "with --pattern NAME --help")
    p.add_argument("--patterns_dir", action="append", default=[], metavar="DIR",
                   help="also load patterns from this folder (one .py file per pattern); repeatable")
    p.add_argument("--list_patterns", action="store_true", help="list the patterns and exit")
    p.add_argument("--distribution", default="normal", choices=DISTRIBUTIONS,
                   help="how base frames are drawn: per-dim normal, uniform (mean +- 3 std, or the Tukey "
                   "fences with --iqr), iqr-uniform (between the fences), correlation-based (multivariate normal)")
    p.add_argument("--iqr", action="store_true",
                   help="robust statistics: median and IQR / 1.349 instead of mean and std (computes quartiles)")
    p.add_argument("--num_latents", type=int, default=10, metavar="K", help="base pattern length k, in latent frames")
    p.add_argument("--bpm", type=float, default=None,
                   help="choose k so that one loop of k frames is one beat nearest this tempo (overrides --num_latents)")
    p.add_argument("--num_loops", type=int, default=1, help="repetitions inside each pattern")
    p.add_argument("--num_files", type=int, default=1, help="number of files to generate")
    p.add_argument("--embeddings", action="store_true",
                   help="write .npy latents (1, dims, frames) for decoder.py instead of latent WAVs")
    p.add_argument("--double", action="store_true",
                   help="64-bit float latent WAVs (Pure Data 0.53 cannot read them; default is 32-bit float)")
    p.add_argument("--plot", action="store_true",
                   help="also write PNGs: input distributions, correlation matrix, each pattern as a heatmap")
    p.add_argument("--tempo_table", action="store_true", help="print k, BPM and double-time BPM for k = 1..64 and exit")
    cli.add_model_arg(p, required=False, help="exported RAVE model, only read for its sample rate and ratio")
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


def _check_counts(args) -> None:
    for flag in ("num_latents", "num_loops", "num_files", "max_frames"):
        if getattr(args, flag) < 1:
            raise RavekitError(f"--{flag} {getattr(args, flag)}: must be 1 or more", 2)


def _rate_from_inputs(args):
    """``(sr, ratio)`` the data says (stats file, else the first input's sidecar), for --tempo_table."""
    if args.stats:
        from ravekit.stats import load_stats

        st = load_stats(args.stats)
        return st.sr, st.ratio
    if args.input:
        from ravekit.generate import gather_inputs
        from ravekit.latents import read_sidecar

        first = gather_inputs(args.input, cli.parse_extensions(args.extensions), sys.stdin)[0]
        meta = read_sidecar(first)
        return meta.get("sr"), meta.get("ratio")
    return None, None


def body(argv) -> int:
    parser = get_parser(argv)
    args = cli.parse_args(parser, argv)
    warn = lambda m: cli.warn(PROG, m)  # noqa: E731
    from ravekit import pattern_registry as reg

    patterns = reg.discover(args.patterns_dir)
    if args.list_patterns:
        print(reg.list_text(patterns))
        return 0
    _check_counts(args)
    pattern = "loop" if args.pattern == "default" else args.pattern
    from ravekit.generate import STATS_NAME, gather_inputs, generate_files, resolve_rate

    model_rate, model_info = None, None
    if args.model:
        from ravekit.model import load_model

        model_info = load_model(args.model, device="cpu", checksum=False).info
        model_rate = (model_info.sr, model_info.ratio)
    if args.tempo_table:
        from ravekit.tempo import format_tempo_table

        sr, ratio = resolve_rate(args.sample_rate, args.ratio, model_rate, _rate_from_inputs(args), warn)
        print(format_tempo_table(sr, ratio))
        return 0

    from ravekit.distributions import needs_quartiles
    from ravekit.stats import compute_stats, load_stats, save_stats
    from ravekit.tempo import bpm_of, nearest_k

    output = Path(args.output)
    if args.stats and args.input:
        raise RavekitError("give --input (latents to analyse) or --stats (an earlier analysis), not both", 2)
    if args.stats:
        stats = load_stats(args.stats)
    elif args.input:
        files = gather_inputs(args.input, cli.parse_extensions(args.extensions), sys.stdin, exclude_dir=output)
        stats = compute_stats(files, quartiles=needs_quartiles(args.distribution, args.iqr), warn=warn)
        cli.info(PROG, f"analysed {len(files)} file(s), {stats.frames} latent frames of {stats.latent_dims} dims")
    else:
        raise RavekitError("nothing to analyse: pass latents with --input (or a stats.json with --stats)", 2)
    if needs_quartiles(args.distribution, args.iqr):
        stats.require_quartiles()
    for d in stats.constant_dims:
        warn(f"latent dim {d + 1} is constant ({stats.mean[d]:.6g}) in all inputs; it is generated as that constant")
    sr, ratio = resolve_rate(args.sample_rate, args.ratio, model_rate, (stats.sr, stats.ratio), warn)
    if stats.sr is None:
        stats.sr, stats.ratio = sr, ratio
    if model_info and stats.latent_dims != model_info.latent_size:
        warn(f"{args.model}: the model has {model_info.latent_size} latent dims but the latents have "
             f"{stats.latent_dims}; decoding them needs a model of the same size")
    k = args.num_latents
    if args.bpm is not None:
        k, achieved = nearest_k(args.bpm, sr, ratio)
        cli.info(PROG, f"--bpm {args.bpm:g}: k = {k} frames gives {achieved:.2f} BPM at {sr} Hz / ratio {ratio}")
    else:
        cli.info(PROG, f"k = {k} frames loops at {bpm_of(k, sr, ratio):.2f} BPM at {sr} Hz / ratio {ratio}")
    if not args.embeddings and stats.latent_dims > 64:
        warn(f"{stats.latent_dims} latent dims: Pure Data's soundfiler reads at most 64 channels of a WAV")
    if args.double:
        warn("--embeddings writes .npy: --double is ignored" if args.embeddings else
             "--double: Pure Data 0.53 cannot read 64-bit float WAVs; leave it out for Pd")

    stats_path = output / STATS_NAME
    if not (args.stats and Path(args.stats).resolve() == stats_path.resolve()):
        save_stats(stats_path, stats)
    cli.info(PROG, f"statistics in {stats_path}")
    plot_dir = output if args.plot else None
    module = reg.load_pattern(reg.find(patterns, pattern))
    options = {d: getattr(args, d) for d in args.pattern_options}
    if plot_dir:
        from ravekit.plots import plot_correlation, plot_distributions

        plot_distributions(stats, plot_dir / "stats_distributions.png")
        plot_correlation(stats, plot_dir / "stats_correlation.png")

    def on_file(path: Path, array) -> None:
        cli.print_path(path)
        if plot_dir:
            from ravekit.plots import plot_pattern

            bounds_fn = getattr(module, "loop_boundaries", None)
            bounds = bounds_fn(k, args.num_loops, **options) if bounds_fn else range(0, array.shape[0], k)
            plot_pattern(array, list(bounds), path.with_suffix(".png"), path.stem, rate=sr / ratio)

    generate_files(module=module, pattern=pattern, stats=stats, distribution=args.distribution, iqr=args.iqr,
                   k=k, num_loops=args.num_loops, num_files=args.num_files, seed=args.seed, sr=sr, ratio=ratio,
                   output=output, embeddings=args.embeddings, double=args.double and not args.embeddings,
                   options=options, max_frames=args.max_frames, model_file=args.model,
                   stats_file=str(args.stats or stats_path), warn=warn, on_file=on_file)
    return 0


def main(argv=None) -> int:
    return cli.run_main(PROG, lambda: body(argv))


if __name__ == "__main__":
    sys.exit(main())
