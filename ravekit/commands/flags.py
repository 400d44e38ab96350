"""Shared command-line plumbing: flags defined once, errors reported once.

Only the standard library is imported here, so every script's ``--help``
answers without loading numpy or torch.
"""

from __future__ import annotations

import argparse
import os
import sys

from ravekit.choices import DEFAULT_CHUNK_SECONDS, DEVICES
from ravekit.errors import RavekitError, shown  # noqa: F401 - shown is part of this module's API

TYPE_CHECKING = False  # typing itself costs milliseconds at start-up

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import TextIO


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


SEED_MAX = 2**32 - 1  # numpy's SeedSequence and torch.manual_seed both take 0..2**32-1 as is


def add_seed_arg(parser: argparse.ArgumentParser, default: int | None = 0) -> None:
    parser.add_argument(
        "--seed", type=int, default=default,
        help=f"random seed, 0 to {SEED_MAX}; the same seed gives bit-identical outputs and is recorded in the "
        "metadata",
    )


def check_seed(seed: int | None) -> None:
    """Refuse a ``--seed`` outside 0..2**32-1 (exit 2): the one rule of every script.

    Negative seeds are refused because numpy's SeedSequence refuses them and
    torch maps them onto large positive ones, so one seed would not mean one
    result across the scripts.
    """
    if seed is not None and not (0 <= seed <= SEED_MAX):
        raise RavekitError(f"--seed {seed}: use a whole number from 0 to {SEED_MAX}", 2)


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
               "audio": ("--audio", "file"), "patterns_dir": ("--patterns_dir", "folder")}


def check_common(args: argparse.Namespace) -> None:
    """The checks every script makes before any work, each failing with exit code 2.

    ``--seed`` in range; each file given to ``--model``, ``--models``,
    ``--stats``, ``--audio`` exists and is readable; each ``--patterns_dir`` is
    a folder.  A script has only some of these flags; the others are skipped.
    """
    check_seed(getattr(args, "seed", None))
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
        "--jobs", "-j", type=jobs_count, default=os.environ.get("RAVEKIT_JOBS", "auto"), metavar="N",
        help="worker processes, each with its share of the files and of the cores, at most one per file and "
        "per core; auto: one single-threaded worker per core when there are several files, the memory for "
        "them and no GPU, else 1 (one process using every core); $RAVEKIT_JOBS sets the default",
    )
    # Set by --jobs for its workers: which share of the (sharded) files this process takes.
    parser.add_argument("--part", default=None, help=argparse.SUPPRESS)


def jobs_count(text: str) -> int | str:
    """An argparse type: ``auto`` or a number of worker processes, 1 or more."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give auto or a number of worker processes (1 or more), "
                                         "to --jobs or in $RAVEKIT_JOBS")
    return value


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


def one_line(message: str) -> str:
    """``message`` with any line break or other non-printable character escaped, as ``repr`` would."""
    if message.isprintable():
        return message
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


def warn(prog: str, message: str) -> None:
    """One warning line on stderr."""
    print(f"{prog}: warning: {one_line(message)}", file=sys.stderr)


def info(prog: str, message: str) -> None:
    print(f"{prog}: {message}", file=sys.stderr)


def fatal(prog: str, message: str, code: int = 1) -> int:
    """Print one error line on stderr and return the exit code to use."""
    print(f"{prog}: error: {one_line(message)}", file=sys.stderr)
    return code


RESUMES = "interrupted; finished outputs are kept, run again to resume"


def run_main(prog: str, body: Callable[[], int], interrupted: str = RESUMES) -> int:
    """Run a script's body, turning every failure into one line on stderr.

    ``RavekitError`` carries a message written for the user.  Anything else is
    a bug or an unforeseen condition: it is still reported on one line, and
    ``RAVEKIT_DEBUG=1`` shows the traceback for a bug report.  ``interrupted``
    is what Ctrl-C says: only a script whose outputs resume may promise it.
    """
    try:
        return body()
    except RavekitError as exc:
        return fatal(prog, str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return fatal(prog, interrupted, 130)
    except BrokenPipeError:
        # A downstream `head` closed the pipe: not an error worth a message.
        try:  # noqa: SIM105 - contextlib costs start-up time
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stays open for the rest of the process
        except OSError:
            pass
        return 1
    except MemoryError:
        return fatal(prog, "out of memory; try a smaller --chunk or fewer inputs at once")
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if os.environ.get("RAVEKIT_DEBUG"):
            import traceback

            traceback.print_exc()
        return fatal(prog, f"unexpected {type(exc).__name__}: {exc} (set RAVEKIT_DEBUG=1 for a traceback)")


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """Parse ``K/N`` into ``(k, n)`` with ``1 <= k <= n``."""
    if text is None:
        return None
    try:
        k_text, n_text = text.split("/")
        k, n = int(k_text), int(n_text)
    except ValueError:
        raise RavekitError(f"--shard {text!r} is not of the form K/N, e.g. --shard 1/4", exit_code=2) from None
    if not (n >= 1 and 1 <= k <= n):
        raise RavekitError(f"--shard {text}: K must be from 1 to N, e.g. --shard 1/{max(n, 1)}", exit_code=2)
    return k, n


def parse_extensions(text: str) -> tuple[str, ...]:
    exts = []
    for part in text.split(","):
        part = part.strip().lower()
        if part:
            exts.append(part if part.startswith(".") else "." + part)
    return tuple(exts)


def check_printable(path: os.PathLike | str, null: bool = False) -> None:
    """Refuse a path that one-path-per-line output cannot carry (a line break in a name) unless ``null``."""
    text = os.fspath(path)
    if not null and ("\n" in text or "\r" in text):
        raise RavekitError(f"{text!r}: the name holds a line break, which would split it across lines of the "
                           "output; use -0 (--null) for NUL-separated paths")


def print_path(path: os.PathLike | str, null: bool = False) -> None:
    """Print an output path on stdout, flushed, so pipelines can start on it at once.

    One path per line, or NUL-terminated with ``null`` (``-0``).  A name with
    a line break is refused without ``null`` rather than printed as two paths.
    """
    check_printable(path, null)
    sys.stdout.write(os.fspath(path) + ("\0" if null else "\n"))
    sys.stdout.flush()


def read_paths(stream: Iterable[str] | TextIO, null: bool = False) -> list[str]:
    """The paths on ``stream``: one per line, or NUL-separated with ``null``; blank entries are skipped.

    Only the separator is cut: file names may begin or end with spaces.
    """
    if null:
        raw = getattr(stream, "buffer", None)
        # The bytes, not the text layer: its newline translation would turn a "\r" in a name into "\n".
        text = os.fsdecode(raw.read()) if raw is not None else "".join(stream)
        return [p for p in text.split("\0") if p.strip()]
    return [line.rstrip("\r\n") for line in stream if line.strip()]


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    return parser.parse_args(list(argv) if argv is not None else None)


def batch_main(prog: str, parser: argparse.ArgumentParser, argv: Sequence[str] | None, module: str,
               run: Callable[[argparse.Namespace], int]) -> int:
    """The ``main`` of a script made with ``add_model_batch_args``: one process, or ``--jobs`` workers."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    try:
        check_common(args)
    except RavekitError as exc:
        return fatal(prog, str(exc), exc.exit_code)
    if args.jobs != 1:
        from ravekit.commands.parallel import run_parallel

        return run_main(prog, lambda: run_parallel(prog, module, argv, args, lambda: run(args)))
    return run_main(prog, lambda: run(args))
