"""What the scripts say: message lines on stderr, output paths on stdout, one line per failure.

Only the standard library is imported here, so every script's ``--help``
answers without loading numpy or torch.
"""

from __future__ import annotations

import os
import sys

from ravekit.errors import RavekitError
from ravekit.io.claims import scope

TYPE_CHECKING = False  # typing itself costs milliseconds at start-up

if TYPE_CHECKING:
    from collections.abc import Callable


def one_line(message: str) -> str:
    """``message`` with any line break or other non-printable character escaped, as ``repr`` would."""
    if message.isprintable():
        return message
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


# While a progress bar is drawn on stderr, message lines go through it (progress.Progress sets this):
# printed straight to stderr they would land on the bar's line and leave a torn copy of it behind.
message_writer: Callable[[str], None] | None = None


def say(line: str) -> None:
    """One message line on stderr, above the progress bar when one is drawn."""
    if message_writer is not None:
        message_writer(line)
    else:
        print(line, file=sys.stderr)


def warn(prog: str, message: str) -> None:
    """One warning line on stderr."""
    say(f"{prog}: warning: {one_line(message)}")


def info(prog: str, message: str) -> None:
    say(f"{prog}: {message}")


def fatal(prog: str, message: str, code: int = 1) -> int:
    """Print one error line on stderr and return the exit code to use."""
    say(f"{prog}: error: {one_line(message)}")
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
        with scope():  # output folders claimed by the body are released when it ends
            return body()
    except RavekitError as exc:
        return fatal(prog, str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return fatal(prog, interrupted, 130)
    except BrokenPipeError:
        # A downstream `head` closed the pipe: what it read is the part it wanted, not an error.
        stdout_closed()
        return 0
    except MemoryError:
        return fatal(prog, "out of memory; try a smaller --chunk or fewer inputs at once")
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if os.environ.get("RAVEKIT_DEBUG"):
            import traceback

            traceback.print_exc()
        return fatal(prog, f"unexpected {type(exc).__name__}: {exc} (set RAVEKIT_DEBUG=1 for a traceback)")


def check_printable(path: os.PathLike | str, null: bool = False) -> None:
    """Refuse a path that one-path-per-line output cannot carry (a line break in a name) unless ``null``."""
    text = os.fspath(path)
    if not null and ("\n" in text or "\r" in text):
        raise RavekitError(f"{text!r}: the name holds a line break, which would split it across lines of the "
                           "output; use -0 (--null) for NUL-separated paths")


class _Discard:
    """A stdout that takes every write and keeps nothing (see :func:`stdout_closed`)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def stdout_closed() -> None:
    """After a reader closed stdout (``| head -1``): send whatever is still printed nowhere.

    Python flushes stdout once more at exit; writing to the closed pipe then
    would print a traceback.  The file descriptor itself is pointed at
    ``/dev/null``, so the flush succeeds; a stdout without one (a test's
    capture) is swapped for a sink.
    """
    try:
        fd = sys.stdout.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        sys.stdout = _Discard()  # type: ignore[assignment]


def print_path(path: os.PathLike | str, null: bool = False) -> None:
    """Print an output path on stdout, flushed, so pipelines can start on it at once.

    One path per line, or NUL-terminated with ``null`` (``-0``).  A name with
    a line break is refused without ``null`` rather than printed as two paths.
    """
    check_printable(path, null)
    sys.stdout.write(os.fspath(path) + ("\0" if null else "\n"))
    sys.stdout.flush()
