"""Control flow for the channel-flow tracer (``align_trace``): branches and loops.

A branch that always raises is no path for channels; a loop over sizes is walked once.
Both only ever join or fix spaces, which is safe: a coarser grouping permutes less freely.
"""

from __future__ import annotations

from ravekit.merging.align_ops import Raises


class ControlFlow:
    """``prim::If`` and ``prim::Loop``, for ``Tracer`` (which holds the state they read)."""

    def branches(self, node):
        """Both branches may run: each output joins the spaces of both branches' values.

        A branch that always raises (``Raises``) gives no values; its unions made before the
        raise stay, which is safe: joining or fixing spaces only ever permutes less freely.
        """
        blocks = []
        for b in node.blocks():
            try:
                self.block(b)
                blocks.append(b)
            except Raises:
                pass
        if not blocks:
            raise Raises
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

    def loop(self, node, ins, outs):
        """A loop over sizes (v1's BatchNorm checks its input's size in training mode).

        Its body is walked once, so every op in it is checked as anywhere else.  That is enough
        only when no tensor is carried from one iteration to the next nor grown into a list;
        a loop that carries a tensor is refused.
        """
        body = next(iter(node.blocks()))
        carried = ins[2:] + list(body.inputs())[1:] + list(body.outputs())[1:] + outs
        if any(self.is_tensor(v) or v.type().kind() in ("ListType", "TupleType") for v in carried):
            self.refuse(node, "a loop (prim::Loop) that carries tensors or lists")
        self.in_loop += 1
        try:
            self.block(body)
        except Raises:  # a loop may run no iteration: a raise in its body is not certain
            self.refuse(node, "a loop (prim::Loop) whose body raises")
        finally:
            self.in_loop -= 1
