"""Merging the weights of two or more RAVE models of one architecture.

The merged model is a copy of the first model (A) whose state_dict entries
are overwritten, in place, by a weighted combination of every model's entry
wherever that is meaningful; everything else keeps A's value.  Saving the
edited ScriptModule with ``torch.jit.save`` keeps every method, attribute and
nn~ buffer of A, so the result plays in Max and Pure Data like A does.

Which entries are merged, and why the others are not, is decided by
:func:`ravekit.merging.entries.plan_merge`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ravekit.choices import MERGE_METHODS
from ravekit.engine.model import ModelInfo, load_module, quiet_jit, read_info
from ravekit.errors import RavekitError
from ravekit.io.files import atomic_write
from ravekit.merging.align import align_models
from ravekit.merging.align_activations import align_by_activations
from ravekit.merging.entries import EntryPlan, model_labels, plan_merge, relative_distance
from ravekit.merging.latent import recompute_latent_space
from ravekit.merging.math import linear_merge, slerp_merge
from ravekit.merging.repair import repair
from ravekit.merging.repair_plan import align_latent_dims, aligned_copy, calibration_audio, repair_targets

METHODS = MERGE_METHODS


def normalise_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    """One non-negative weight per model, scaled to sum to 1 (default: equal)."""
    if weights is None:
        return [1.0 / n] * n
    if len(weights) != n:
        raise RavekitError(f"--weights: {len(weights)} weights for {n} models; give exactly one per model", 2)
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise RavekitError("--weights: weights must be finite and not negative, e.g. --weights 0.7 0.3", 2)
    total = math.fsum(weights)
    if total <= 0:
        raise RavekitError("--weights: at least one weight must be above 0", 2)
    return [w / total for w in weights]


def check_compatible(infos: Sequence[ModelInfo], force: bool = False) -> list[str]:
    """Refuse models that do not share A's sample rate, ratio and latent size.

    Returns the warnings to print (with ``force``, what will break; channel
    differences, which only make some entries unmergeable).
    """
    a, labels, problems, notes = infos[0], model_labels(len(infos)), [], []
    consequence = {
        "sr": "the merged model runs at A's rate, so layers taken from {x} hear audio at a rate "
              "they were not trained on (expect pitch and timbre shifts)",
        "ratio": "the merged model keeps A's ratio; {x}'s layers were trained on another time scale "
                 "and its up/downsampling layers differ in shape (kept from A)",
        "latent_size": "the merged model keeps A's latent dims; {x}'s latent dims mean something "
                       "else, so latents encoded by {x} will not decode as they did",
    }
    for label, other in zip(labels[1:], infos[1:]):
        for attr in ("sr", "ratio", "latent_size"):
            if getattr(other, attr) != getattr(a, attr):
                problems.append((f"{attr} differs: A {getattr(a, attr)}, {label} {getattr(other, attr)} "
                                 f"({other.path})", consequence[attr].format(x=label)))
        if (other.n_channels, other.target_channels) != (a.n_channels, a.target_channels):
            notes.append(f"{label} ({other.path}) has {other.n_channels}->{other.target_channels} channels, "
                         f"A has {a.n_channels}->{a.target_channels}: layers whose shape depends on it stay A's")
    if problems and not force:
        what = "; ".join(p for p, _ in problems)
        raise RavekitError(f"{infos[0].path}: models are not compatible ({what}); merge models of one "
                           "architecture, or pass --force to merge what matches anyway")
    return [f"{p}: {c}" for p, c in problems] + notes


# Entries of a discrete model's quantiser: RAVE's ``encoder.rvq.layers.N._codebook.*`` (embed, embed_avg,
# cluster_size, inited), and any ``quantizer``/``codebook`` entry of other exports.
_QUANTISER = ("_codebook.", "codebook", "quantizer", "quantiser", ".rvq.")


def quantiser_entries(state_dict: dict) -> list[str]:
    """The names of ``state_dict``'s codebook and quantiser entries, in its order."""
    return [k for k in state_dict if any(m in k for m in _QUANTISER)]


def check_codebooks(paths: Sequence[Path], infos: Sequence[ModelInfo], state_dicts: Sequence[dict]) -> None:
    """Refuse to merge discrete models whose codebooks (or quantisers) are not the very same tensors.

    A discrete model's codes are indices into its own codebook: an averaged
    codebook is no one's, so every code the merged model makes or decodes
    would mean something else.  Refused whatever ``--force`` or ``--scope``
    say (a decoder trained on B's codebook does not decode A's either).
    """
    a = state_dicts[0]
    names = list(dict.fromkeys(n for sd in state_dicts for n in quantiser_entries(sd)))
    if not names and not any(i.discrete for i in infos):
        return
    for path, info, sd in zip(paths[1:], infos[1:], state_dicts[1:]):
        problem = None
        if info.discrete != infos[0].discrete:
            problem = (f"{'only ' + str(paths[0]) if infos[0].discrete else 'only ' + str(path)} is a discrete "
                       "model (codes of a codebook)")
        elif infos[0].codebook_size != info.codebook_size:
            problem = f"codebooks of {infos[0].codebook_size} and {info.codebook_size} codes"
        for name in names:
            if problem:
                break
            if name not in a or name not in sd:
                problem = f"{name} is in only one of them"
            elif tuple(a[name].shape) != tuple(sd[name].shape):
                problem = f"{name} has shape {tuple(a[name].shape)} and {tuple(sd[name].shape)}"
            elif not torch.equal(a[name], sd[name]):
                problem = f"{name} differs ({relative_distance(a[name], sd[name]):.3g} relative)"
        if problem:
            raise RavekitError(
                f"{paths[0]} and {path}: their codebooks differ ({problem}); a discrete model's codes index its "
                "own codebook, so a merge of the two would make and decode codes that mean nothing: merge only "
                "discrete models that share one codebook")


def apply_merge(module: torch.jit.ScriptModule, state_dicts: Sequence[dict], plans: list[EntryPlan],
                weights: Sequence[float], method: str = "linear") -> None:
    """Overwrite A's live tensors (``module`` is A, loaded) with merged values, in place.

    Sets each plan's ``changed`` to the number of A's values that now differ
    from before (0 for an entry whose models agree, or with weights ``1 0``).
    """
    if method not in METHODS:
        raise RavekitError(f"--method {method}: choose one of {', '.join(METHODS)}", 2)
    live = module.state_dict()
    with torch.no_grad():
        for plan in plans:
            if not plan.merged:
                continue
            tensors = [sd[plan.name] for sd in state_dicts]
            if method == "linear":
                value = linear_merge(tensors, weights)
            else:
                value, fell_back = slerp_merge(tensors, weights)
                if fell_back:
                    plan.reason = "merged (slerp; nearly parallel, so linear)"
            plan.changed = changed_values(tensors[0], value)
            live[plan.name].copy_(value)


def changed_values(before: torch.Tensor, after: torch.Tensor) -> int:
    """How many elements of ``after`` differ from ``before`` (NaN where both are NaN counts as equal)."""
    differ = before != after
    if before.is_floating_point():
        differ &= ~(before.isnan() & after.isnan())
    return int(differ.sum())


def differing_entries(state_dicts: Sequence[dict], plans: list[EntryPlan]) -> list[EntryPlan]:
    """The merged entries whose value is not the same in every model: the ones a merge can change."""
    return [p for p in plans if p.merged and any(
        changed_values(state_dicts[0][p.name], sd[p.name]) for sd in state_dicts[1:])]


def nothing_differs(path: Path, plans: list[EntryPlan]) -> str:
    """Why a merge whose mergeable entries are all identical would be a copy of A."""
    merged = [p for p in plans if p.merged]
    shape = sum(p.reason == "shapes differ" for p in plans)
    missing = sum(p.reason.startswith("missing from") for p in plans)
    what = (f"the {len(merged)} entries that could be merged ({', '.join(p.name for p in merged[:3])}"
            f"{', ...' if len(merged) > 3 else ''}) are identical in every model")
    if shape or missing:
        apart = [f"{shape} differ in shape"] * bool(shape) + [f"{missing} are missing from a model"] * bool(missing)
        what += (f", and of the entries that tell them apart {' and '.join(apart)}: models of other "
                 "architectures (v1 vs v2, another capacity or ratio?), inspector.py --compare shows them")
    else:
        what += " (the same model twice?)"
    return (f"{path}: nothing to merge: {what}; the result would be a copy of A, so nothing was written. "
            "Merge models of one architecture trained apart")


def save_module(module: torch.jit.ScriptModule, path: Path) -> Path:
    """``torch.jit.save`` atomically, after checking that the written file loads back.

    The model is serialised in memory and written by Python: torch's own file
    writer aborts the whole process when the disk fills up, Python's raises
    an ``OSError`` that ``atomic_write`` reports as a write error.
    """
    import io

    buffer = io.BytesIO()
    with quiet_jit():
        torch.jit.save(module, buffer)

    def write(tmp: Path) -> None:
        tmp.write_bytes(buffer.getbuffer())
        with quiet_jit():
            check = torch.jit.load(str(tmp), map_location="cpu")
        if hasattr(module, "get_methods"):
            check.get_methods()

    return atomic_write(path, write)


@dataclass
class MergeResult:
    module: torch.jit.ScriptModule
    infos: list
    plans: list
    weights: list
    warnings: list
    alignment: list | None = None  # with align: per model after A, its ``align.GroupAlignment`` list
    repair: list | None = None     # with repair_audio: ``repair.LayerRepair`` per corrected layer
    fidelity: float | None = None  # with repair_audio: the recomputed fidelity of the exported latent dims
    latent: list | None = None     # with align and audio: (latent dims moved, sign-flipped) per model after A


def merge_models(paths: Sequence[Path], weights: Sequence[float] | None = None, method: str = "linear",
                 scope: str = "all", include: Sequence[str] | None = None,
                 exclude: Sequence[str] | None = None, force: bool = False, align: bool | str = False,
                 align_seed: int = 0, repair_audio: Sequence[Path] | None = None) -> MergeResult:
    """Load the models (on the CPU, so the result plays anywhere), check, plan and merge.

    Returns the edited copy of A (not saved yet) with the per-entry plan.
    ``align``: permute every model after A into A's channel order first
    (True or "weights": ``align.align_models``; "activations":
    ``align_activations.align_by_activations`` on ``repair_audio``; refused
    for an architecture it does not cover).
    ``repair_audio``: renormalise the merge on these files afterwards (``repair.repair``,
    then ``latent.recompute_latent_space`` between encoder and decoder).
    Raises ``RavekitError`` when nothing can be merged, or when every entry
    that can be merged is identical in all models (the result would be A;
    ``force`` does not change that: there is nothing to overwrite A with).
    """
    if len(paths) < 2:
        raise RavekitError("--models: give at least two models to merge", 2)
    if repair_audio and (scope != "all" or include or exclude):
        # It rescales every top-level convolution and recomputes the latent PCA: it cannot keep to a selection.
        raise RavekitError("--repair renormalises the whole merged network (its convolutions and the latent PCA), "
                           "so it cannot keep to --scope, --include or --exclude; leave those out, or leave out "
                           "--repair", 2)
    w = normalise_weights(weights, len(paths))
    modules = [load_module(p, "cpu") for p in paths]
    infos = [read_info(m, str(p)) for m, p in zip(modules, paths)]
    notes = check_compatible(infos, force)
    state_dicts = [m.state_dict() for m in modules]
    check_codebooks(list(paths), infos, state_dicts)
    alignment = calibration = None
    if repair_audio or align == "activations":
        calibration = calibration_audio(modules, paths, infos[0], repair_audio, align)
    if align == "activations":
        assert calibration is not None  # calibration_audio refuses activations without audio
        state_dicts, alignment = align_by_activations(modules, list(paths), calibration, align_seed)
    elif align:
        state_dicts, alignment = align_models(modules, list(paths), align_seed)
    latent = None
    if align and calibration is not None:
        latent = align_latent_dims(modules, paths, state_dicts, calibration)
    params = {n for m in modules for n, _ in m.named_parameters()}
    plans = plan_merge(state_dicts, params, scope, include, exclude, method)
    if not any(p.merged for p in plans):
        reasons = sorted({p.reason for p in plans})
        raise RavekitError(f"{paths[0]}: nothing to merge: none of the {len(plans)} entries can be merged "
                           f"({'; '.join(reasons)}); nothing was written. Check that the models share an "
                           "architecture and that --scope/--include/--exclude select something")
    if not differing_entries(state_dicts, plans):
        if align:
            raise RavekitError(f"{paths[0]}: nothing to merge: once their channels are aligned (--align, which "
                               "--repair also does), every other model is A with its channels reordered (the same "
                               "network), so the result would be a copy of A and "
                               "nothing was written. Merge models trained apart")
        raise RavekitError(nothing_differs(paths[0], plans))
    if w[0] < max(w) and any(p.merged and p.name.startswith("encoder.") for p in plans):
        # encode() keeps the first latent_size dims of A's PCA rotation; an encoder
        # dominated by another model puts its important dims elsewhere.
        notes.append("the latent PCA buffers (latent_pca, latent_mean, fidelity) stay A's while the encoder "
                     "is mostly another model's, so latents may lose detail; put the model whose latent "
                     "space you want first, or use --scope decoder")
    targets = None
    if repair_audio:
        assert calibration is not None  # loaded above whenever there is repair_audio
        parents = modules if not align else [modules[0], *[aligned_copy(m, sd) for m, sd in
                                                         zip(modules[1:], state_dicts[1:])]]
        targets = repair_targets(parents, paths, calibration, align_seed)
    # Only A's live tensors are edited: the other state dicts are read, never written.
    apply_merge(modules[0], state_dicts, plans, w, method)
    result = MergeResult(modules[0], infos, plans, w, notes, alignment, latent=latent)
    if targets is not None and w[0] == 1.0:
        # The merge is A bit for bit: repairing would only re-measure A's PCA on other audio.
        notes.append("--repair: weights 1 0 give A whole, so there is nothing to repair")
        result.repair = []
    elif targets is not None:
        fidelity: list[float] = []
        assert calibration is not None  # loaded with the targets
        result.repair = repair(modules[0], targets, w, calibration, align_seed,
                               between=lambda m: fidelity.append(recompute_latent_space(m, calibration)))
        result.fidelity = fidelity[0]
        for plan in plans:
            if plan.name in ("latent_mean", "latent_pca", "fidelity"):
                plan.reason = "recomputed by --repair from the merged encoder on the calibration audio"
    return result
