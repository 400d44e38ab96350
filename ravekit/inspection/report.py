"""Presenting inspections: text for the terminal, CSV for spreadsheets."""

from __future__ import annotations

from pathlib import Path

from ravekit.inspection.tables import UNKNOWN, fmt_value, format_facts, format_table
from ravekit.io.files import atomic_write
from ravekit.merging.keys import KeyAlignment

COMPONENT_HEADERS = ("component", "class", "parameters", "param MB", "buffers", "buffer MB", "MB")


def _known(value, suffix: str = "") -> str:
    """Facts print as written in the model (44100, not 44,100); ``None`` as unknown."""
    if value is None:
        return UNKNOWN
    return f"{value if isinstance(value, int) and not isinstance(value, bool) else fmt_value(value)}{suffix}"


def _mb(value: float) -> str:
    return f"{value:.3f}"


def _methods_text(methods: dict) -> str:
    if not methods:
        return UNKNOWN
    return ", ".join(f"{name} {fmt_value(p) if p else '(no params)'}" for name, p in methods.items())


def _fidelity_text(s: dict) -> str:
    fid = s.get("fidelity")
    if not fid:
        return UNKNOWN
    levels = "/".join(f"{k}%" for k in fid)
    dims = "/".join(_known(v) for v in fid.values())
    return f"{dims} of {s['fidelity_of_dims']} dims reach {levels} of the variance"


def _latent_size_text(s: dict) -> str:
    text = f"{_known(s.get('latent_size'))} (full {_known(s.get('full_latent_size'))}"
    dims = s.get("decode_dims")
    # Said only where it is not the full size: a spherical model's decode takes its latent_size angles.
    if dims is not None and dims != s.get("full_latent_size"):
        text += f"; decode takes {dims} dims"
    return text + ")"


def _latents_text(s: dict) -> str:
    if s.get("discrete") is None:
        return UNKNOWN
    if not s["discrete"]:
        return "continuous"
    size = s.get("codebook_size")
    if size is None:
        return "discrete: codebook indices (codebook size unknown)"
    return f"discrete: codebook indices 0 to {size - 1} (codebook of {size} per dim)"


def fact_pairs(s: dict) -> list[tuple[str, str]]:
    """The summary's facts as ``(label, text)`` pairs, ``unknown`` where missing."""
    rate = s.get("latent_rate")
    ratio = _known(s.get("ratio"))
    if rate is not None:
        ratio += f" samples per latent frame ({rate:.3f} frames/s)"
    pairs = [
        ("file", f"{s['path']} ({s['size_bytes'] / 1e6:.1f} MB)"),
        ("sha256", s["sha256"][:12]),
        ("format", s["format"]),
        ("class", _known(s.get("original_name"))),
        ("sample rate", _known(s.get("sr"), " Hz")),
        ("channels", f"{_known(s.get('n_channels'))} in, {_known(s.get('target_channels'))} out"),
        ("latent size", _latent_size_text(s)),
        ("latents", _latents_text(s)),
        ("ratio", ratio),
        ("nn~ methods", _methods_text(s.get("methods") or {})),
        ("nn~ attributes", ", ".join(f"{k}={v}" for k, v in s["attributes"].items()) or "none"),
        ("streaming", f"yes ({s['cache_buffers']} cache buffers, {s['cache_mb']:.1f} MB)" if s["streaming"]
                      else "no (no cache buffers)"),
        ("prior", _known(s.get("has_prior"))),
        ("fidelity", _fidelity_text(s)),
        ("state_dict", f"{s['state_dict_entries']} entries: {s['parameter_entries']} parameters, "
                       f"{s['buffer_entries']} buffers"),
    ]
    mp = s.get("msprior")
    if mp:
        text = (f"a prior for a RAVE model of {mp['latent_size']} latent dims at ratio {mp['ratio']} "
                f"({'codes' if mp['discrete'] else 'continuous'}): {_known(mp['num_tokens'])} tokens, "
                f"context {_known(mp['seq_len'])} frames; use it with generator.py --prior")
        pairs.insert(4, ("MSPrior", text))
    ck = s.get("checkpoint")
    if ck:
        # A checkpoint is no nn~ export: no class, methods or attributes to report,
        # and its state_dict does not tell parameters from buffers.
        pairs = [p for p in pairs if p[0] not in ("class", "nn~ methods", "nn~ attributes", "prior", "state_dict",
                                                  "latents")]
        pairs += [("state_dict", f"{s['state_dict_entries']} tensors"), ("epoch", _known(ck["epoch"])),
                  ("global step", _known(ck["global_step"])), ("config.gin", ck["config_gin"] or "none found")]
    return pairs


def render_summary(s: dict) -> str:
    """The full text summary of one model: facts, then the component table."""
    comps = s["components"] + [s["totals"]]
    if s["totals"]["tensors"]:  # a checkpoint: parameters and buffers are not told apart
        table = format_table(("component", "values", "MB"),
                             [(c["component"], c["tensors"], _mb(c["mb"])) for c in comps])
    else:
        table = format_table(COMPONENT_HEADERS, [
            (c["component"], c["class"], c["parameters"], _mb(c["parameter_mb"]), c["buffers"],
             _mb(c["buffer_mb"]), _mb(c["mb"])) for c in comps])
    lines = [f"== {s['file']} ==", format_facts(fact_pairs(s)), "", table]
    lines += [f"note: {n}" for n in s["notes"]]
    return "\n".join(lines) + "\n"


def render_compare(summaries: list[dict], names: list[str], alignment: KeyAlignment, identical: list[str]) -> str:
    """Summaries side by side, then the state_dict keys aligned."""
    per_model = [dict(fact_pairs(s)) for s in summaries]
    fullest_first = sorted(per_model, key=len, reverse=True)  # an export's labels give the order
    labels = [label for label in dict.fromkeys(k for p in fullest_first for k in p)
              if label not in ("file", "epoch", "global step")]
    rows = [[label] + [p.get(label, UNKNOWN) for p in per_model] for label in labels]
    rows.append(["parameters"] + [s["totals"]["parameters"] + s["totals"]["tensors"] for s in summaries])
    out = [format_table(["", *names], rows), ""]
    a = alignment
    out.append(f"state_dict keys: {len(a.same_shape)} in all models with the same shape "
               f"({len(identical)} of them with identical values), {len(a.different_shape)} with different "
               f"shapes, {len(a.only_in_some)} only in some models")
    if a.different_shape:
        out += ["", "different shapes:", format_table(
            ["key", *names], [[k] + ["x".join(map(str, shp[m])) or "scalar" for m in names]
                              for k, shp in a.different_shape.items()], indent="  ")]
    if a.only_in_some:
        out += ["", "only in some models:", format_table(
            ["key", *names], [[k] + ["yes" if m in has else "-" for m in names]
                              for k, has in a.only_in_some.items()], indent="  ")]
    if a.all_match:
        out.append("all keys match: these models can be averaged or swapped entry by entry")
    return "\n".join(out) + "\n"


def summary_record(s: dict) -> dict:
    """One flat row for the summary CSV."""
    rec = {k: s.get(k) for k in ("file", "path", "size_bytes", "sha256", "format", "original_name", "sr",
                                 "n_channels", "target_channels", "latent_size", "full_latent_size", "decode_dims",
                                 "ratio",
                                 "latent_rate", "discrete", "codebook_size", "streaming", "cache_buffers",
                                 "has_prior")}
    for name, params in (s.get("methods") or {}).items():
        rec[f"{name}_params"] = fmt_value(params) if params else None
    for name, value in s["attributes"].items():
        rec[f"attribute_{name}"] = value
    for level, dims in (s.get("fidelity") or {}).items():
        rec[f"dims_for_{level}pct_variance"] = dims
    rec.update(state_dict_entries=s["state_dict_entries"], parameter_entries=s["parameter_entries"],
               buffer_entries=s["buffer_entries"])
    for key in ("parameters", "buffers", "tensors", "mb"):
        rec[f"total_{key}"] = s["totals"][key]
    rec["notes"] = "; ".join(s["notes"])
    return rec


def write_csv(path: Path, records: list[dict]) -> Path:
    """Write ``records`` as a CSV (pandas), atomically."""
    import pandas as pd

    frame = pd.DataFrame.from_records(records)
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def save_model_csvs(s: dict, rows: list[dict], out_dir: Path, rel: Path) -> list[Path]:
    """``<rel>.summary.csv``, ``<rel>.components.csv`` and ``<rel>.state_dict.csv`` under ``out_dir``."""
    base = out_dir / rel.with_suffix("")
    return [
        write_csv(base.with_name(base.name + ".summary.csv"), [summary_record(s)]),
        write_csv(base.with_name(base.name + ".components.csv"), s["components"] + [s["totals"]]),
        write_csv(base.with_name(base.name + ".state_dict.csv"), rows),
    ]


def alignment_records(alignment: KeyAlignment, shapes: dict[str, dict[str, str]]) -> list[dict]:
    """One CSV row per key: status (same_shape/different_shape/only_in_some) and its shape in each model."""
    status = {k: "same_shape" for k in alignment.same_shape}
    status.update({k: "different_shape" for k in alignment.different_shape})
    status.update({k: "only_in_some" for k in alignment.only_in_some})
    return [{"key": k, "status": st, **{m: shapes[m].get(k, "") for m in alignment.models}}
            for k, st in status.items()]
