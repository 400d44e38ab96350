#!/usr/bin/env python3
"""averager.py: merge two or more RAVE models into one model that plays in nn~.

The merged model is a copy of the first model (A) in which every entry that
can be merged is replaced by the weighted average (or slerp) of the models'
entries; everything else keeps A's value.  A CSV report lists every entry:
merged or not, why, and how far the models' tensors are apart; a JSON
recipe beside the model records the parents (sha256), weights and flags.

Never merged: nn~ metadata buffers (*_params), latent_pca, latent_mean,
fidelity (kept from A; recomputed with --repair), streaming caches (.pad/.cache), integer/boolean and zero-element
tensors, entries missing from a model or whose shapes differ.
Discrete models are merged only when they share one codebook (their codes
index it): models whose codebooks differ are refused, even with --force.
A merge that would change nothing (every entry that can be merged is
identical in all models: a model with itself, or models of other
architectures) is refused; every run says what share of A it changed.
Selection: --scope first (encoder: names under "encoder.", decoder: under
"decoder."; other parts such as pqmf stay A's), then --include (a name must
match one), then --exclude (wins over --include).

examples:
  averager.py --models a.ts b.ts --weights 0.7 0.3 -o hybrid.ts
  averager.py --models a.ts b.ts --scope decoder --weights 0 1 -o a_enc-b_dec.ts
  averager.py --models a.ts b.ts --method slerp --audio song.wav
  averager.py --models a.ts b.ts --align --repair calib/*.wav --audio x.wav --sweep 5 -o merged/
"""

from __future__ import annotations

import sys
from pathlib import Path

from ravekit.choices import MERGE_METHODS, MERGE_SCOPES
from ravekit.commands.console import info, print_path, run_main, warn
from ravekit.commands.flags import (
    add_device_arg,
    add_force_arg,
    add_live_args,
    add_null_arg,
    add_seed_arg,
    check_common,
    live_setting,
    make_parser,
    parse_args,
    prog_name,
)
from ravekit.errors import RavekitError
from ravekit.io.claims import claim_output
from ravekit.io.files import OutputSet, check_writable
from ravekit.merging.align_report import alignment_record, alignment_summary, write_alignment
from ravekit.merging.outputs import output_paths
from ravekit.merging.repair_report import repair_record, repair_summary
from ravekit.merging.sweep import check_sweep, render_sweep, sweep_section, sweep_weights

# start-up: torch, numpy and the merging code load inside the functions that merge, so --help is fast.

PROG = prog_name("averager.py")  # or ravekit-averager, as the user ran it
DEFAULT_OUTPUT = "_averager-output/merged.ts"


def get_parser():
    parser = make_parser(PROG, __doc__.split("\n", 1)[1].strip())
    parser.add_argument("--models", nargs="+", required=True, metavar="MODEL.ts",
                        help="two or more exported models of one architecture; the first (A) is the base")
    parser.add_argument("--weights", nargs="+", type=float, default=None, metavar="W",
                        help="one weight per model, normalised to sum to 1; none given: equal weights")
    parser.add_argument("--method", choices=MERGE_METHODS, default="linear",
                        help="linear: weighted average; slerp: spherical interpolation per tensor "
                        "(more than two models: A with B, the result with C, ...; nearly parallel "
                        "tensors fall back to linear)")
    parser.add_argument("--scope", choices=MERGE_SCOPES, default="all",
                        help="merge only entries under encoder. or decoder. (all: every entry)")
    parser.add_argument("--include", nargs="+", action="extend", default=None, metavar="REGEX",
                        help="merge only entries whose name matches one of these regular expressions")
    parser.add_argument("--exclude", nargs="+", action="extend", default=None, metavar="REGEX",
                        help="never merge entries whose name matches one of these (wins over --include)")
    parser.add_argument("--output", "-o", default=DEFAULT_OUTPUT, metavar="MERGED.ts",
                        help="merged model to write; a folder (existing, ending in /, or a name without a suffix): "
                        "merged.ts inside it, created if needed")
    parser.add_argument("--report", default=None, metavar="REPORT.csv",
                        help="CSV report, one row per entry; none given: the output with .csv")
    parser.add_argument("--align", nargs="?", const="weights", default=None,
                        choices=("weights", "activations", "none"),
                        help="before merging, permute every model after A into A's channel order over permutation "
                        "groups derived from the architecture (v1, v2, v2_small, discrete, spherical and v3 "
                        "exports): weights (also --align alone) matches channels by their weights, "
                        "activations by the correlation of their outputs on the --repair audio, none not at all; "
                        "default: activations with --repair (measured best), else none; "
                        "writes <report>.align.csv with the similarity per group before and after")
    parser.add_argument("--repair", nargs="+", default=None, metavar="AUDIO",
                        help="after merging, renormalise the merge on these recordings (REPAIR): every hidden "
                        "channel of the top-level convolutions is rescaled, in its weight, to the RMS the parents' "
                        "channels have on this audio, interpolated with the weights (v1's BatchNorms: scale and "
                        "shift to the mean and std), and the latent PCA "
                        "(latent_pca, latent_mean, fidelity) is recomputed on the merged encoder; 10 s or more of "
                        "the models' material (at least 20 latent frames); RAVE v1, v2 and v3 exports")
    parser.add_argument("--audio", default=None, metavar="FILE",
                        help="also encode/decode this audio file through every model and the merged "
                        "one, with the same seed, and write the WAVs beside the output with NAME.listen.html, "
                        "an offline page that plays them side by side with spectrograms and a rel_dist chart "
                        "(with --align also the merge without alignment)")
    parser.add_argument("--sweep", type=int, default=None, metavar="N",
                        help="with --audio and two models: also render the audio through N merges evenly spaced "
                        "from A to B (B's weight 0, 1/(N-1), ..., 1; with --align/--repair as given), written as "
                        "<audio>.<merged>.sweepK.wav; the first and last are A's and B's own renders; the "
                        "listening page plays them in order with a chart of loudness and distance to the input")
    add_seed_arg(parser)
    add_device_arg(parser)
    add_force_arg(parser)
    add_null_arg(parser)
    add_live_args(parser, "with --audio: render every model")
    # The shared flags' help speaks of batch runs; say what they mean here.
    for action in parser._actions:
        if action.dest == "force":
            action.help = ("overwrite existing outputs, and merge models whose sample rate, ratio or "
                           "latent size differ (saying what will break); never discrete models whose codebooks differ")
        elif action.dest == "seed":
            action.help = ("random seed of the --audio renders (every model encodes and decodes with it) and of "
                           "--align's order of visiting the permutation groups")
        elif action.dest == "device":
            action.help = "where the --audio renders run (merging always runs on the CPU)"
        elif action.dest == "threads":
            action.help = ("torch threads inside each model call of the --audio renders; 1 gives the same bytes on "
                           "every machine load, more change them in their last bits; $RAVEKIT_THREADS sets the "
                           "default")
        elif action.dest == "null":
            action.help = "print the paths written on stdout NUL-terminated instead of one per line (xargs -0)"
    return parser


def render_unaligned(args, wav: Path, warn_cb) -> None:
    """Render ``--audio`` through the same merge made without ``--align``, to hear what aligning changed.

    The unaligned model lives in a temporary folder only long enough to be
    rendered; its WAV is part of the output set.
    """
    import tempfile

    from ravekit.merging.audio import render_comparison
    from ravekit.merging.plan import merge_models, save_module

    plain = merge_models([Path(m) for m in args.models], args.weights, args.method, args.scope,
                         args.include, args.exclude, args.force, False)
    with tempfile.TemporaryDirectory(prefix="ravekit-unaligned-") as tmp:
        model = save_module(plain.module, Path(tmp) / "unaligned.ts")
        del plain
        render_comparison(Path(args.audio), [model], [wav], args.seed, args.device, warn_cb, live_setting(args))


def render_sweep_section(args, staged, wavs: list, page: Path, say) -> str:
    """Render ``--sweep``'s steps into their staged files; the listening page's section for them."""
    from ravekit.merging.plan import merge_models

    def merge(weights: list[float]):
        return merge_models([Path(m) for m in args.models], weights, args.method, args.scope, args.include,
                            args.exclude, args.force, args.align, args.seed or 0,
                            repair_audio=[Path(a) for a in args.repair] if args.repair else None).module

    render_sweep([Path(m) for m in args.models], Path(args.audio), [staged[w] for w in wavs], merge, args.seed,
                 args.device, say, live_setting(args))
    return sweep_section(page, sweep_weights(len(wavs)), [staged[w] for w in wavs], wavs, Path(args.audio))


def main(argv=None) -> int:
    parser = get_parser()
    args = parse_args(parser, argv)

    def body() -> int:
        from ravekit.merging.plan import merge_models, model_labels, save_module
        from ravekit.merging.report import summary, write_recipe, write_report

        check_common(args)

        check_sweep(args.sweep, args.audio, len(args.models))
        # --repair has the audio activation matching needs, and measured best with it (docs/averager.md).
        defaulted = args.align is None and args.repair
        if defaulted:
            args.align = "activations"
        elif args.align == "none":
            args.align = None
        from ravekit.engine.layout import use_threads  # here, not at the top: --help stays free of torch

        use_threads(args.threads)
        out, report, recipe, extras = output_paths(args.output, args.report, args.models, args.audio,
                                                   args.force, args.align, args.sweep or 0)
        # extras: the renders (A, B, ..., merged[, unaligned merge]) and the page with --audio; the
        # alignment CSV with --align; the sweep renders last with --sweep.
        sweep_wavs = extras[len(extras) - (args.sweep or 0):]
        extras = extras[:len(extras) - len(sweep_wavs)]
        with_audio = extras[:-1] if args.align else extras
        renders, page = with_audio[:-1], (with_audio[-1] if with_audio else None)
        # Before the minutes of merging: the folders can be written, and no other run writes this merge.

        claim_output(out.parent, lock=f".{out.name}.ravekit.lock", subject=str(out))
        for folder in {p.parent for p in (report, *extras)} - {out.parent}:
            check_writable(folder)
        if args.audio:
            from ravekit.io.audio import probe

            probe(args.audio)  # a bad audio file fails now, before anything is written
        live = live_setting(args)
        if live is not None:
            if not args.audio:
                raise RavekitError("--live applies to the --audio renders; give --audio FILE, or leave --live out", 2)
            from ravekit.engine.live import check_live
            from ravekit.engine.model import load_model

            for model in args.models:  # a buffer a model cannot take fails now, before the merge
                check_live(live, load_model(model, "cpu", checksum=False).info)
        result = merge_models([Path(m) for m in args.models], args.weights, args.method, args.scope,
                              args.include, args.exclude, args.force, args.align, args.seed or 0,
                              repair_audio=[Path(a) for a in args.repair] if args.repair else None)
        if defaulted:
            info(PROG, "--repair without --align: channels aligned by activations (measured best; --align none "
                 "merges unaligned)")
        for note in result.warnings:
            warn(PROG, note)
        if result.alignment is not None:  # merged with --align

            for line in alignment_summary(result.alignment):
                info(PROG, line)
        for label, (moved, flipped) in zip(model_labels(len(args.models))[1:], result.latent or []):
            info(PROG, f"aligned {label}'s latent dims to A's on the --repair audio: {moved} moved, {flipped} "
                 "sign-flipped (encoder's last and decoder's first convolution)")
        if result.repair is not None:
            for line in repair_summary(result.repair, result.fidelity):
                info(PROG, line)
        for label, path, w in zip(model_labels(len(args.models)), args.models, result.weights):
            info(PROG, f"{label} = {path} (weight {w:.4g})")
        info(PROG, summary(result.plans))
        # Written as a whole: every file under a temporary name, then renamed with
        # the recipe last, so a model without its recipe is known to be unfinished.
        with OutputSet([out, report, *extras, *sweep_wavs, recipe]) as staged:
            save_module(result.module, staged[out])
            write_report(staged[report], result.plans)
            if result.alignment is not None:
                write_alignment(staged[extras[-1]], result.alignment)
            if args.audio:
                from ravekit.merging.audio import render_comparison
                from ravekit.merging.listen import write_listening_page

                assert page is not None  # output_paths plans the page with --audio

                def say(message: str) -> None:
                    warn(PROG, staged.named(message))  # renders are written to temporary names first

                models = [Path(m) for m in args.models] + [staged[out]]
                render_comparison(Path(args.audio), models, [staged[r] for r in renders[:len(models)]],
                                  args.seed, args.device, say, live_setting(args))
                names = [*model_labels(len(args.models)), f"merge ({out.name})"]
                if args.align:
                    render_unaligned(args, staged[renders[-1]], say)
                    names.append("merge without --align" + (" or --repair" if args.repair else ""))
                extra = ""
                if sweep_wavs:
                    extra = render_sweep_section(args, staged, sweep_wavs, page, say)
                write_listening_page(staged[page], [(n, staged[r], r) for n, r in zip(names, renders)],
                                     result.plans, args.audio, f"{out.name}: listening comparison", extra)
            write_recipe(staged[recipe], args.models, result.weights, result.plans, method=args.method,
                         scope=args.scope, include=args.include, exclude=args.exclude, forced=args.force,
                         report=report, audio=args.audio, renders=[*renders, *sweep_wavs], page=page,
                         alignment={**alignment_record(result.alignment),
                                    **({"method": args.align} if args.align else {})},
                         repair=repair_record(result, args.repair))
            staged.commit()
        if out.suffix != ".ts":
            warn(PROG, f"{out}: nn~ finds models by their .ts ending; rename it to play it in Max or Pd")
        for path in (out, report, recipe, *extras, *sweep_wavs):
            print_path(path, args.null)
        return 0

    # The output set is renamed into place only when whole (recipe last): nothing is there to resume.
    return run_main(PROG, body, interrupted="interrupted; the merge was not finished and nothing resumes it: run "
                    "it again (with --force if it left a model without its .json recipe)")


if __name__ == "__main__":
    sys.exit(main())
