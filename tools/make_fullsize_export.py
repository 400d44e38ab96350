"""A full-size-shaped RAVE v2 export, made from a capacity-16 one, for benchmarks.

RAVE's default v2 config has CAPACITY 64: every hidden convolution of the encoder and
the decoder is 4x wider than in the shipped capacity-16 exports, while the PQMF bands,
the latent dims and the output channels stay. The exported TorchScript code takes its
shapes from the weights (convolutions call ``F.conv1d`` on ``self.weight``), so
replacing every hidden-channel weight of a cap16 export by a random one 4x wider
along its hidden dims gives a model with the shapes, the parameter count (about
14 M, 58 MB) and the cost of a full-size v2, that encodes and decodes like the
original (same attributes, methods and nn~ buffers). Its weights are random, scaled
like the originals' (``std * sqrt(old fan-in / new fan-in)``), so its output stays
near the original's level: a cost model, not a sound.

Usage: python -m tools.make_fullsize_export SOURCE_cap16.ts DEST.ts [--factor 4] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def widen(model, factor: int = 4, seed: int = 0) -> int:
    """Replace, in place, the hidden-channel conv weights of ``model`` (a loaded v2 export) by wider ones.

    In each of ``encoder.*`` and ``decoder.*``, taken in ``named_parameters`` order (the
    order of the network), the first convolution keeps its input dim (PQMF bands, latent
    dims), the last keeps its output dim (2 x latent dims, bands x 2), and every other
    dim 0 and 1 (transposed convolutions too: their ``(in, out, k)`` are both hidden)
    is multiplied by ``factor``. Returns the number of weights replaced.

    Raises
    ------
    ValueError
        When ``model`` has no 3-D encoder or decoder weights (not a v2-like export).
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    modules = dict(model.named_modules())
    params = dict(model.named_parameters())
    replaced = 0
    for part in ("encoder.", "decoder."):
        names = [k for k, v in params.items() if k.startswith(part) and v.dim() == 3]
        if len(names) < 2:
            raise ValueError(f"no {part.rstrip('.')} convolutions to widen: not a RAVE v2-like export")
        for i, name in enumerate(names):
            old = params[name].detach()
            shape = list(old.shape)
            if i > 0:
                shape[1] *= factor
            if i < len(names) - 1:
                shape[0] *= factor
            scale = float(old.std()) * (old.shape[1] / shape[1]) ** 0.5
            new = torch.randn(shape, generator=gen) * scale
            owner, attr = name.rsplit(".", 1)
            setattr(modules[owner], attr, torch.nn.Parameter(new, requires_grad=False))
            replaced += 1
    return replaced


def make_fullsize(source: Path, dest: Path, factor: int = 4, seed: int = 0) -> Path:
    """Write ``dest``: ``source`` with hidden channels ``factor`` x wider (:func:`widen`).

    The file is written beside ``dest`` and renamed into place, so an interrupted run leaves
    no half-written model.
    """
    import warnings

    import torch

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    with warnings.catch_warnings():  # torch.jit's load and save are deprecated, and still what nn~ reads
        warnings.simplefilter("ignore", DeprecationWarning)
        model = torch.jit.load(str(source), map_location="cpu").eval()
        widen(model, factor, seed)
        try:
            torch.jit.save(model, str(tmp))
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
    return dest


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", type=Path, help="a capacity-16 RAVE v2 export (.ts)")
    p.add_argument("dest", type=Path, help="where to write the full-size-shaped export (.ts)")
    p.add_argument("--factor", type=int, default=4, help="how many times wider the hidden channels (default: 4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights (default: 0)")
    args = p.parse_args(argv)
    try:
        make_fullsize(args.source, args.dest, args.factor, args.seed)
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"make_fullsize_export: {args.source}: {exc}", file=sys.stderr)
        return 1
    print(args.dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
