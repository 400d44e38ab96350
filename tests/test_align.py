"""averager.py --align: derived permutation groups, the proof that they are right, weight matching.

The groups are right when a model permuted along every group plays exactly
like the original (encode with a seed, decode of every dim decode takes,
forward); the same check must catch a group with one tensor left out.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import averager
from conftest import REAL_MODELS, real_models
from ravekit.engine.model import read_info
from ravekit.merging.align import align_to
from ravekit.merging.align_groups import UnsupportedArchitecture, derive_groups, permute_state

V2 = [p for p in REAL_MODELS if p.stem.startswith("v2cap16_mono_44k_seed")
      and not p.stem.endswith("streaming")]
needs_v2 = pytest.mark.skipif(len(V2) < 2, reason="RAVE_TEST_MODELS with two mono v2 exports not set")


def jit_load(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(path), map_location="cpu")


def jit_save(m, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(m, str(path))
    return path


def reset_state(m) -> None:
    """Zero streaming caches (equals reloading the model; docs/rave-exports.md)."""
    with torch.no_grad():
        for name, t in m.state_dict().items():
            if name.endswith((".pad", ".cache")):
                t.zero_()


@torch.no_grad()
def outputs(m) -> list[torch.Tensor]:
    """encode (seeded), decode of every dim decode takes (deterministic) and forward (seeded)."""
    x = torch.randn(1, int(m.n_channels), 8192, generator=torch.Generator().manual_seed(0))
    z = torch.randn(1, read_info(m).decode_dims, 4, generator=torch.Generator().manual_seed(1))
    reset_state(m)
    torch.manual_seed(2)
    e = m.encode(x)
    reset_state(m)
    d = m.decode(z)
    reset_state(m)
    torch.manual_seed(3)
    f = m.forward(x)
    return [e, d, f]


def random_perms(groups, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randperm(g.size, generator=gen) for g in groups]


def apply(m, new: dict) -> None:
    live = m.state_dict()
    with torch.no_grad():
        for name, value in new.items():
            live[name].copy_(value)


@real_models
def test_permuted_export_plays_exactly_like_the_original(real_model):
    m = jit_load(real_model)
    groups = derive_groups(m)
    assert len(groups) >= 20  # every kind (v1, v2, v3) has its residual streams and inner units
    before = outputs(m)
    apply(m, permute_state(m.state_dict(), groups, random_perms(groups, 5)))
    after = outputs(m)
    for name, a, b in zip(("encode", "decode", "forward"), before, after):
        assert a.shape == b.shape
        assert float((a - b).abs().max()) <= 1e-5, name
    # It is a real permutation, not the identity: the weights did change.
    sd = jit_load(real_model).state_dict()
    name = groups[0].members[0][0]
    assert not torch.equal(sd[name], m.state_dict()[name])


@needs_v2
def test_groups_never_touch_latent_pqmf_or_output_channels():
    m = jit_load(V2[0])
    sd = m.state_dict()
    members = {nd for g in derive_groups(m) for nd in g.members}
    names = {n for n, _ in members}
    assert not any(n.startswith(("pqmf.", "latent_", "fidelity", "fake_adain")) for n in names)
    convs = [n for n in sd if n.startswith("encoder.") and n.endswith(".weight")]
    dec = [n for n in sd if n.startswith("decoder.") and n.endswith(".weight")]
    assert (convs[0], 1) not in members      # PQMF bands in
    assert (convs[-1], 0) not in members     # latent mean/scale out
    assert (dec[0], 1) not in members        # latent dims in
    assert (dec[-1], 0) not in members       # output bands and amplitude
    for g in derive_groups(m):
        assert {sd[n].shape[d] for n, d in g.members} == {g.size}


@needs_v2
def test_a_group_missing_one_tensor_is_caught():
    """Leaving any one tensor out of any one group changes the decoded audio."""
    m = jit_load(V2[0])
    groups = derive_groups(m)
    original = {k: v.detach().clone() for k, v in m.state_dict().items()}
    z = torch.randn(1, int(m.full_latent_size), 2, generator=torch.Generator().manual_seed(1))
    x = torch.randn(1, 1, 4096, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref_d = m.decode(z)
        torch.manual_seed(2)
        ref_e = m.encode(x)
    for gi, g in enumerate(groups):
        broken = list(groups)
        broken[gi] = type(g)(g.name, g.size, g.members[:-1])  # the group's last tensor left unpermuted
        perms = random_perms(groups, 11)
        apply(m, permute_state(original, broken, perms))
        with torch.no_grad():
            if g.members[0][0].startswith("decoder."):
                diff = float((m.decode(z) - ref_d).abs().max())
            else:
                torch.manual_seed(2)
                diff = float((m.encode(x) - ref_e).abs().max())
        apply(m, original)
        assert diff > 1e-4, f"group {g.name} without {g.members[-1]} still plays the same"


def test_models_it_does_not_cover_are_refused(fixture_models, tmp_path, capsys):
    for name in ("demo", "rave_named"):
        with pytest.raises(UnsupportedArchitecture, match="RAVE v1, v2 and v3 exports"):
            derive_groups(jit_load(fixture_models[name]))
    out = tmp_path / "m.ts"
    code = averager.main(["--models", str(fixture_models["demo"]), str(fixture_models["demo_b"]), "--align",
                          "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "without --align" in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def groups_names(groups) -> set:
    return {n for g in groups for n, _ in g.members}


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    return float((a @ b) / (a.norm() * b.norm()))


@needs_v2
def test_alignment_recovers_a_hidden_permutation(tmp_path, capsys):
    a_path = V2[0]
    m = jit_load(a_path)
    groups = derive_groups(m)
    hidden = random_perms(groups, 21)
    state_a = {k: v.detach().clone() for k, v in m.state_dict().items()}
    apply(m, permute_state(state_a, groups, hidden))
    same_path = jit_save(m, tmp_path / "a_permuted.ts")
    # A permuted is A: aligned, there is nothing left to merge, and the refusal says why.
    assert averager.main(["--models", str(a_path), str(same_path), "--align", "-o", str(tmp_path / "x.ts")]) == 1
    assert "A with its channels reordered" in capsys.readouterr().err
    assert not (tmp_path / "x.ts").exists()
    # A tiny difference (1e-3 of each tensor's spread) makes it a merge.
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for name, t in m.state_dict().items():
            if t.is_floating_point() and t.numel() > 1 and name in groups_names(groups):
                t.add_(1e-3 * t.std() * torch.randn(t.shape, generator=gen))
    b_path = jit_save(m, tmp_path / "a_permuted_noisy.ts")

    aligned = tmp_path / "aligned" / "merged.ts"
    plain = tmp_path / "plain" / "merged.ts"
    assert averager.main(["--models", str(a_path), str(b_path), "--align", "-o", str(aligned)]) == 0
    assert averager.main(["--models", str(a_path), str(b_path), "-o", str(plain)]) == 0
    err = capsys.readouterr().err
    assert "aligned B to A: 32 permutation groups" in err

    ref = outputs(jit_load(a_path))[1:]
    got = outputs(jit_load(aligned))[1:]
    mixed = outputs(jit_load(plain))[1:]
    for r, g, x in zip(ref, got, mixed):
        assert correlation(r, g) >= 0.999
        assert correlation(r, x) < 0.9
    recipe = json.loads(aligned.with_suffix(".json").read_text())
    assert recipe["alignment"]["used"] is True
    rows = recipe["alignment"]["groups"]
    assert len(rows) == len(groups) and all(r["cos_after"] > 0.999999 for r in rows)
    assert all(r["cos_before"] < 0.5 for r in rows)
    assert (aligned.parent / "merged.align.csv").exists()
    assert json.loads(plain.with_suffix(".json").read_text())["alignment"] == {"used": False}


@needs_v2
def test_alignment_finds_the_permutation_through_noise():
    m = jit_load(V2[0])
    groups = derive_groups(m)
    state_a = {k: v.detach().clone() for k, v in m.state_dict().items()}
    gen = torch.Generator().manual_seed(3)
    noisy = {k: (v + 0.05 * v.std() * torch.randn(v.shape, generator=gen)
                 if v.is_floating_point() and v.numel() > 1 else v) for k, v in state_a.items()}
    hidden = random_perms(groups, 8)
    state_b = dict(noisy)
    state_b.update(permute_state(noisy, groups, hidden))
    _, found, stats = align_to(state_a, state_b, groups, seed=0)
    for h, f in zip(hidden, found):
        assert torch.equal(h[f], torch.arange(len(h)))  # found undoes hidden
    again = align_to(state_a, state_b, groups, seed=0)[1]
    assert all(torch.equal(x, y) for x, y in zip(found, again))
    assert all(s.cos_after > s.cos_before for s in stats)


@needs_v2
def test_independent_models_align_and_still_merge(tmp_path):
    """Two exports of different seeds: every group's similarity rises, the merge plays."""
    out = tmp_path / "m.ts"
    assert averager.main(["--models", str(V2[0]), str(V2[1]), "--align", "-o", str(out)]) == 0
    rows = json.loads(out.with_suffix(".json").read_text())["alignment"]["groups"]
    assert all(r["cos_after"] >= r["cos_before"] for r in rows)
    assert np.mean([r["cos_after"] for r in rows]) > np.mean([r["cos_before"] for r in rows]) + 0.05
    y = outputs(jit_load(out))[1]
    assert torch.isfinite(y).all() and float(y.abs().max()) > 0


V3 = [p for p in REAL_MODELS if p.stem.startswith("v3")]


@pytest.mark.skipif(not V3, reason="no v3 export in RAVE_TEST_MODELS / more-kinds")
@pytest.mark.parametrize("leave_out", [None, "alpha", "convolution"])
def test_v3_streams_carry_snake_alpha_and_a_group_missing_a_member_is_caught(leave_out):
    """v3's residual streams carry Snake's per-channel alpha.  The export is untrained (every alpha
    is 1, so permuting them changes nothing), so the alphas are first made to differ; then the
    model permuted along every group plays the same, and permuting a stream without its alpha (or
    without one of its convolutions) changes the decoded audio."""
    m = jit_load(V3[0])
    gen = torch.Generator().manual_seed(11)
    apply(m, {n: 0.5 + torch.rand(t.shape, generator=gen) for n, t in m.state_dict().items() if n.endswith(".alpha")})
    groups = derive_groups(m)
    stream = next(g for g in groups if g.name.startswith("decoder.")
                  and any(n.endswith(".alpha") for n, _ in g.members))
    first_conv = next(n for n, _ in stream.members if n.endswith(".weight"))
    drop = {None: (), "alpha": tuple(n for n, _ in stream.members if n.endswith(".alpha")),
            "convolution": (first_conv,)}[leave_out]
    kept = [(n, d) for n, d in stream.members if n not in drop]
    before = outputs(m)
    broken = [g if g is not stream else type(g)(g.name, g.size, kept) for g in groups]
    apply(m, permute_state(m.state_dict(), broken, random_perms(groups, 5)))
    change = max(float((a - b).abs().max()) for a, b in zip(before, outputs(m)))
    assert (change <= 1e-5) == (leave_out is None), change
