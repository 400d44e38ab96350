"""The manual against the code: its links lead somewhere, and every flag a script offers is documented.

The README is the way in and ``docs/`` the reference. A link that leads nowhere, or a flag
that ``--help`` lists but the script's page never mentions, leaves a user without the answer;
both are checked here. (The commands the README and the manual show are parsed by
``tests/test_readme.py``.)
"""

from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
SCRIPTS = ("encoder", "decoder", "generator", "inspector", "averager")


def _prose(text: str) -> str:
    """``text`` without fenced code blocks and inline code, where brackets are Pd objects, not links."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (not - or _), spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in ``path``, with GitHub's -1, -2 ... for repeated headings."""
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", text, flags=re.M):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def relative_links(path: Path) -> list[str]:
    targets = re.findall(r"\[[^\]]*\]\(([^)\s]+)\)", _prose(path.read_text(encoding="utf-8")))
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def test_slugs_are_githubs():
    """The anchors the links below are checked against are the ones GitHub makes."""
    assert slug("Progress and `--jobs`") == "progress-and---jobs"
    assert slug("Aligning models (`--align`)") == "aligning-models---align"
    assert slug("Statistics, `stats.json`") == "statistics-statsjson"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    """Each relative link names a file that exists and, after #, a heading that file has."""
    links = relative_links(page)
    broken = []
    for link in links:
        target, _, anchor = link.partition("#")
        file = (page.parent / target).resolve() if target else page
        if not file.exists():
            broken.append(f"{link}: no file {file.relative_to(ROOT) if file.is_relative_to(ROOT) else file}")
        elif anchor and (file.suffix != ".md" or anchor not in anchors(file)):
            broken.append(f"{link}: {file.name} has no heading #{anchor}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_readme_and_the_index_lead_to_every_page():
    """No page of the manual is an orphan: the index links every one, and the README links the index."""
    assert "docs/README.md" in relative_links(ROOT / "README.md")
    indexed = {link.partition("#")[0] for link in relative_links(DOCS / "README.md")}
    pages = {p.name for p in DOCS.glob("*.md")} - {"README.md"}
    assert pages <= indexed, f"docs/README.md does not link {sorted(pages - indexed)}"


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    """What ``--help`` lists: every option string, but for -h/--help and suppressed options."""
    return {option for action in parser._actions if action.help != argparse.SUPPRESS
            for option in action.option_strings if option not in ("-h", "--help")}


def _flags(script: str) -> set[str]:
    module = importlib.import_module(f"ravekit.commands.{script}")
    if script != "generator":
        return _option_strings(module.get_parser())
    # A pattern's own flags show with `--pattern NAME --help`: they belong on the generator's page too.
    from ravekit.generate.patterns import discover

    flags = _option_strings(module.get_parser([]))
    for name in discover([]):
        flags |= _option_strings(module.get_parser(["--pattern", name]))
    return flags


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_flag_is_on_its_scripts_page(script):
    """Each flag ``SCRIPT.py --help`` lists is named on ``docs/SCRIPT.md`` (as itself, not inside a longer flag)."""
    text = (DOCS / f"{script}.md").read_text(encoding="utf-8")
    flags = _flags(script)
    assert {"--seed", "-0"} & flags, f"{script}: found no flags; the parser was not read"
    missing = sorted(f for f in flags if not re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", text))
    assert not missing, f"docs/{script}.md does not mention {', '.join(missing)}, which {script}.py --help lists"
