"""``decoder.py --map``: fit a latent map from --encoder to --model on audio, or reuse a saved one.

The work is in :mod:`ravekit.engine.latent_map_file`; this module reads the
flags, says what was fitted, and keeps a map already beside the outputs.
"""

from __future__ import annotations

from pathlib import Path

from ravekit.choices import AUDIO_EXTENSIONS
from ravekit.commands import console
from ravekit.commands import flags as cli
from ravekit.errors import RavekitError, shown
from ravekit.io.files import sha256_of
from ravekit.io.inputs import collect_inputs

# start-up: numpy and torch (the fit) load inside prepare_map, so --help is fast.

FIT = "fit"


def add_map_args(parser) -> None:
    """The flags of a latent map (imports nothing heavy: ``--help`` stays fast)."""
    parser.add_argument("--map", default=None, metavar="fit|FILE",
                        help="translate --encoder's latents into --model's with a latent map before decoding (and "
                        "before --dims/--scale/--bias, which then work on the map's output dims): 'fit' fits one on "
                        "--map_audio and saves it in --output as ENCODER_to_MODEL.map.npz; FILE reuses a saved map, "
                        "refused for any other pair of models")
    parser.add_argument("--map_audio", nargs="+", default=None, metavar="PATH",
                        help="with --map fit: audio files or folders to fit the map on (encoded by both models; a "
                        "minute or more of audio like what you will transfer)")
    parser.add_argument("--map_holdout", nargs="+", default=None, metavar="PATH",
                        help="with --map fit: audio files or folders kept out of the fit, to report its R² on audio "
                        "it never saw")
    parser.add_argument("--map_ridge", type=float, default=1e-3, metavar="VALUE",
                        help="with --map fit: ridge penalty, relative to the mean variance of the encoder's dims "
                        "(default 0.001)")


def check_map_args(args) -> None:
    """Refuse (exit 2), before any work, flags of a map that do not go together."""

    if args.map is None:
        for flag in ("map_audio", "map_holdout"):
            if getattr(args, flag):
                raise RavekitError(f"--{flag} is the audio of a map fit; add --map fit", 2)
        return
    if not args.encoder:
        raise RavekitError(f"--map {args.map}: a map translates --encoder's latents into --model's; give --encoder", 2)
    if getattr(args, "live", None) is not None:
        raise RavekitError(f"--map with --live {args.live}: --live renders what the Pd patch plays, and [nn~] applies "
                           "no latent map (its decode takes only the exported dims); leave out one of them", 2)
    if args.map == FIT:
        if not args.map_audio:
            raise RavekitError("--map fit: give the audio to fit on with --map_audio FILES_OR_FOLDERS", 2)
        if not (args.map_ridge >= 0):
            raise RavekitError(f"--map_ridge {args.map_ridge}: give a number from 0 (0.001 is a good start)", 2)
    else:
        if args.map_audio or args.map_holdout:
            raise RavekitError(f"--map {args.map} reuses a saved map; --map_audio and --map_holdout go with --map fit",
                               2)
        cli.check_input_file("--map", args.map)


def map_path(args) -> Path:
    """Where ``--map fit`` saves the map: ``OUTPUT/ENCODER_to_MODEL.map.npz``."""
    return Path(args.output) / f"{Path(args.encoder).stem}_to_{Path(args.model).stem}.map.npz"


def audio_files(paths: list[str], flag: str) -> list[Path]:
    """Files and folders (walked) of audio, in a stable order."""
    for given in paths:
        if not Path(given).exists():
            raise RavekitError(f"{flag} {shown(given)}: not found; check the path", 2)
    try:
        return [p for p, _ in collect_inputs(paths, AUDIO_EXTENSIONS)]
    except RavekitError as exc:
        raise RavekitError(f"{flag}: {exc}", 2) from None


def prepare_map(prog: str, args, decoder, encoder_model):
    """Fit (``--map fit``) or load (``--map FILE``) the map and give it to ``decoder``."""
    from ravekit.engine.latent_map_file import fit_map, load_map

    if args.map != FIT:
        latent_map = load_map(args.map)
    else:
        files, holdout = audio_files(args.map_audio, "--map_audio"), []
        if args.map_holdout:
            holdout = audio_files(args.map_holdout, "--map_holdout")
        out = map_path(args)
        latent_map = None
        if out.exists() and not args.force:
            kept = load_map(out)
            if _same_fit(kept.meta, encoder_model.info, decoder.model.info, files, holdout, args):
                latent_map = kept
                if not args.quiet:
                    console.info(prog, f"{out}: fitted before on the same audio for the same models; reused")
            else:
                raise RavekitError(f"{out}: a map fitted otherwise (other models, audio or ridge) is already there; "
                                   f"reuse it with --map {out}, fit again with --force, or choose another --output", 2)
        if latent_map is None:
            fitted, warnings = fit_map(encoder_model, decoder.model, files, holdout, ridge=args.map_ridge,
                                       seed=args.seed, channel_mode=args.channel_mode, chunk_seconds=args.chunk,
                                       channels=args.channels)
            for message in warnings:
                console.warn(prog, message)
            latent_map = fitted.save(out)
            if not args.quiet:
                console.info(prog, describe_fit(latent_map))
    notes, warnings = decoder.use_map(latent_map, encoder_model.info)
    return latent_map, notes, warnings


def _same_fit(meta: dict, enc, dec, files, holdout, args) -> bool:
    """Whether a saved map is what this fit would make: same models, audio (by sha256), ridge, seed and channels."""

    def shas(paths):
        return [sha256_of(p) for p in paths]

    return (meta["encoder"]["sha256"], meta["decoder"]["sha256"]) == (enc.sha256, dec.sha256) \
        and meta.get("ridge") == args.map_ridge and meta.get("seed") == args.seed \
        and meta.get("encoding", {}).get("channel_mode") == args.channel_mode \
        and meta.get("encoding", {}).get("channels") == (None if args.channels is None else
                                                        [c + 1 for c in args.channels]) \
        and [e["sha256"] for e in meta.get("audio", [])] == shas(files) \
        and [e["sha256"] for e in meta.get("holdout", [])] == shas(holdout)


def describe_fit(latent_map) -> str:
    """One line: where the map is, what it fitted on, and its R² (held out when there was held-out audio)."""
    meta, part = latent_map.meta, latent_map.meta["maps"]["audio"]
    held = f", {part['r2_holdout']:.3f} on {meta['seconds_holdout']:.0f} s held out" \
        if part["r2_holdout"] is not None else " (no --map_holdout to check it on other audio)"
    return (f"{latent_map.path}: map {meta['encoder']['file']} -> {meta['decoder']['file']} "
            f"({part['space_in']} {part['dims_in']} dims -> {part['space_out']} {part['dims_out']}), fitted on "
            f"{meta['seconds']:.0f} s in {latent_map.fit_seconds or 0:.1f} s; R² {part['r2_fit']:.3f} on the "
            f"fitting audio{held}")
