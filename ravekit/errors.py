"""The one exception type whose message is meant for the user, and how messages show paths."""

import os


class RavekitError(Exception):
    """An error the user can fix; its message names the file, the problem and the fix.

    Scripts print it as one line on stderr and exit with ``exit_code``
    (2 for a wrong command line, 1 for everything else).
    """

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def first_line(exc: BaseException, limit: int = 160, sentence: bool = False) -> str:
    """The gist of a library's exception for a one-line message.

    torch and libsndfile put pages of context (C++ traces, hints) after the
    first line; ``sentence`` keeps only its first sentence.  An empty message
    gives the exception's type name.
    """
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    line = text.splitlines()[0]
    return (line.split(". ")[0] if sentence else line)[:limit]


def shown(path: os.PathLike | str) -> str:
    """A path as messages show it: as is, or ``repr`` when it holds a line break or other non-printable character.

    One message is one line on stderr; a name must not split it or hide characters.
    """
    text = os.fspath(path)
    return text if text.isprintable() else repr(text)
