"""Plain-text tables for terminal output: aligned columns, numbers to the right."""

from __future__ import annotations

from collections.abc import Sequence

UNKNOWN = "unknown"


def fmt_value(value, digits: int = 4) -> str:
    """Render one cell: ``None`` as ``unknown``, ints with thousands separators."""
    if value is None:
        return UNKNOWN
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "nan"
        return f"{value:.{digits}g}" if abs(value) < 1e5 else f"{value:,.0f}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def _is_numeric(cell: str) -> bool:
    text = cell.replace(",", "").replace(".", "").replace("-", "").replace("e", "").replace("+", "")
    return text.isdigit()


def format_table(headers: Sequence[str], rows: Sequence[Sequence], indent: str = "") -> str:
    """Align ``rows`` under ``headers``; numeric columns are right-aligned.

    Parameters
    ----------
    headers : sequence of str
        Column titles.
    rows : sequence of sequence
        One sequence of cells per row; cells go through :func:`fmt_value`.
    indent : str
        Prefix of every line.

    Returns
    -------
    str
        The table, lines joined with newlines, no trailing newline.
    """
    cells = [[fmt_value(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    numeric = [all(_is_numeric(row[i]) or row[i] in ("", UNKNOWN) for row in cells) and cells != []
               for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric)]
        return (indent + "  ".join(parts)).rstrip()

    out = [line(list(headers)), indent + "  ".join("-" * w for w in widths)]
    out += [line(row) for row in cells]
    return "\n".join(out)


def format_facts(pairs: Sequence[tuple[str, object]], indent: str = "") -> str:
    """``label  value`` lines with the labels padded to one width."""
    width = max((len(k) for k, _ in pairs), default=0)
    return "\n".join(f"{indent}{k.ljust(width)}  {v if isinstance(v, str) else fmt_value(v)}" for k, v in pairs)
