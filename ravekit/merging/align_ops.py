"""What the channel-flow tracer (``align_trace``) knows: op tables, channel spaces, refusals.

Each table says what an op does to the channel space of its tensors' dim 1:
keep it, join two, fix it (never permuted), or nothing (sizes and flags).
"""

from __future__ import annotations

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
          "aten::numpy_T", "aten::repeat", "aten::repeat_interleave"}
# Ops that only read sizes, flags or lists: no channel flow.
INERT = {"aten::size", "aten::dim", "prim::dtype", "prim::device", "aten::__getitem__", "aten::Bool",
         "aten::Int", "aten::eq", "aten::ne", "aten::__isnot__", "aten::__is__", "aten::__not__",
         "prim::RaiseException", "aten::len", "aten::gt", "aten::lt", "aten::ge", "aten::le",
         "aten::floordiv", "aten::neg_int", "prim::Uninitialized", "aten::format", "aten::warn",
         "prim::NumToTensor", "aten::IntImplicit", "aten::ScalarImplicit", "aten::FloatImplicit"}
TIME_DIMS = (0, 2, -1)


class UnsupportedArchitecture(RavekitError):
    """The model's permutation groups cannot be derived with certainty: never align it."""


class Raises(Exception):
    """The block being walked always raises here (v1's dead ``use_noise`` branch unpacks a list of
    three into two): nothing after this point runs, so its values never flow anywhere."""


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
