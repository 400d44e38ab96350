"""The README's and the manual's commands against the scripts: a new user runs them as written.

The README's worked example is read as a shell script (variables, pipes, line continuations)
and every ``python SCRIPT.py ...`` in it must parse with that script's own parser, read only
what ``make demo`` or an earlier step made, and write outside the checkout's own
folders. Every other ``python SCRIPT.py`` line of the shell blocks of the README and of
``docs/`` must parse.
"""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
# The README and the manual in docs/: every shell block of both shows commands a user copies.
PAGES = {"README.md": README} | {f"docs/{p.name}": p.read_text(encoding="utf-8")
                                  for p in sorted((ROOT / "docs").glob("*.md"))}
SCRIPTS = ("encoder", "decoder", "generator", "inspector", "averager")
# What `make demo` leaves in a fresh clone, besides the tracked files.
MADE_BY_MAKE_DEMO = {"models/demo.ts", "_demo"}


def _shell_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, flags=re.S)


def _worked_example() -> str:
    section = README[README.index("## A worked example"):]
    return _shell_blocks(section)[0]


def _commands(block: str) -> list[list[str]]:
    """The block's commands as argv lists: continuations joined, comments dropped, $VARs expanded."""
    variables: dict[str, str] = {}
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        tokens = shlex.split(line, comments=True)
        if tokens and all(re.fullmatch(r"[A-Za-z_]\w*=\S*", t) for t in tokens):
            variables.update(t.split("=", 1) for t in tokens)
            continue
        tokens = [re.sub(r"\$\{?(\w+)\}?", lambda m: variables[m.group(1)], t) for t in tokens]
        while tokens:
            cut = tokens.index("|") if "|" in tokens else len(tokens)
            commands.append(tokens[:cut])
            tokens = tokens[cut + 1:]
    return commands


def _parse(script: str, args: list[str], page: str = "README"):
    """``args`` through SCRIPT's own parser; a flag it does not take fails the test with argparse's message."""
    module = importlib.import_module(f"ravekit.commands.{script}")
    parser = module.get_parser(args) if script == "generator" else module.get_parser()
    try:
        return parser.parse_args(args)
    except SystemExit:
        pytest.fail(f"{page}: python {script}.py {shlex.join(args)}: {script}.py does not accept this")


def _script(argv: list[str]) -> str | None:
    if len(argv) >= 2 and argv[0] == "python" and argv[1].endswith(".py"):
        return argv[1][:-3]
    return None


def _under(path: str, folders: set[str]) -> bool:
    p = PurePosixPath(path.rstrip("/"))
    return any(p == PurePosixPath(f) or PurePosixPath(f) in p.parents for f in folders)


def test_worked_example_runs_as_written():
    """Each step parses, reads only what make demo or an earlier step wrote, and writes beside the code."""
    tracked = {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))} - {"models"}
    made = set(MADE_BY_MAKE_DEMO)
    scripts_run = []
    for argv in _commands(_worked_example()):
        script = _script(argv)
        if argv[0] == "source":
            continue
        if argv[:2] == ["python", "-m"]:
            assert (ROOT / (argv[2].replace(".", "/") + ".py")).is_file(), f"README runs {argv[2]}, which is missing"
            written = argv[3]  # the tools' first argument is the file they write
            made.update({written, str(PurePosixPath(written).parent)})
            continue
        if argv[0] == "find":
            assert _under(argv[1], made), f"README: find {argv[1]}: no earlier step makes it"
            continue
        assert script in SCRIPTS, f"README's worked example runs {shlex.join(argv)}, not one of the scripts"
        args = _parse(script, argv[2:])
        reads = [p for p in (args.input or []) if p != "-"] if hasattr(args, "input") else []
        for name in ("model", "encoder", "stats", "prior"):  # --stats takes several files
            value = getattr(args, name, None) or []
            reads += value if isinstance(value, list) else [value]
        reads += getattr(args, "models", None) or []
        for path in reads:
            assert _under(path, made), f"README: {shlex.join(argv)} reads {path}, which no earlier step makes"
        output = getattr(args, "output", None)
        if output and ("-o" in argv or "--output" in argv):
            top = PurePosixPath(output).parts[0]
            assert top not in tracked, f"README: {shlex.join(argv)} writes into the checkout's own {top}/"
            made.add(output)
        scripts_run.append(script)
    # The example shows every step of the pipeline; an extraction that finds nothing must not pass.
    assert {"encoder", "decoder", "generator", "inspector"} <= set(scripts_run)


def test_every_readme_and_manual_command_parses():
    """Every ``python SCRIPT.py`` line in the shell blocks of the README and docs/ uses flags the script has."""
    checked = 0
    for page, text in PAGES.items():
        for block in _shell_blocks(text):
            for argv in _commands(block):
                script = _script(argv)
                if script is None or any(a.startswith("[") for a in argv):  # usage synopses, not commands
                    continue
                assert script in SCRIPTS, f"{page} runs {script}.py, which does not exist"
                _parse(script, argv[2:], page)
                checked += 1
    assert checked >= 20
