"""The channel-flow tracer behind ``align_groups``: one pass over an inlined TorchScript graph.

Every tensor gets the channel space of its dim 1; the op tables below say
which ops keep a space, join two, or fix one (see ``align_groups`` for the
rules and why they hold).  Anything else that reads a live space is refused.
"""

from __future__ import annotations

import torch

from ravekit.errors import RavekitError

PRESERVE = {
    "aten::leaky_relu", "aten::leaky_relu_", "aten::relu", "aten::relu_", "aten::gelu", "aten::silu",
    "aten::elu", "aten::tanh", "aten::sigmoid", "aten::detach", "aten::clone", "aten::contiguous",
    "aten::neg", "aten::exp", "aten::log", "aten::abs", "aten::sin", "aten::cos", "aten::softplus",
    "aten::dropout", "aten::pow", "prim::unchecked_cast", "aten::type_as", "aten::to",
    "aten::reciprocal", "aten::sqrt", "aten::rsqrt",
}
# Statistics over time (v3's AdaIN): per channel, so they keep the space when reduced over time only.
TIME_STATS = {"aten::mean", "aten::std", "aten::var"}
BINARY = {"aten::add", "aten::sub", "aten::mul", "aten::div", "aten::add_", "aten::sub_", "aten::mul_",
          "aten::div_", "aten::copy_", "aten::maximum", "aten::minimum"}
# Ops that read channel positions: their tensor inputs' spaces become fixed.
FIXING = {"aten::reshape", "aten::view", "aten::permute", "aten::transpose", "aten::flatten", "aten::split",
          "aten::split_with_sizes", "aten::chunk", "aten::unbind", "aten::matmul", "aten::bmm", "aten::mean",
          "aten::sum", "aten::narrow", "aten::index_select", "aten::squeeze", "aten::select", "aten::flip",
          "aten::numpy_T", "aten::repeat"}
# Ops that only read sizes, flags or lists: no channel flow.
INERT = {"aten::size", "aten::dim", "prim::dtype", "prim::device", "aten::__getitem__", "aten::Bool",
         "aten::Int", "aten::eq", "aten::ne", "aten::__isnot__", "aten::__is__", "aten::__not__",
         "prim::RaiseException", "aten::len", "aten::gt", "aten::lt", "aten::ge", "aten::le",
         "aten::floordiv", "aten::neg_int", "prim::Uninitialized", "aten::format", "aten::warn",
         "prim::NumToTensor", "aten::IntImplicit", "aten::ScalarImplicit", "aten::FloatImplicit"}
TIME_DIMS = (0, 2, -1)


class UnsupportedArchitecture(RavekitError):
    """The model's permutation groups cannot be derived with certainty: never align it."""


class Spaces:
    """Union-find over channel spaces; the key ``FIXED`` is the space of channels never permuted."""

    FIXED = ("fixed",)

    def __init__(self) -> None:
        self.parent: dict = {self.FIXED: self.FIXED}
        self.order: list = []

    def find(self, k):
        if k not in self.parent:
            self.parent[k] = k
            self.order.append(k)
        while self.parent[k] != k:
            self.parent[k] = self.parent[self.parent[k]]
            k = self.parent[k]
        return k

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # FIXED always stays a root, so "is fixed" is one find.
            if rb == self.FIXED:
                ra, rb = rb, ra
            self.parent[rb] = ra
        return ra

    def fixed(self, k) -> bool:
        return self.find(k) == self.FIXED


class Tracer:
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
        self.block(graph)
        for v in graph.outputs():
            self.fix(v, None)  # and so do its outputs

    def block(self, block):
        for node in block.nodes():
            self.visit(node)

    def visit(self, node):
        kind, ins, outs = node.kind(), list(node.inputs()), list(node.outputs())
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
                else:
                    self.space[out] = self.spaces.FIXED
        elif kind in ("prim::ListConstruct", "prim::TupleConstruct"):
            self.lists[outs[0]] = ins
        elif kind == "aten::append":
            self.lists.setdefault(ins[0], []).append(ins[1])
        elif kind in ("prim::ListUnpack", "prim::TupleUnpack"):
            elems = self.lists.get(ins[0])
            if ins[0] in self.opaque:
                return  # tensors that never reach this lookup are fixed
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
            self.refuse(node, "a loop (prim::Loop) in the network")
        else:
            live = [v for v in ins if v in self.param or (v in self.space and not self.spaces.fixed(self.space[v]))]
            if live:
                self.refuse(node, f"op {kind} (not known to keep or fix channels) reads hidden channels")

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
        if src in self.paths:
            self.paths[out] = self.paths[src]

    def branches(self, node):
        """Both branches may run: each output joins the spaces of both branches' values."""
        blocks = list(node.blocks())
        for b in blocks:
            self.block(b)
        for i, out in enumerate(node.outputs()):
            srcs = [v for v in (list(b.outputs())[i] for b in blocks) if v not in self.none]
            if self.is_tensor(out):
                key = self.space_of(srcs[0], node)
                for v in srcs[1:]:
                    key = self.spaces.union(key, self.space_of(v, node))
                self.space[out] = key
            elif any(v in self.lists or v in self.paths for v in srcs):
                if len(srcs) == 1 or all(v in self.paths for v in srcs):
                    self.alias(out, srcs[0])
                else:
                    self.refuse(node, "a list chosen by a condition")

    def conv(self, node, kind, ins, outs):
        if ins[1] not in self.param:
            self.refuse(node, f"{kind} whose weight is not a parameter")
        weight = self.param[ins[1]]
        transposed = kind == "aten::conv_transpose1d" or (kind == "aten::_convolution" and self.const(ins[6]))
        groups = self.const(ins[6] if kind == "aten::conv_transpose1d" else ins[8] if kind == "aten::_convolution"
                            else ins[6])
        if groups != 1:
            self.refuse(node, f"grouped convolution (groups={groups}) with weight {weight}")
        d_in, d_out = (0, 1) if transposed else (1, 0)
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
