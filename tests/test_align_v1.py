"""averager.py --align on RAVE v1: BatchNorm follows its channels, the proof on the real v1 export.

v1's encoder is conv -> BatchNorm -> LeakyReLU; its BatchNorm running statistics
(``running_mean``, ``running_var``) and affine parameters (``weight``, ``bias``)
follow their channels, ``num_batches_tracked`` carries none.  The export is
untrained (every BatchNorm is the identity: permuting it changes nothing), so
its BatchNorm tensors are first made to differ, as the v3 test does with Snake's alpha;
and its decoder is switched to warmed up, its noise generator made louder, so that the
noise branch plays audibly too.
"""

from __future__ import annotations

import json

import pytest
import torch
from test_align import apply, correlation, jit_load, jit_save, random_perms

import averager
from conftest import REAL_MODELS
from ravekit.engine.model import quiet_jit, read_info
from ravekit.merging.align_groups import UnsupportedArchitecture, derive_groups, permute_state

V1 = [p for p in REAL_MODELS if p.stem.startswith("v1")]
needs_v1 = pytest.mark.skipif(not V1, reason="no v1 export in RAVE_TEST_MODELS / more-kinds")
BN = ("weight", "bias", "running_mean", "running_var")


def v1_with_trained_like_batchnorm():
    """The v1 export, its BatchNorm tensors drawn at random (seeded), and the names of its BatchNorm layers."""
    m = jit_load(V1[0])
    sd = m.state_dict()
    layers = sorted({n.rsplit(".", 1)[0] for n in sd if n.endswith(".running_var")})
    gen = torch.Generator().manual_seed(7)
    new = {}
    for layer in layers:
        shape = sd[f"{layer}.weight"].shape
        new[f"{layer}.weight"] = 0.5 + torch.rand(shape, generator=gen)
        new[f"{layer}.bias"] = 0.3 * torch.randn(shape, generator=gen)
        new[f"{layer}.running_mean"] = 0.3 * torch.randn(shape, generator=gen)
        new[f"{layer}.running_var"] = 0.5 + torch.rand(shape, generator=gen)
    new["decoder.warmed_up"] = torch.ones(())  # the noise branch plays from here on
    for name in (n for n in sd if n.startswith("decoder.synth.branches.2.net.")):
        new[name] = 10 * sd[name]  # untrained, its noise is too faint for a wrong permutation to show
    apply(m, new)
    return m, layers


@torch.no_grad()
def outputs(m) -> list[torch.Tensor]:
    """encode, decode and forward, each seeded (the warmed-up decoder adds noise)."""
    x = torch.randn(1, 1, 8192, generator=torch.Generator().manual_seed(0))
    z = torch.randn(1, read_info(m).decode_dims, 4, generator=torch.Generator().manual_seed(1))
    got = []
    for seed, (method, arg) in enumerate(((m.encode, x), (m.decode, z), (m.forward, x))):
        torch.manual_seed(seed + 2)
        got.append(method(arg))
    return got


def change(before, after) -> float:
    return max(float((a - b).abs().max()) for a, b in zip(before, after))


@needs_v1
def test_v1_groups_carry_every_batchnorm_tensor_but_the_update_count():
    m, layers = v1_with_trained_like_batchnorm()
    groups = derive_groups(m)
    members = {n: d for g in groups for n, d in g.members}
    assert len(layers) == 4
    for layer in layers:
        for part in BN:
            assert members.get(f"{layer}.{part}") == 0, f"{layer}.{part}"
        assert f"{layer}.num_batches_tracked" not in members
    # The latent output (a grouped convolution, groups=2) and the latent input stay in place.
    sd = m.state_dict()
    encoder_convs = [n for n in sd if n.startswith("encoder.") and n.endswith(".weight") and sd[n].dim() == 3]
    assert (encoder_convs[-1], 1) not in members and (encoder_convs[-1], 0) not in members
    assert ("decoder.net.0.weight", 1) not in members


@needs_v1
@pytest.mark.parametrize("leave_out", [None, *BN, "convolution"])
def test_v1_permuted_plays_the_same_and_batchnorm_left_behind_is_caught(leave_out):
    """Permuted along every group, v1 plays the same; a group permuted without one of its
    BatchNorm tensors (or without its convolution) changes what the encoder writes."""
    m, layers = v1_with_trained_like_batchnorm()
    groups = derive_groups(m)
    layer = layers[1]
    group = next(g for g in groups if (f"{layer}.running_var", 0) in g.members)
    drop = {None: None, "convolution": next(n for n, _ in group.members if not n.startswith(layer))}.get(
        leave_out, f"{layer}.{leave_out}")
    broken = [g if g is not group else type(g)(g.name, g.size, [nd for nd in g.members if nd[0] != drop])
              for g in groups]
    before = outputs(m)
    apply(m, permute_state(m.state_dict(), broken, random_perms(groups, 5)))
    moved = change(before, outputs(m))
    assert (moved <= 1e-5) == (leave_out is None), moved


@needs_v1
def test_v1_every_group_missing_one_tensor_is_caught():
    """Any one group left with one tensor unpermuted changes what v1 plays: no group is
    padding, and the proof above could not pass with a group missing."""
    m, _ = v1_with_trained_like_batchnorm()
    groups = derive_groups(m)
    original = {k: v.detach().clone() for k, v in m.state_dict().items()}
    before = outputs(m)
    perms = random_perms(groups, 11)
    for gi, g in enumerate(groups):
        broken = list(groups)
        broken[gi] = type(g)(g.name, g.size, g.members[:-1])
        apply(m, permute_state(original, broken, perms))
        moved = change(before, outputs(m))
        apply(m, original)
        assert moved > 1e-4, f"group {g.name} without {g.members[-1]} still plays the same"


@needs_v1
def test_v1_alignment_recovers_a_hidden_permutation(tmp_path, capsys):
    m, _ = v1_with_trained_like_batchnorm()
    a_path = jit_save(m, tmp_path / "a.ts")
    groups = derive_groups(m)
    state_a = {k: v.detach().clone() for k, v in m.state_dict().items()}
    apply(m, permute_state(state_a, groups, random_perms(groups, 21)))
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():  # a tiny difference (1e-3 of each tensor's spread) makes it a merge
        for name, t in m.state_dict().items():
            if t.is_floating_point() and t.numel() > 1 and any(name == n for g in groups for n, _ in g.members):
                t.add_(1e-3 * t.std() * torch.randn(t.shape, generator=gen))
    b_path = jit_save(m, tmp_path / "b.ts")
    aligned, plain = tmp_path / "aligned" / "m.ts", tmp_path / "plain" / "m.ts"
    assert averager.main(["--models", str(a_path), str(b_path), "--align", "-o", str(aligned)]) == 0
    assert averager.main(["--models", str(a_path), str(b_path), "-o", str(plain)]) == 0
    assert f"aligned B to A: {len(groups)} permutation groups" in capsys.readouterr().err
    ref, got, mixed = (outputs(jit_load(p)) for p in (a_path, aligned, plain))
    assert all(correlation(r, g) >= 0.999 for r, g in zip(ref, got))
    # encode's own seeded noise is alike in any two merges: the plain merge shows in what is played
    assert all(correlation(r, x) < 0.9 for r, x in zip(ref[1:], mixed[1:]))
    rows = json.loads(aligned.with_suffix(".json").read_text())["alignment"]["groups"]
    assert len(rows) == len(groups) and all(r["cos_after"] > 0.999999 for r in rows)


class _Stacked(torch.nn.Module):
    """Two convolutions with the sum of a stack of the first's output between them, as v1's residual stacks."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Conv1d(2, 8, 3, bias=False)
        self.b = torch.nn.Conv1d(8, 2, 3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        return self.b(torch.stack([y, -y]).sum(0))


class _StackedOnChannels(_Stacked):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        return self.b(torch.stack([y, -y], 1).sum(1))  # the stack's dim 1 is the pair: b reads the sum of both


def _trace(module) -> list:
    from ravekit.merging.align_groups import _inlined
    from ravekit.merging.align_trace import Spaces, Tracer

    with quiet_jit():
        scripted = torch.jit.script(module)
    spaces = Spaces()
    Tracer(scripted.state_dict(), {n for n, _ in scripted.named_parameters()}, spaces, "",
           dict(scripted.named_modules())).run(_inlined(scripted.forward), "")
    return sorted(key for key in spaces.order if key[0] == "dim" and not spaces.fixed(key))


def test_a_stack_keeps_its_channels_or_is_refused():
    """v1's residual stacks: ``stack`` on a new dim 0 then ``sum`` over it keeps the stream; a stack on
    any other dim is an op the tracer does not know, read through a list, and is refused: before,
    the list hid its tensors and the first convolution's channels were left free to move alone."""
    kept = _trace(_Stacked())
    assert ("dim", "a.weight", 0) in kept and ("dim", "b.weight", 1) in kept
    with pytest.raises(UnsupportedArchitecture, match="aten::stack"):
        _trace(_StackedOnChannels())
