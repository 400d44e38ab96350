"""The detail modes of inspector.py: list entries, then answer queries about them.

On a terminal the loop prompts (with tab completion where readline exists);
from a pipe it reads one query per line and prints nothing but the answers,
so sessions can be scripted: ``printf 'fidelity\\nq\\n' | inspector.py --dict -i m.ts``.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Callable
from functools import partial
from typing import TextIO

import numpy as np
import torch

from ravekit.inspection.tables import format_table

QUIT = {"q", "quit", "exit"}
PRINT_THRESHOLD = 64  # above this many values, show edges and statistics only
EDGE_ITEMS = 3


def describe_tensor(name: str, t: torch.Tensor, kind: str) -> str:
    """dtype, shape, statistics and values of one tensor; large ones summarised."""
    lines = [f"{name}  ({kind})", f"  dtype  {str(t.dtype).replace('torch.', '')}",
             f"  shape  {tuple(t.shape)}  ({t.numel():,} values, {t.numel() * t.element_size():,} bytes)"]
    if t.numel() and not t.is_complex():
        v = t.detach().cpu().double()
        std = f"{float(v.std()):.6g}" if t.numel() > 1 else "n/a"
        lines.append(f"  mean {float(v.mean()):.6g}  std {std}  min {float(v.min()):.6g}  max {float(v.max()):.6g}")
        if not torch.isfinite(v).all():
            lines.append(f"  non-finite values: {int((~torch.isfinite(v)).sum()):,}")
    if t.numel() == 0:
        lines.append("  values  (empty)")
    else:
        arr = t.detach().cpu().numpy() if t.dtype != torch.bfloat16 else t.float().numpy()
        text = np.array2string(arr, threshold=PRINT_THRESHOLD, edgeitems=EDGE_ITEMS, precision=6,
                               max_line_width=100)
        label = "values" if t.numel() <= PRINT_THRESHOLD else "values (edges only)"
        lines.append(f"  {label}")
        lines += ["    " + line for line in text.splitlines()]
    return "\n".join(lines)


def state_dict_listing(rows: list[dict]) -> str:
    """One line per state_dict entry: name, kind, dtype, shape, values."""
    return format_table(("name", "kind", "dtype", "shape", "values"),
                        [(r["name"], r["kind"], r["dtype"], r["shape"], r["numel"]) for r in rows])


def _schema(module, name: str) -> str:
    schema = str(module._c._get_method(name).schema)
    # Drop the `__torch__.x.y.Class self, ` argument: it says nothing to a user.
    return re.sub(r"\(\S+ self,? ?", "(", schema, count=1)


def module_members(module) -> dict[str, tuple[str, str, Callable[[], str]]]:
    """Attributes, methods and submodules of a ScriptModule's top level.

    Returns
    -------
    dict ``name -> (kind, summary, details)`` where ``details()`` renders the
    full answer for the detail mode.
    """
    members: dict[str, tuple[str, str, Callable[[], str]]] = {}
    children = dict(module.named_children())
    for name in _attribute_names(module):
        if name in children or name.startswith("_"):
            continue
        try:
            value = module._c.getattr(name)
        except Exception:  # noqa: BLE001
            continue
        if isinstance(value, torch.Tensor):
            summary = f"Tensor {str(value.dtype).replace('torch.', '')} {tuple(value.shape)}"
            members[name] = ("attribute", summary, partial(describe_tensor, name, value, "tensor attribute"))
        else:
            text = repr(value)
            summary = f"{type(value).__name__} = {text if len(text) <= 60 else text[:57] + '...'}"
            members[name] = ("attribute", summary, partial(_attribute_details, name, value, text))
    for name in module._c._method_names():
        try:
            signature = _schema(module, name)
        except Exception:  # noqa: BLE001
            signature = "(signature unknown)"
        members[name] = ("method", signature, partial(_method_details, module, name))
    for name, child in children.items():
        cls = str(getattr(child, "original_name", type(child).__name__))
        count = sum(p.numel() for p in child.parameters())
        members[name] = ("submodule", f"{cls}, {count:,} parameters",
                         partial(_child_details, name, child, cls, count))
    return members


def _attribute_names(module) -> list[str]:
    # TorchScript keeps no Python-visible list of data attributes; its own
    # structural dump (values elided) names them, top level only.
    try:
        text = module._c.dump_to_str(False, False, False)
    except Exception:  # noqa: BLE001 - a torch without it: methods and submodules still list
        return []
    block = text.split("  attributes {\n", 1)[-1].split("\n  }\n", 1)[0]
    return re.findall(r"^    (\w+) = ", block, re.MULTILINE)


def _attribute_details(name: str, value: object, text: str) -> str:
    return f"{name}  (attribute)\n  type   {type(value).__name__}\n  value  {text}"


def _method_details(module, name: str) -> str:
    code = module._c._get_method(name).code
    lines = [f"{name}  (method)", f"  signature  {_schema(module, name)}", "  TorchScript code:"]
    return "\n".join(lines + ["    " + line for line in code.strip().splitlines()])


def _child_details(name: str, child, cls: str, count: int) -> str:
    subs = ", ".join(n for n, _ in child.named_children()) or "none"
    buffers = sum(b.numel() for b in child.buffers())
    return (f"{name}  (submodule)\n  class       {cls}\n  parameters  {count:,}\n"
            f"  buffers     {buffers:,} values\n  children    {subs}")


def members_listing(members: dict) -> str:
    return format_table(("name", "kind", "type / signature"), [(n, k, s) for n, (k, s, _) in members.items()])


def suggest(query: str, names: list[str]) -> list[str]:
    """Up to three names ``query`` most likely meant, best first.

    A full name that ends with the query on a dot (``encoder.net.0.weight``
    for ``encoder.encoder.net.0.weight``: a wrapper's prefix left out) comes
    first, then names holding it, then close spellings of the whole name.
    Spelling alone would offer ``decoder.net.0.weight``, two letters away but
    another part of the model.
    """
    low = query.lower().strip(".")
    if not low:
        return []
    suffix = sorted((n for n in names if n.lower().endswith("." + low)), key=len)
    inside = sorted((n for n in names if low in n.lower() and n not in suffix), key=len)
    spelled = difflib.get_close_matches(query, names, n=3, cutoff=0.6)
    found: list[str] = []
    for n in suffix + inside + spelled:
        if n not in found:
            found.append(n)
    return found[:3]


def query_loop(names: list[str], answer: Callable[[str], str], stdin: TextIO | None = None,
               stdout: TextIO | None = None, what: str = "entry") -> int:
    """Answer queries until ``q`` or end of input; returns how many were unknown.

    Parameters
    ----------
    names : list of str
        The valid queries.
    answer : callable(str) -> str
        Renders the answer for a valid name.
    stdin, stdout : TextIO or None
        Default to ``sys.stdin`` / ``sys.stdout``; prompts only when
        ``stdin`` is a terminal.  Unknown names are reported on stderr.
    what : str
        What a name names, for the prompt.

    Returns
    -------
    unknown : int
        How many queries named nothing.
    """
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    interactive = stdin.isatty()
    if interactive:
        _enable_completion(names)
        print(f"type an {what} name for details (tab completes), q to quit", file=sys.stderr)
    unknown = 0
    while True:
        if interactive:
            try:
                line = input(f"{what}> ")
            except (EOFError, KeyboardInterrupt):  # Ctrl-D or Ctrl-C: a normal way out
                print(file=sys.stderr)
                break
        else:
            line = stdin.readline()
            if not line:
                break
        query = line.strip()
        if not query:
            continue
        if query.lower() in QUIT:
            break
        if query in names:
            stdout.write(answer(query) + "\n\n")
            stdout.flush()
        else:
            # A message, not an answer: stderr, so a script reading the answers from stdout is not misled.
            unknown += 1
            close = suggest(query, names)
            hint = f"did you mean: {', '.join(close)}?" if close else "type a name from the list above"
            print(f"inspector.py: no {what} named {query!r}; {hint}", file=sys.stderr, flush=True)
    return unknown


def _enable_completion(names: list[str]) -> None:
    try:
        import readline
    except ImportError:  # Windows without pyreadline: plain input still works
        return

    def complete(text: str, state: int):
        hits = [n for n in names if n.startswith(text)]
        return hits[state] if state < len(hits) else None

    readline.set_completer_delims(" \t\n")
    readline.set_completer(complete)
    readline.parse_and_bind("tab: complete")


def checkpoint_members(ckpt: dict) -> dict[str, tuple[str, str, Callable[[], str]]]:
    """A checkpoint's top-level entries (epoch, hyper_parameters, ...) as members."""
    import pprint

    def details(key: object, value: object) -> str:
        return f"{key}  (checkpoint entry)\n" + _clip(pprint.pformat(_shorten(value), width=100, sort_dicts=False))

    members: dict[str, tuple[str, str, Callable[[], str]]] = {}
    for key, value in ckpt.items():
        size = f", {len(value)} items" if isinstance(value, (dict, list, tuple)) else ""
        members[str(key)] = ("entry", f"{type(value).__name__}{size}", partial(details, key, value))
    return members


def _shorten(value):
    """Tensors inside nested checkpoint data, replaced by a one-line description."""
    if isinstance(value, torch.Tensor):
        return f"<tensor {str(value.dtype).replace('torch.', '')} {tuple(value.shape)}>"
    if isinstance(value, dict):
        return {k: _shorten(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_shorten(v) for v in value)
    return value


def _clip(text: str, max_lines: int = 200) -> str:
    lines = text.splitlines()
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"... ({len(lines) - max_lines} more lines)"]
    return "\n".join("  " + line for line in lines)
