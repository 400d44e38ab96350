"""What is inside a model: facts, components, fidelity, every state_dict entry.

Everything here tolerates models it does not fully understand (older RAVE
exports, forks, other nn~ models): a fact that cannot be read is ``None``
(printed as *unknown*) and the reason goes to ``notes``; only a file that is
not a model at all is an error.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ravekit.engine.model import (
    STREAMING_BUFFER_SUFFIXES,
    get_attr,
    load_module,
    read_info,
    sha256_of,
)
from ravekit.generate.prior import prior_facts
from ravekit.inspection import checkpoint as ckpt_mod

FIDELITY_LEVELS = (80, 90, 95, 99)
MB = 1e6  # megabytes as RAVE's and Lightning's own summaries count them


@dataclass
class Inspected:
    """A model or checkpoint opened for inspection.

    ``kinds`` maps each state_dict key to ``parameter``, ``buffer``, or
    ``tensor`` (checkpoints do not say which is which).
    """

    path: Path
    format: str  # "torchscript" or "checkpoint"
    state_dict: dict[str, torch.Tensor]
    kinds: dict[str, str]
    module: torch.jit.ScriptModule | None = None
    checkpoint: dict | None = None
    notes: list[str] = field(default_factory=list)


def open_model(path: os.PathLike | str) -> Inspected:
    """Open a TorchScript export (``load_module``) or a checkpoint (weights only)."""
    p = Path(path)
    if p.suffix.lower() in ckpt_mod.CHECKPOINT_SUFFIXES:
        ckpt = ckpt_mod.load_checkpoint(p)
        sd = ckpt_mod.checkpoint_state_dict(ckpt)
        return Inspected(p, "checkpoint", sd, {k: "tensor" for k in sd}, checkpoint=ckpt)
    module = load_module(p)
    sd = dict(module.state_dict())
    params = {name for name, _ in module.named_parameters()}
    kinds = {k: "parameter" if k in params else "buffer" for k in sd}
    return Inspected(p, "torchscript", sd, kinds, module=module)


def _tensor_value(value):
    """Plain Python for small tensors and containers, so facts are JSON-able."""
    if isinstance(value, torch.Tensor):
        return value.tolist() if value.numel() <= 16 else f"tensor{tuple(value.shape)}"
    if isinstance(value, (list, tuple)):
        items = [_tensor_value(v) for v in value]
        return items[0] if len(items) == 1 and isinstance(value, tuple) else items
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return str(value)


def nn_methods(module) -> dict[str, list[int] | None]:
    """nn~ methods and their ``[in_channels, in_ratio, out_channels, out_ratio]`` (``None`` if absent)."""
    try:
        names = list(module.get_methods())
    except Exception:  # noqa: BLE001 - not an nn~ model
        names = [m for m in ("encode", "decode", "forward") if module._c._has_method(m)]
    out = {}
    for name in names:
        params = get_attr(module, f"{name}_params")
        ok = isinstance(params, torch.Tensor) and params.numel() == 4
        out[name] = [int(v) for v in params.tolist()] if ok else None
    return out


def nn_attributes(module) -> dict[str, object]:
    """nn~ attributes (``get_attributes()``) and their current values via ``get_<name>()``."""
    try:
        names = list(module.get_attributes())
    except Exception:  # noqa: BLE001
        return {}
    out = {}
    for name in names:
        try:
            if module._c._has_method(f"get_{name}"):
                out[name] = _tensor_value(getattr(module, f"get_{name}")())
            else:  # some models list plain attributes rather than nn~ getters
                out[name] = _tensor_value(module._c.getattr(name))
        except Exception:  # noqa: BLE001 - a getter that needs arguments or fails
            out[name] = None
    return out


def fidelity_dims(fidelity, levels=FIDELITY_LEVELS) -> dict[str, int | None] | None:
    """How many latent dims reach each level (%) of explained variance.

    Parameters
    ----------
    fidelity : torch.Tensor [shape=(latent_dims,)] or None
        Cumulative explained variance per latent dim (RAVE's ``fidelity``
        buffer, rising to 1.0).
    levels : sequence of int
        Percentages of variance.

    Returns
    -------
    dims : dict or None
        ``{"80": latent dims needed, ...}`` (``None`` for a level never
        reached), or ``None`` when the buffer is missing or not a cumulative curve.
    """
    if not isinstance(fidelity, torch.Tensor) or fidelity.dim() != 1 or fidelity.numel() == 0:
        return None
    f = fidelity.detach().double().cpu()
    # A cumulative curve rises to 1.0; discrete exports, which fit no PCA, keep zeros.
    if not torch.isfinite(f).all() or (f.diff() < -1e-6).any() or abs(float(f[-1]) - 1.0) > 1e-3:
        return None
    out = {}
    for level in levels:
        reached = torch.nonzero(f >= level / 100 - 1e-9)
        out[str(level)] = int(reached[0, 0]) + 1 if len(reached) else None
    return out


def state_dict_rows(state_dict: dict[str, torch.Tensor], kinds: dict[str, str]) -> list[dict]:
    """One row per entry: name, kind, dtype, shape, numel, bytes, mean, std, min, max.

    Statistics are computed in float64; they are ``None`` for empty tensors and
    non-numeric dtypes, and ``std`` is ``None`` for single values.
    """
    rows = []
    for name, t in state_dict.items():
        row = {"name": name, "kind": kinds.get(name, "tensor"), "dtype": str(t.dtype).replace("torch.", ""),
               "shape": "x".join(str(s) for s in t.shape) or "scalar", "numel": int(t.numel()),
               "bytes": int(t.numel() * t.element_size()), "mean": None, "std": None, "min": None, "max": None}
        if t.numel() and not t.is_complex():
            v = t.detach().cpu().double()
            row.update(mean=float(v.mean()), min=float(v.min()), max=float(v.max()))
            row["std"] = float(v.std()) if t.numel() > 1 else None
        rows.append(row)
    return rows


def component_of(name: str) -> str:
    return name.split(".", 1)[0] if "." in name else "(root)"


def component_table(ins: Inspected, rows: list[dict]) -> tuple[list[dict], dict]:
    """Per top-level component: parameter and buffer counts (values) and megabytes.

    Returns
    -------
    (components, totals)
        ``components``: one dict per top-level child (in the module's order,
        empty ones included), then ``(root)`` for entries directly on the model.
        Keys: component, class, parameters, parameter_mb, buffers, buffer_mb,
        tensors (values of unknown kind, checkpoints only), mb.
        ``totals`` has the same keys, summed.
    """
    table: dict[str, dict] = {}

    def entry(name: str, cls: str = "") -> dict:
        return table.setdefault(name, {"component": name, "class": cls, "parameters": 0, "parameter_mb": 0.0,
                                       "buffers": 0, "buffer_mb": 0.0, "tensors": 0, "mb": 0.0})

    if ins.module is not None:
        for child_name, child in ins.module.named_children():
            entry(child_name, str(get_attr(child, "original_name") or ""))
    for row in rows:
        e = entry(component_of(row["name"]))
        kind = {"parameter": "parameters", "buffer": "buffers"}.get(row["kind"], "tensors")
        e[kind] += row["numel"]
        if kind != "tensors":
            e[kind[:-1] + "_mb"] += row["bytes"] / MB
        e["mb"] += row["bytes"] / MB
    if "(root)" in table:  # keep the root row last, after the children
        table["(root)"] = table.pop("(root)")
    components = list(table.values())
    for c in components:  # megabytes to the byte, without float noise in JSON and CSV
        for key in ("parameter_mb", "buffer_mb", "mb"):
            c[key] = round(c[key], 6)
    totals = {"component": "total", "class": ""}
    for key in ("parameters", "parameter_mb", "buffers", "buffer_mb", "tensors", "mb"):
        totals[key] = round(sum(c[key] for c in components), 6)
    return components, totals


def _module_facts(ins: Inspected) -> dict:
    m = ins.module
    facts = read_info(m, str(ins.path), strict=False, notes=ins.notes)

    msprior = prior_facts(m, ins.path)
    if msprior is not None:  # an MSPrior export: no encode/decode by design, its facts are its own
        ins.notes[:] = [n for n in ins.notes if "no encode() method" not in n and "no decode() method" not in n]
        facts.update(latent_size=msprior.latent_size, ratio=msprior.ratio, discrete=msprior.discrete)
        facts["msprior"] = msprior.to_dict()
    methods = nn_methods(m)
    facts["has_prior"] = "prior" in methods
    facts["methods"] = methods
    facts["attributes"] = nn_attributes(m)
    return facts


def summarize(ins: Inspected, rows: list[dict] | None = None) -> dict:
    """The summary of one model as plain JSON-able data (``None`` = unknown).

    Keys: path, file, size_bytes, sha256, format, original_name, sr, n_channels,
    target_channels, latent_size, full_latent_size, decode_dims (the latent dims
    decode takes), ratio, latent_rate, discrete,
    codebook_size (``None`` for continuous models), methods
    (``name -> [in_ch, in_ratio, out_ch, out_ratio]``), attributes, streaming,
    cache_buffers, cache_mb, has_prior, fidelity (``{"80": dims, ...}``),
    fidelity_of_dims, state_dict_entries, parameter_entries, buffer_entries,
    components, totals, checkpoint (epoch, step, ...; checkpoints only), notes.
    """
    rows = rows if rows is not None else state_dict_rows(ins.state_dict, ins.kinds)
    summary = {"path": str(ins.path), "file": ins.path.name, "size_bytes": ins.path.stat().st_size,
               "sha256": sha256_of(ins.path), "format": ins.format}
    if ins.module is not None:
        facts = _module_facts(ins)
        if "msprior" in facts:  # prior_facts leaves the checksum to its caller: the file's, read once above
            facts["msprior"]["sha256"] = summary["sha256"]
        summary.update(facts)
    else:
        facts = ckpt_mod.checkpoint_facts(ins.path, ins.checkpoint or {})
        summary.update(original_name=None, sr=facts["sr"], n_channels=None, target_channels=None,
                       latent_size=facts["latent_size"], full_latent_size=None, decode_dims=None, ratio=None,
                       latent_rate=None,
                       discrete=None, codebook_size=None,
                       has_prior=None, methods={}, attributes={}, checkpoint=facts)
    caches = [k for k, kind in ins.kinds.items() if kind != "parameter" and k.endswith(STREAMING_BUFFER_SUFFIXES)]
    summary["streaming"] = bool(caches)
    summary["cache_buffers"] = len(caches)
    summary["cache_mb"] = sum(ins.state_dict[k].numel() * ins.state_dict[k].element_size() for k in caches) / MB
    fid = ins.state_dict.get("fidelity")
    summary["fidelity"] = fidelity_dims(fid)
    summary["fidelity_of_dims"] = int(fid.numel()) if summary["fidelity"] and fid is not None else None
    if isinstance(fid, torch.Tensor) and summary["fidelity"] is None:
        if summary.get("original_name") == "DiscreteScriptedRAVE" and not fid.any():
            ins.notes.append("discrete model: its latents are codebook indices, with no PCA, so no fidelity levels")
        elif summary.get("original_name") == "SphericalScriptedRAVE" and not fid.any():
            ins.notes.append("spherical model: its latents are angles on a sphere, with no PCA, so no fidelity levels")
        else:
            ins.notes.append("the fidelity buffer is not a cumulative variance curve; fidelity unknown")
    summary["state_dict_entries"] = len(rows)
    summary["parameter_entries"] = sum(r["kind"] == "parameter" for r in rows)
    summary["buffer_entries"] = sum(r["kind"] == "buffer" for r in rows)
    summary["components"], summary["totals"] = component_table(ins, rows)
    summary["notes"] = list(dict.fromkeys(ins.notes))
    return _finite(summary)


def _finite(value):
    """Replace NaN/inf by ``None`` so the summary is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
