"""The package's layers run one way: io <- engine <- capabilities <- commands, with no loop.

Read from the source (``ast``), every import counted, at the top of a module
or inside a function: an import inside a function is a dependency all the
same, only a later one.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ravekit"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """``(imported module, line, inside a function)`` for every ``ravekit`` import of ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno, inside) for a in child.names if a.name.startswith("ravekit"))
            elif isinstance(child, ast.ImportFrom) and child.module and child.module.startswith("ravekit"):
                # ``from ravekit.commands import flags`` imports ravekit.commands.flags
                for a in child.names:
                    sub = f"{child.module}.{a.name}"
                    found.append((sub if _exists(sub) else child.module, child.lineno, inside))
            visit(child, inside)

    visit(tree, False)
    return found


def _exists(module: str) -> bool:
    rel = Path(*module.split("."))
    return (PACKAGE.parent / rel).with_suffix(".py").exists() or (PACKAGE.parent / rel / "__init__.py").exists()


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = _module_name(path)
        graph[name] = {m for m, _, _ in _imports(path) if m != name and _exists(m)}
    return graph


def test_nothing_outside_commands_imports_them():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "commands" in path.relative_to(PACKAGE).parts:
            continue
        offenders += [f"{path.relative_to(PACKAGE.parent)}:{line} imports {m}"
                      for m, line, _ in _imports(path) if m == "ravekit.commands" or m.startswith("ravekit.commands.")]
    assert not offenders, "library code reaches up into the command line:\n" + "\n".join(offenders)


def test_the_package_has_no_import_loop():
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    loops = []

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                loops.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in state:
                walk(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node, [node])
    assert not loops, "import loops:\n" + "\n".join(loops)


def test_layers_run_one_way():
    """io and the floor modules import no engine, capability or command; the engine no capability."""
    floors = {"ravekit.errors": 0, "ravekit.choices": 0, "ravekit.seeds": 0, "ravekit.io": 1, "ravekit.engine": 2,
              "ravekit.commands": 9}

    def floor(module: str) -> int:
        if module == "ravekit":
            return 0  # the package's face: its version and docstring
        for prefix, level in floors.items():
            if module == prefix or module.startswith(prefix + "."):
                return level
        return 5  # the capabilities: generate, merging, inspection, puredata, demo

    upward = [f"{a} imports {b}" for a, targets in _graph().items() for b in targets
              if floor(b) > floor(a)]
    assert not upward, "imports that run back up a layer:\n" + "\n".join(upward)


# What a module costs to import: 0 the standard library, 1 numpy and the audio libraries, 2 torch and the
# plotting and table libraries (seconds each).
WEIGHTS = {"numpy": 1, "scipy": 1, "soundfile": 1, "soxr": 1, "tqdm": 1, "torch": 2, "pandas": 2, "matplotlib": 2}


def _weights() -> dict[str, int]:
    """What importing each package module loads at its top level, directly or through other modules."""
    own, graph = {}, {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = _module_name(path)
        top = []
        for node in ast.parse(path.read_text(encoding="utf-8")).body:  # what importing the module runs
            if isinstance(node, ast.Import):
                top += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                top += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        own[name] = max([WEIGHTS.get(t.split(".")[0], 0) for t in top], default=0)
        graph[name] = {t for t in top if t.startswith("ravekit") and _exists(t) and t != name}
    weight = dict(own)
    for _ in graph:  # the longest chain is shorter than the number of modules
        weight = {n: max([weight[n]] + [weight[t] for t in graph[n]]) for n in graph}
    return weight


def test_function_level_imports_keep_start_up_fast():
    """An import inside a function must defer something its module does not load already.

    A command module loads only the standard library at start-up, so that
    ``--help`` is fast, and imports numpy or torch where the work needs them;
    a numpy module may defer torch.  Anything else imported inside a function
    only hides a dependency (or a loop): it belongs at the top of the module.
    """
    weight = _weights()
    assert weight["ravekit.engine.model"] == 2 and weight["ravekit.io.inputs"] == 0  # the test sees what it should
    hidden = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = weight[_module_name(path)]
        hidden += [f"{path.relative_to(PACKAGE.parent)}:{line} imports {m} inside a function, which defers nothing "
                   "the module does not load already: import it at the top"
                   for m, line, inside in _imports(path) if inside and weight.get(m, 0) <= here]
    assert not hidden, "\n".join(hidden)


def test_modules_with_function_level_imports_say_why():
    """Each module that imports inside functions says why, once (a ``# start-up:`` comment) or beside the import."""
    silent = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        doc = (ast.get_docstring(ast.parse(text)) or "").lower()
        doc += "".join(line.lower() for line in lines if line.lstrip().lower().startswith("# start-up:"))
        for module, line, inside in _imports(path):
            near = "\n".join(lines[max(0, line - 3):line]).lower()
            if inside and not any(word in doc or word in near for word in ("start-up", "--help")):
                silent.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module} inside a function")
                break
    assert not silent, "no word on why these modules import inside functions:\n" + "\n".join(silent)
