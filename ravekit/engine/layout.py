"""The arithmetic layout: how every model call is computed, so that the same inputs give the same bytes.

A float sum rounds differently when its terms are added in another order,
and torch's convolutions split their sums across intra-op threads.  The same
file encoded with two threads and with one therefore differs in the last
bits (about 1e-7 of the range), and so it would with another chunk grid or
another random draw per chunk.  ravekit fixes all three, whatever the
parallelism of a run:

- **threads**: every model call runs on one intra-op thread (``--threads``
  changes that, and the bytes with it); parallelism comes from processes
  working on different chunks (:mod:`ravekit.engine.pool`);
- **chunk grid**: chunk boundaries and context depend on the model, the file
  and ``--chunk`` only (:mod:`ravekit.engine.chunks`), never on ``--jobs``,
  the batch, memory or the shard;
- **randomness**: the generator is seeded before each call from
  ``(seed, chunk index)`` (:func:`ravekit.seeds.chunk_seed`), never from the order of work.
  The file enters through its content alone, so a file gives the same result
  under any name, alone or in any batch.

``LAYOUT_VERSION`` is recorded with every output (:func:`layout_record`);
outputs of an earlier layout are stale, as outputs of another model are.
"""

from __future__ import annotations

import torch

# 1: before layouts were recorded (threads, seeding and pooling followed --jobs).
# 2: one intra-op thread, the chunk grid of the model and file, seeds keyed by chunk.
LAYOUT_VERSION = 2


def use_threads(threads: int) -> None:
    """Run this process's model calls on ``threads`` intra-op threads (1: the reproducible layout)."""
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def layout_record() -> dict:
    """What an output records of the arithmetic that makes it in this process (compared on resume)."""
    return {"version": LAYOUT_VERSION, "threads": torch.get_num_threads()}


def cpu_kernels() -> str:
    """The vector instructions torch's CPU kernels use here (``AVX512``, ``AVX2``, ...).

    Recorded, not compared: other kernels add in another order, so machines of
    another CPU family differ in the last bits (docs/reproducibility.md), yet
    their outputs are as valid.
    """
    return str(torch.backends.cpu.get_cpu_capability())
