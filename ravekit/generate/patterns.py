"""Finding and loading pattern modules (``patterns/*.py`` and ``--patterns_dir``).

Discovery lists ``*.py`` files and reads each one's source with ``ast``:
nothing is imported until one pattern is chosen, so ``--help`` and
``--list_patterns`` stay fast and a broken plugin only matters when it is
used.  Files whose names start with ``_`` are skipped.

Pattern module contract
-----------------------
A pattern is one Python file; its name (without ``.py``) is the ``--pattern``
choice.  The first line of its docstring is its description.  It defines:

``NUM_BASES: int``
    how many base arrays it takes (1 or more).
``generate(bases, num_loops, rng, stats, **options) -> np.ndarray``
    ``bases``: list of ``NUM_BASES`` float32 arrays, each ``(k, latent_dims)``
    (k = ``--num_latents``), drawn from the chosen distribution;
    ``num_loops``: int >= 1; ``rng``: the ``numpy.random.Generator`` that
    must supply every random choice (same seed, same output); ``stats``: the
    fitted :class:`ravekit.generate.stats.Stats` (vary by ``stats.scale``: the std,
    or the robust std when the run uses ``--iqr``); ``options``: the values of the
    pattern's own flags, by ``dest``.  Returns ``(frames, latent_dims)``.
    With codes of a discrete model (``stats.discrete``) the bases hold whole
    codes ``0 .. stats.codebook_size - 1``, and the output must too: copy and
    rearrange the bases' values, or draw codes with
    ``stats.code_probabilities()``; never shift, average or round codes. An
    output value that is not a code is refused.
``add_arguments(parser)`` (optional)
    adds the pattern's own flags (name them ``--<pattern>_<option>``).
``check_options(**options)`` (optional)
    raises ``ValueError`` naming a bad value of the pattern's own flags; called
    before any input is read, so the mistake exits 2 at once.
``output_frames(k, latent_dims, num_loops, **options) -> int`` (optional)
    the output length, so oversized requests are refused before generating.
``loop_boundaries(k, num_loops, **options) -> list[int]`` (optional)
    frame indices where sections start, for ``--plot`` (default: every k).
``base_frames(k, num_loops, **options) -> int`` (optional)
    frames in each base, when not ``k`` (``continuation``: ``k * num_loops``).
"""

from __future__ import annotations

import os
import sys
from functools import cached_property
from pathlib import Path

from ravekit.errors import RavekitError

TYPE_CHECKING = False  # typing itself costs milliseconds at start-up

if TYPE_CHECKING:
    from collections.abc import Iterable

# Start-up matters here (generator.py --help lists the patterns): only the
# standard library's cheapest modules are imported at the top, and a file's
# source is parsed only when its description or flags are asked for.
# Built-ins live in the checkout's top-level patterns/ folder (where users look for them); an
# installed ravekit carries the same files as ravekit/_patterns (pyproject.toml maps them there).
_PACKAGE = Path(__file__).resolve().parents[1]
BUILTIN_DIR = _PACKAGE / "_patterns" if (_PACKAGE / "_patterns").is_dir() else _PACKAGE.parent / "patterns"


class PatternInfo:
    """A discovered pattern file, known without importing it."""

    def __init__(self, name: str, path: Path):
        self.name, self.path = name, path

    @cached_property
    def _described(self) -> tuple[str, str]:
        return describe(self.path)

    @property
    def description(self) -> str:
        return self._described[0]

    @property
    def error(self) -> str:
        """Why its source could not be parsed, if it could not."""
        return self._described[1]

    @cached_property
    def has_options(self) -> bool:
        """Whether it defines ``add_arguments(parser)`` at module level (a text search, no parsing)."""
        import re

        try:
            return re.search(r"^def add_arguments\(", self.path.read_text(encoding="utf-8"), re.M) is not None
        except (OSError, UnicodeDecodeError):
            return False


def describe(path: Path) -> tuple[str, str]:
    """``(first docstring line, parse error)`` of a pattern file."""
    import ast

    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, UnicodeDecodeError, SyntaxError) as exc:
        return "", f"{type(exc).__name__}: {exc}"
    first = tree.body[0] if tree.body else None
    doc = first.value.value if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) else ""
    lines = doc.strip().splitlines() if isinstance(doc, str) else []
    return (lines[0].strip() if lines else ""), ""


def discover(extra_dirs: Iterable[str | Path] = ()) -> dict[str, PatternInfo]:
    """Patterns by name: the built-in ones, then those of each ``--patterns_dir``.

    Two files of one name (a user's pattern named like a built-in one, or the
    same name in two folders) are refused rather than one replacing the other:
    a replaced built-in would silently change what existing scripts make.
    A folder given twice, or the built-in folder itself, is read once.

    Raises ``RavekitError`` (exit code 2) for a ``--patterns_dir`` that is not
    a folder, and for a name clash.
    """
    found: dict[str, PatternInfo] = {}
    dirs, seen = [BUILTIN_DIR], {BUILTIN_DIR}
    for d in extra_dirs:
        p = Path(d)
        if not p.is_dir():
            raise RavekitError(f"--patterns_dir {p}: not a folder; pass a folder holding pattern .py files", 2)
        if p.resolve() not in seen:
            seen.add(p.resolve())
            dirs.append(p)
    for folder in dirs:
        for entry in sorted(os.listdir(folder)):
            name, ext = os.path.splitext(entry)
            if ext != ".py" or name.startswith("_") or not name.isidentifier():
                continue
            if name in found:
                other = found[name].path
                what = "the built-in pattern" if other.parent == BUILTIN_DIR else f"the pattern in {other.parent}"
                raise RavekitError(f"--patterns_dir {folder}: {entry} has the name of {what} {name!r}; rename "
                                   f"the file (e.g. my_{entry}) so that --pattern {name} keeps one meaning", 2)
            found[name] = PatternInfo(name, folder / entry)
    return found


def list_text(patterns: dict[str, PatternInfo]) -> str:
    """One line per pattern: name, description, and where it lives when not built in."""
    width = max((len(n) for n in patterns), default=0)
    lines = []
    for name, info in sorted(patterns.items()):
        where = "" if info.path.parent == BUILTIN_DIR else f"  [{info.path}]"
        desc = info.description or (f"(unreadable: {info.error})" if info.error else "(no description)")
        lines.append(f"{name:<{width}}  {desc}{where}")
    return "\n".join(lines)


def load_pattern(info: PatternInfo):
    """Import one pattern module and check that it follows the contract."""
    import importlib.util
    import zlib

    if info.error:
        raise RavekitError(f"{info.path}: pattern {info.name!r} cannot be read ({info.error}); fix the file")
    mod_name = f"_ravekit_pattern_{info.name}_{zlib.crc32(str(info.path.resolve()).encode()):08x}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, info.path)
    if spec is None or spec.loader is None:
        raise RavekitError(f"{info.path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - a user's plugin may raise anything
        del sys.modules[mod_name]
        raise RavekitError(f"{info.path}: pattern {info.name!r} fails to import ({type(exc).__name__}: {exc}); "
                           "fix the file or choose another --pattern") from None
    if not callable(getattr(module, "generate", None)):
        raise RavekitError(f"{info.path}: pattern {info.name!r} has no generate(bases, num_loops, rng, stats, "
                           "**options) function; see patterns/__init__.py for the contract")
    nb = getattr(module, "NUM_BASES", None)
    if not isinstance(nb, int) or isinstance(nb, bool) or nb < 1:
        raise RavekitError(f"{info.path}: pattern {info.name!r} must set NUM_BASES to an int >= 1 (found {nb!r})")
    return module


def find(patterns: dict[str, PatternInfo], name: str) -> PatternInfo:
    """The pattern called ``name``, or an error listing the choices."""
    if name not in patterns:
        raise RavekitError(f"--pattern {name!r}: no such pattern; choose one of {', '.join(sorted(patterns))} "
                           "(or add a .py file with --patterns_dir)", 2)
    return patterns[name]
