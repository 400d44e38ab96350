"""Writing Pure Data patch files (``.pd``) from Python.

A patch file is a list of ``#X`` records, one per object, message or comment,
in creation order; connections name objects by that order.  :class:`Canvas`
keeps the count so callers connect objects by the index :meth:`Canvas.obj`
returned, never by counting lines.  Standard library only.

Escaping: user data (paths, file names) goes through :func:`atom`, which
backslash-escapes what Pd would otherwise parse (spaces, commas, semicolons,
dollar signs).  Code written on purpose with ``\\$1`` or ``\\;`` is passed raw.
"""

from __future__ import annotations

import os
import re

_SPECIAL = re.compile(r"([ ,;$\\])")


def atom(value) -> str:
    """One Pd atom: numbers as ``%g``-like text, symbols escaped.

    Parameters
    ----------
    value : str, int or float
        A path such as ``/home/me/my models/a.ts`` becomes ``/home/me/my\\ models/a.ts``.
    """
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value != int(value) else str(int(value))
    return _SPECIAL.sub(r"\\\1", os.fspath(value))


def comment_text(text: str) -> str:
    """A comment's words: Pd comments cannot hold ``;`` ``,`` ``$`` unescaped."""
    return " ".join(atom(w) for w in text.split())


class Canvas:
    """A patch (or subpatch) under construction.

    Parameters
    ----------
    width, height : int
        Window size in pixels.
    font : int
        Font size of a top-level patch (ignored for a subpatch).
    """

    def __init__(self, width: int = 700, height: int = 500, font: int = 12):
        self.width, self.height, self.font = width, height, font
        self.records: list[str] = []
        self.declares: list[str] = []
        self.count = 0

    def _add(self, record: str) -> int:
        self.records.append(record)
        self.count += 1
        return self.count - 1

    def obj(self, x: int, y: int, *atoms: str) -> int:
        """An object box, ``atoms`` already in Pd syntax; returns its index."""
        return self._add(f"#X obj {x} {y} {' '.join(str(a) for a in atoms)};")

    def msg(self, x: int, y: int, *atoms: str) -> int:
        """A message box; returns its index."""
        return self._add(f"#X msg {x} {y} {' '.join(str(a) for a in atoms)};")

    def floatatom(self, x: int, y: int, width: int = 5) -> int:
        """A number box (``#X floatatom``, Pd 0.52+ record); returns its index."""
        return self._add(f"#X floatatom {x} {y} {width} 0 0 0 - - - 0;")

    def text(self, x: int, y: int, words: str) -> int:
        """A comment (escaped with :func:`comment_text`); returns its index."""
        return self._add(f"#X text {x} {y} {comment_text(words)};")

    def sub(self, x: int, y: int, name: str, child: Canvas) -> int:
        """Embed ``child`` as ``[pd name]``; returns its index in this canvas."""
        head = f"#N canvas 0 0 {child.width} {child.height} {name} 0;"
        self.records.extend([head, *child.declares, *child.records])
        return self._add(f"#X restore {x} {y} pd {name};")

    def declare(self, x: int, y: int, *atoms: str) -> int:
        """A [declare] object; Pd acts on the ``#X declare`` record it also needs, at load time."""
        self.declares.append(f"#X declare {' '.join(atoms)};")
        return self.obj(x, y, "declare", *atoms)

    def connect(self, src: int, outlet: int, dst: int, inlet: int) -> None:
        """Connect ``src``'s outlet to ``dst``'s inlet (indices from :meth:`obj`)."""
        self.records.append(f"#X connect {src} {outlet} {dst} {inlet};")

    def text_file(self) -> str:
        """The whole ``.pd`` file of a top-level patch."""
        head = f"#N canvas 0 50 {self.width} {self.height} {self.font};"
        return "\n".join([head, *self.declares, *self.records]) + "\n"
