"""The channel-flow tracer behind ``align_groups``: one pass over an inlined TorchScript graph.

Every tensor gets the channel space of its dim 1; the op tables in ``align_ops``
say which ops keep a space, join two, or fix one (see ``align_groups`` for the
rules and why they hold).  Anything else that reads a live space is refused.
"""

from __future__ import annotations

import torch

from ravekit.merging.align_flow import ControlFlow
from ravekit.merging.align_ops import (
    BINARY,
    FIXING,
    INERT,
    PRESERVE,
    TIME_DIMS,
    TIME_STATS,
    Raises,
    Spaces,
    UnsupportedArchitecture,
)

__all__ = ["Spaces", "Tracer", "UnsupportedArchitecture"]


class Tracer(ControlFlow):
    """Walks one inlined graph and records channel-space equalities in ``spaces``."""

    def __init__(self, state: dict, params: set, spaces: Spaces, where: str, modules: dict):
        self.state, self.params, self.spaces, self.where = state, params, spaces, where
        self.modules = modules
        self.space: dict = {}   # tensor Value -> space key
        self.param: dict = {}   # Value -> name of a float parameter not yet consumed
        self.paths: dict = {}   # module Value -> path in the state_dict
        self.lists: dict = {}   # list/tuple Value -> list of element Values
        self.consts: dict = {}
        self.opaque: set = set()  # outputs of position-aware ops
        self.none: set = set()  # attributes that are None (a conv without bias): code using them never runs
        self.scalars: set = set()  # one-element buffers (v3's AdaIN update counts): broadcast, no channels
        self.buffers: dict = {}  # Value -> name of a 1-D float buffer (v1's BatchNorm running statistics)
        self.stacked: dict = {}  # Value -> space of a stack of tensors on a new dim 0 (channels at dim 2)
        self.made_in: dict = {}  # list Value -> the block that built it
        self.inexact: set = set()  # lists appended to outside the block that built them
        self.in_loop = 0
        self.anon = 0

    def fresh(self):
        self.anon += 1
        return ("anon", self.where, self.anon)

    def attr_is_none(self, base: str, name: str) -> bool:
        owner = self.modules.get(base)
        try:
            return owner is not None and getattr(owner, name) is None
        except (AttributeError, RuntimeError):  # an attribute TorchScript keeps but Python cannot read
            return False

    def refuse(self, node, why: str):
        src = node.sourceRange().strip().splitlines()
        at = f" ({src[-1].strip()[:80]})" if src else ""
        raise UnsupportedArchitecture(f"{why} in {self.where}{at}")

    @staticmethod
    def is_tensor(v) -> bool:
        return isinstance(v.type(), torch._C.TensorType)

    def space_of(self, v, node):
        """The channel space of tensor ``v``: a parameter read as data must be a (1, C, 1) scale."""
        if v in self.space:
            return self.space[v]
        if v in self.param:
            name = self.param[v]
            t = self.state[name]
            if t.dim() == 3 and t.shape[0] == 1 and t.shape[2] == 1:
                return ("dim", name, 1)
            if t.dim() == 2 and t.shape[1] == 1:  # v3's Snake alpha (C, 1): broadcast over (batch, C, time)
                return ("dim", name, 0)
            self.refuse(node, f"parameter {name} of shape {tuple(t.shape)} is used by {node.kind()}, not a conv")
        return self.spaces.FIXED  # constants, noise, sizes: nothing that a permutation changes

    def fix(self, v, node):
        if v in self.param:  # every dim of a parameter read by a position-aware op is fixed
            for d in range(self.state[self.param[v]].dim()):
                self.spaces.union(self.spaces.FIXED, ("dim", self.param[v], d))
        elif v in self.space:
            self.spaces.union(self.spaces.FIXED, self.space[v])
        for e in self.lists.get(v, ()):
            self.fix(e, node)

    def const(self, v):
        return self.consts.get(v, None)

    def run(self, graph, self_path: str):
        self.paths[next(iter(graph.inputs()))] = self_path
        for v in list(graph.inputs())[1:]:
            if self.is_tensor(v):
                self.space[v] = self.spaces.FIXED  # the network's input channels mean something outside it
        try:
            self.block(graph)
        except Raises:
            raise UnsupportedArchitecture(f"{self.where} always raises (a list unpacked into a wrong count)") from None
        for v in graph.outputs():
            self.fix(v, None)  # and so do its outputs

    def block(self, block):
        for node in block.nodes():
            self.visit(node)

    def visit(self, node):
        kind, ins, outs = node.kind(), list(node.inputs()), list(node.outputs())
        if any(v in self.stacked for v in ins) and not self._sum_of_stack(kind, ins, outs):
            for v in ins:  # a stack read by anything but a sum over it: its channels stay in place
                if v in self.stacked:
                    self.spaces.union(self.spaces.FIXED, self.stacked[v])
        if any(v in self.none for v in ins) and kind in PRESERVE | BINARY | {"aten::unsqueeze"}:
            # Only reached in a branch guarded by `is not None` on a None attribute: dead code.
            self.none.update(outs)
            return
        if kind == "prim::Constant":
            try:
                self.consts[outs[0]] = outs[0].toIValue()
            except (RuntimeError, TypeError):  # constants of types Python cannot hold are not needed here
                self.consts[outs[0]] = None
        elif kind == "prim::GetAttr":
            base = self.paths.get(ins[0])
            if base is None:
                self.refuse(node, "attribute of an unknown object")
            full = f"{base}.{node.s('name')}" if base else node.s("name")
            out = outs[0]
            if isinstance(out.type(), torch._C.ClassType):
                self.paths[out] = full
            elif full not in self.state and self.attr_is_none(base, node.s("name")):
                self.none.add(out)
            elif full in self.state and self.state[full].is_floating_point():
                t = self.state[full]
                if full in self.params:
                    self.param[out] = full
                elif t.dim() == 3:  # streaming state, v3's AdaIN statistics: (batch, channels, time)
                    self.space[out] = ("dim", full, 1)
                elif t.numel() == 1:
                    self.scalars.add(out)
                else:  # fixed wherever it is read as data; batch_norm alone gives a 1-D buffer channels
                    self.space[out] = self.spaces.FIXED
                    if t.dim() == 1:
                        self.buffers[out] = full
        elif kind in ("prim::ListConstruct", "prim::TupleConstruct"):
            self.lists[outs[0]] = list(ins)
            self.made_in[outs[0]] = node.owningBlock()
        elif kind == "aten::append":
            if self.made_in.get(ins[0]) is not node.owningBlock():
                self.inexact.add(ins[0])  # appended in a branch or a loop: its length is not known
            self.lists.setdefault(ins[0], []).append(ins[1])
        elif kind in ("prim::ListUnpack", "prim::TupleUnpack"):
            elems = self.lists.get(ins[0])
            if ins[0] in self.opaque:
                return  # tensors that never reach this lookup are fixed
            if elems is not None and len(elems) != len(outs) and ins[0] not in self.inexact:
                if self.in_loop:
                    self.refuse(node, "a list unpacked into the wrong count in a loop")
                raise Raises  # unpacking a list of known length into another count raises, always
            if elems is None or len(elems) != len(outs):
                if any(self.is_tensor(o) for o in outs):
                    self.refuse(node, "unpacking a list of tensors whose items are unknown")
                return  # sizes or paddings read from attributes
            for o, e in zip(outs, elems):
                self.alias(o, e)
        elif kind == "prim::TupleIndex":
            elems, i = self.lists.get(ins[0]), self.const(ins[1])
            if elems is None or not isinstance(i, int):
                if self.is_tensor(outs[0]):
                    self.refuse(node, "indexing a tuple of tensors whose items are unknown")
                return
            self.alias(outs[0], elems[i])
        elif kind == "prim::If":
            self.branches(node)
        elif kind in ("aten::conv1d", "aten::conv_transpose1d", "aten::_convolution"):
            self.conv(node, kind, ins, outs)
        elif kind == "aten::batch_norm":
            self.batch_norm(node, ins, outs)
        elif kind in PRESERVE | BINARY and ins and all(v in self.scalars for v in ins if self.is_tensor(v)):
            self.scalars.update(o for o in outs if self.is_tensor(o))
        elif kind in PRESERVE or kind in ("aten::pad", "aten::constant_pad_nd"):
            if kind in ("aten::pad", "aten::constant_pad_nd"):
                pad = self.lists.get(ins[1])
                if pad is None or len(pad) != 2:
                    self.refuse(node, "padding beyond the time axis")
            self.space[outs[0]] = self.space_of(ins[0], node)
        elif kind in BINARY and any(self.is_tensor(v) for v in ins):
            tensors = [v for v in ins if self.is_tensor(v) and v not in self.scalars]
            key = self.space_of(tensors[0], node)
            for v in tensors[1:]:
                key = self.spaces.union(key, self.space_of(v, node))
            self.space[outs[0]] = key
        elif kind == "aten::unsqueeze":
            self.unsqueeze(node, ins, outs)
        elif kind == "aten::slice":
            if self.const(ins[1]) in TIME_DIMS:
                self.space[outs[0]] = self.space_of(ins[0], node)
            else:
                self.fix(ins[0], node)
        elif kind == "aten::cat":
            elems = self.lists.get(ins[0])
            if elems is not None and self.const(ins[1]) in TIME_DIMS:
                key = self.space_of(elems[0], node)
                for v in elems[1:]:
                    key = self.spaces.union(key, self.space_of(v, node))
                self.space[outs[0]] = key
            else:
                self.fix(ins[0], node)
        elif kind == "aten::stack" and ins[0] in self.lists and self.const(ins[1]) == 0:
            # v1's residual stacks sum their branches: stack on a new dim 0, then sum over it.
            elems = self.lists[ins[0]]
            key = self.space_of(elems[0], node) if elems else self.spaces.FIXED
            for v in elems[1:]:
                key = self.spaces.union(key, self.space_of(v, node))
            self.stacked[outs[0]] = key
        elif self._sum_of_stack(kind, ins, outs):
            self.space[outs[0]] = self.stacked[ins[0]]
        elif kind in TIME_STATS and self._over_time(ins):
            self.space[outs[0]] = self.space_of(ins[0], node)
        elif kind in FIXING:
            for v in ins:
                self.fix(v, node)
            for o in outs:  # lists of pieces (split, chunk): every piece is fixed
                self.lists[o] = []
                self.opaque.add(o)
        elif kind in INERT or kind in BINARY or kind == "aten::zero_":  # BINARY here: int arithmetic
            pass
        elif kind == "prim::Loop":
            self.loop(node, ins, outs)
        else:
            if any(self.live(v) for v in ins):
                self.refuse(node, f"op {kind} (not known to keep or fix channels) reads hidden channels")

    def live(self, v) -> bool:
        """``v`` carries channels that may be permuted (itself, or an item of a list it holds)."""
        if v in self.param or (v in self.space and not self.spaces.fixed(self.space[v])):
            return True
        return any(self.live(e) for e in self.lists.get(v, ()) if e is not v)

    def _sum_of_stack(self, kind, ins, outs) -> bool:
        """``sum``/``mean`` of a stack over exactly its new dim 0 (keepdim off): channels back at dim 1."""
        if kind not in ("aten::sum", "aten::mean") or ins[0] not in self.stacked or len(ins) < 3:
            return False
        dims = self.lists.get(ins[1])
        values = [self.const(d) for d in dims] if dims is not None else None
        return values == [0] and self.const(ins[2]) is False

    def _over_time(self, ins) -> bool:
        """A reduction whose dims (a constant list) are all the time axis."""
        if len(ins) < 2:
            return False
        dims = self.lists.get(ins[1])
        values = [self.const(d) for d in dims] if dims is not None else self.const(ins[1])
        return isinstance(values, list) and bool(values) and all(v in (2, -1) for v in values)

    def alias(self, out, src):
        if src in self.space:
            self.space[out] = self.space[src]
        if src in self.param:
            self.param[out] = self.param[src]
        if src in self.lists:
            self.lists[out] = self.lists[src]
            if src in self.inexact or src not in self.made_in:
                self.inexact.add(out)
        if src in self.paths:
            self.paths[out] = self.paths[src]

    def batch_norm(self, node, ins, outs):
        """``batch_norm(x, weight, bias, running_mean, running_var, ...)``: all four follow x's channels."""
        key = self.space_of(ins[0], node)
        for v in ins[1:5]:
            if v in self.param:
                key = self.spaces.union(key, ("dim", self.param[v], 0))
            elif v in self.buffers:
                key = self.spaces.union(key, ("dim", self.buffers[v], 0))
            elif v not in self.none and self.is_tensor(v) and self.const(v) is not None:
                self.refuse(node, "batch_norm with statistics that are not the module's own")
        self.space[outs[0]] = key

    def conv(self, node, kind, ins, outs):
        if ins[1] not in self.param:
            self.refuse(node, f"{kind} whose weight is not a parameter")
        weight = self.param[ins[1]]
        transposed = kind == "aten::conv_transpose1d" or (kind == "aten::_convolution" and self.const(ins[6]))
        groups = self.const(ins[6] if kind == "aten::conv_transpose1d" else ins[8] if kind == "aten::_convolution"
                            else ins[6])
        d_in, d_out = (0, 1) if transposed else (1, 0)
        if groups != 1:
            # Grouped (v1's last encoder convolution, groups=2): channels may only move within a
            # group, which a union-find of whole spaces cannot say; so both sides stay in place.
            self.fix(ins[0], node)
            for d in range(self.state[weight].dim()):
                self.spaces.union(self.spaces.FIXED, ("dim", weight, d))
            if ins[2] in self.param:
                self.fix(ins[2], node)
            self.space[outs[0]] = self.spaces.FIXED
            return
        self.spaces.union(self.space_of(ins[0], node), ("dim", weight, d_in))
        if ins[2] in self.param:
            self.spaces.union(("dim", self.param[ins[2]], 0), ("dim", weight, d_out))
        self.space[outs[0]] = self.spaces.find(("dim", weight, d_out))

    def unsqueeze(self, node, ins, outs):
        dim = self.const(ins[1])
        if ins[0] in self.param and self.state[self.param[ins[0]]].dim() == 1 and dim in (-1, 1):
            self.space[outs[0]] = ("dim", self.param[ins[0]], 0)  # a bias (C,) -> (C, 1) broadcast over time
        elif ins[0] in self.space and dim in (-1, 3):
            self.space[outs[0]] = self.space[ins[0]]
        else:
            self.fix(ins[0], node)
