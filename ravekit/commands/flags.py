"""The scripts' flags, defined once and checked once (what the scripts say is :mod:`console`).

Only the standard library is imported here, so every script's ``--help``
answers without loading numpy or torch.
"""

from __future__ import annotations

import argparse
import os
import sys

from ravekit.choices import DEFAULT_CHUNK_SECONDS, DEVICES
from ravekit.errors import RavekitError
from ravekit.seeds import SEED_MAX, check_seed

TYPE_CHECKING = False  # typing itself costs milliseconds at start-up

if TYPE_CHECKING:
    from collections.abc import Sequence


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show defaults and keep the description's line breaks.

    Defaults that say nothing (None, False, []) or that the help text already
    states are left out.
    """

    def _get_help_string(self, action):
        text = action.help or ""
        silent = action.default is None or action.default is False or action.default == [] \
            or action.default is argparse.SUPPRESS
        if silent or "default" in text:
            return text
        return super()._get_help_string(action)


# Set by --jobs for its workers: the name the user ran, so the lines they print name it too.
PROG_ENV = "RAVEKIT_PROG"


def prog_name(script: str) -> str:
    """The name of the command as the user ran it, for usage and message lines.

    ``encoder.py`` (``python encoder.py``, ``python -m ravekit.commands.encoder``
    and in-process calls), or ``ravekit-encoder`` when run as the installed
    console command.  A ``--jobs`` worker takes its parent's name (``PROG_ENV``).
    """
    stem = script.removesuffix(".py")
    names = (script, f"ravekit-{stem}")
    given = os.environ.get(PROG_ENV)
    if given in names:
        return given
    ran = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    ran = ran.removesuffix(".exe")  # the console launchers of Windows
    return ran if ran in names else script


def make_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An ArgumentParser with the toolkit's formatter and program name."""
    return argparse.ArgumentParser(prog=prog, description=description, formatter_class=HelpFormatter)


def add_model_arg(parser: argparse.ArgumentParser, required: bool = True, help: str | None = None) -> None:
    parser.add_argument(
        "--model", "-m", required=required, default=None, metavar="MODEL.ts",
        help=help or "exported RAVE model (TorchScript .ts, as played by nn~)",
    )


def add_device_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default="auto", choices=DEVICES,
        help="where the model runs; auto tries cuda, then mps, then cpu",
    )
    parser.add_argument(
        "--threads", type=threads_count, default=os.environ.get("RAVEKIT_THREADS", "1"), metavar="N",
        help="torch threads inside each model call; 1 gives the same bytes on every layout and machine load "
        "(cores are used by processes, see --jobs); more threads change outputs in their last bits (about "
        "1e-7) and stall on a busy machine; $RAVEKIT_THREADS sets the default",
    )


def _count(text: str, give: str) -> int:
    """``text`` as a whole number of 1 or more, else an argparse error that says what to ``give``."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give {give}")
    return value


def threads_count(text: str) -> int:
    """An argparse type: a number of intra-op threads, 1 or more."""
    return _count(text, "a number of threads (1 or more), to --threads or in $RAVEKIT_THREADS")


def add_seed_arg(parser: argparse.ArgumentParser, default: int | None = 0) -> None:
    parser.add_argument(
        "--seed", type=int, default=default,
        help=f"random seed, 0 to {SEED_MAX}; the same seed gives bit-identical outputs and is recorded in the "
        "metadata",
    )


def check_input_file(flag: str, path: str) -> None:
    """Refuse (exit 2) a file named on the command line that is missing, a folder or unreadable."""
    p = os.path.expanduser(path)
    if not os.path.exists(p):
        link = " (a broken symbolic link)" if os.path.islink(p) else ""
        raise RavekitError(f"{flag} {path}: file not found{link}; check the path", 2)
    if os.path.isdir(p):
        raise RavekitError(f"{flag} {path}: is a folder, not a file; name the file itself", 2)
    try:
        with open(p, "rb"):
            pass
    except OSError as exc:
        raise RavekitError(f"{flag} {path}: cannot be read ({exc.strerror or exc}); check its permissions", 2) \
            from None


def check_input_folder(flag: str, path: str) -> None:
    """Refuse (exit 2) a folder named on the command line that is missing or not a folder."""
    if not os.path.isdir(os.path.expanduser(path)):
        what = "not found" if not os.path.exists(os.path.expanduser(path)) else "not a folder"
        raise RavekitError(f"{flag} {path}: {what}; pass an existing folder", 2)


# dest -> (flag, kind) of the command-line files that every script checks before any work
_FILE_FLAGS = {"model": ("--model", "file"), "models": ("--models", "file"), "stats": ("--stats", "file"),
               "audio": ("--audio", "file"), "repair": ("--repair", "file"),
               "patterns_dir": ("--patterns_dir", "folder")}


# dest -> flag of every path given on a command line; an empty one is refused (see check_paths)
_PATH_FLAGS = {"input": "--input", "output": "--output", "model": "--model", "models": "--models",
               "encoder": "--encoder", "prior": "--prior", "stats": "--stats", "audio": "--audio",
               "report": "--report", "patterns_dir": "--patterns_dir", "repair": "--repair", "summary": "--summary",
               "map_audio": "--map_audio", "map_holdout": "--map_holdout"}


def check_paths(args: argparse.Namespace) -> None:
    """Refuse (exit 2) an empty path given to any path flag.

    ``-o ""`` (often ``-o "$OUT"`` with the variable unset) would otherwise
    mean the current folder, and ``--encoder ""`` the decoding model itself.
    """
    for dest, flag in _PATH_FLAGS.items():
        value = getattr(args, dest, None)
        if value == "" or (isinstance(value, list) and "" in value):
            raise RavekitError(f'{flag} "": the path is empty (an unset shell variable?); give a path, '
                               "or leave the flag out", 2)


def check_common(args: argparse.Namespace) -> None:
    """The checks every script makes before any work, each failing with exit code 2.

    No path flag is empty (:func:`check_paths`); ``--seed`` in range; each
    file given to ``--model``, ``--models``, ``--stats``, ``--audio``, ``--repair`` exists
    and is readable; each ``--patterns_dir`` is a folder.  A script has only
    some of these flags; the others are skipped.
    """
    check_paths(args)
    check_seed(getattr(args, "seed", None))
    if getattr(args, "live_latency", None) and getattr(args, "live", None) is None:
        raise RavekitError(f"--live_latency {args.live_latency} applies with --live BUFFER; add --live or leave it "
                           "out", 2)
    for dest, (flag, kind) in _FILE_FLAGS.items():
        value = getattr(args, dest, None)
        for item in (value if isinstance(value, list) else [value] if value else []):
            (check_input_file if kind == "file" else check_input_folder)(flag, item)


def add_force_arg(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    parser.add_argument(
        "--force", action="store_true",
        help=help or "overwrite existing outputs (by default they are skipped, so an interrupted run resumes)",
    )


def add_output_arg(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--output", "-o", default=default, metavar="DIR", help="output folder")


def add_input_arg(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--input", "-i", nargs="+", required=True, metavar="PATH",
        help=f"{what}: files and/or folders (searched recursively), or - to read paths from stdin",
    )
    add_null_arg(parser)


def add_null_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--null", "-0", action="store_true",
        help="paths read from stdin (--input -) are separated by NUL characters, and the paths printed on "
        "stdout end with NUL instead of a newline, as find -print0 and xargs -0 expect; needed for file "
        "names that hold a line break",
    )
    # An option named like a number makes argparse read "--seed -3" or "--bpm -120" as a missing value;
    # forgetting it was added keeps negative numbers values (an exact "-0" still matches the flag first).
    parser._has_negative_number_optionals.clear()


def add_batch_args(parser: argparse.ArgumentParser, extensions: str) -> None:
    """Flags shared by the scripts that walk folders of inputs."""
    parser.add_argument(
        "--extensions", default=extensions,
        help="comma-separated file endings to pick up inside folders",
    )
    parser.add_argument(
        "--shard", default=None, metavar="K/N",
        help="process only the K-th of N deterministic slices of the inputs (K from 1 to N), "
        "for SLURM job arrays or GNU parallel",
    )
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="no progress bar and no summary line (errors are still shown)")
    parser.add_argument(
        "--summary", default=None, metavar="FILE",
        help="also write what the run did with every file (written, skipped, failed with the reason) to FILE as "
        "JSON, for python -m ravekit.commands.gather to put the shards of a job array together",
    )
    parser.add_argument(
        "--jobs", "-j", type=jobs_count, default=os.environ.get("RAVEKIT_JOBS", "auto"), metavar="N",
        help="processes running the model, at most one per core: with at least as many files, each takes its "
        "share of the files; with fewer (one long file), they share each file's chunks; auto: one per core "
        "when the memory allows and no GPU may be used, else 1; outputs are the same bytes whatever N; "
        "$RAVEKIT_JOBS sets the default",
    )
    # Set by --jobs for its workers: which share of the (sharded) files this process takes.
    parser.add_argument("--part", default=None, help=argparse.SUPPRESS)


def jobs_count(text: str) -> int | str:
    """An argparse type: ``auto`` or a number of worker processes, 1 or more."""
    if text == "auto":
        return text
    return _count(text, "auto or a number of worker processes (1 or more), to --jobs or in $RAVEKIT_JOBS")


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (0 <= value < float("inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or more)")
    return value


def channel_list(text: str) -> list[int]:
    """An argparse type: ``"3,4"``, channels counted from 1 as users count them -> ``[2, 3]``."""
    try:
        picked = [int(part) - 1 for part in text.split(",") if part.strip()]
    except ValueError:
        picked = []
    if not picked or min(picked) < 0 or len(set(picked)) != len(picked):
        raise argparse.ArgumentTypeError(f"{text!r}: give channel numbers counted from 1, each once, e.g. 3,4")
    return picked


def add_chunk_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--chunk", type=seconds, default=DEFAULT_CHUNK_SECONDS, metavar="SECONDS",
        help="audio per model call; long files go through in chunks with measured context, "
        "so memory stays flat (0: whole file in one call)",
    )


def add_live_args(parser: argparse.ArgumentParser, what: str) -> None:
    """``--live BUFFER`` and ``--live_latency``: render as nn~ plays (``engine.live``), checked against the model
    there (a positive multiple of its ratio)."""
    parser.add_argument(
        "--live", type=int, default=None, metavar="BUFFER",
        help=f"{what} exactly as [nn~] does with this buffer size in samples (nn~'s default is 4096; a "
        "multiple of the model's compression ratio): model calls on blocks of BUFFER samples, a streaming "
        "export's caches carried across them, a non-streaming one restarting from zero padding in every one "
        "(clicks, reported), step-held output; hear what the patch will play",
    )
    parser.add_argument(
        "--live_latency", default=None, choices=("keep", "trim"),
        help="with --live: keep the patch's delay (2 x BUFFER - 64 samples of nn~, plus a streaming export's "
        "own) at the start, as the patch plays it from DSP start, or trim it so the render lines up with "
        "the source and the offline render (default: keep)",
    )


def live_setting(args: argparse.Namespace):
    """``--live``/``--live_latency`` as an ``engine.live.Live``, or None without ``--live``."""
    if getattr(args, "live", None) is None:
        return None
    from ravekit.engine.live import Live  # imports torch: only when --live is given, so --help stays fast

    return Live(args.live, args.live_latency or "keep")


def add_model_batch_args(parser: argparse.ArgumentParser, what: str, output: str, extensions: str) -> None:
    """The flags of a script that runs a model over a batch of files (encoder, decoder)."""
    add_input_arg(parser, what)
    add_model_arg(parser)
    add_output_arg(parser, output)
    add_batch_args(parser, extensions)
    add_seed_arg(parser)
    add_device_arg(parser)
    add_force_arg(parser)
    add_chunk_arg(parser)


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    return parser.parse_args(list(argv) if argv is not None else None)
