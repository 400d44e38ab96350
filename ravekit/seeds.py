"""The seed rule, in one place: which seeds are valid and which random stream each piece of work draws.

- ``--seed`` is a whole number from 0 to ``SEED_MAX`` (:func:`check_seed`), in
  every script: numpy's ``SeedSequence`` refuses negative seeds and torch maps
  them onto large positive ones, so one seed would not mean one result.
- Output file ``i`` of a generator run draws from its own streams, numpy's
  (:func:`file_rng`) and torch's (:func:`file_torch_seed`): file ``i`` does not
  depend on the files before it, nor on ``--num_files``.
- Chunk ``k`` of a file is seeded from ``(seed, k)`` (:func:`chunk_seed`),
  never from the order of work, so any number of processes gives the same
  bytes (:mod:`ravekit.engine.layout`).
- :func:`seed_torch` sets torch's global generator before a model call.

numpy and torch are imported inside the functions that draw, so that the
command line's checks (``check_seed``) stay free of them and ``--help`` fast.
"""

from __future__ import annotations

from ravekit.errors import RavekitError

SEED_MAX = 2**32 - 1  # numpy's SeedSequence and torch.manual_seed both take 0..2**32-1 as is


def check_seed(seed: int | None) -> None:
    """Refuse a seed outside 0..``SEED_MAX`` (``RavekitError``, exit code 2); None passes."""
    if seed is not None and not (0 <= seed <= SEED_MAX):
        raise RavekitError(f"--seed {seed}: use a whole number from 0 to {SEED_MAX}", 2)


def file_rng(seed: int, index: int):
    """The numpy generator of output file ``index``: independent of how many files are made.

    Returns
    -------
    numpy.random.Generator
        ``default_rng(SeedSequence(seed, spawn_key=(index,)))``.
    """
    import numpy as np  # here, not at the top: see the module's docstring

    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


def file_torch_seed(seed: int, index: int) -> int:
    """The torch seed of output file ``index`` (a stream apart from :func:`file_rng`'s), 0..2**63-1."""
    import numpy as np  # here, not at the top: see the module's docstring

    state = np.random.SeedSequence(seed, spawn_key=(index, 1)).generate_state(2, np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def chunk_seed(seed: int | None, index: int) -> int | None:
    """The torch seed of chunk ``index`` of a file run with ``seed`` (None: not seeded).

    Chunk 0 takes ``seed`` itself, so a file of one chunk gives exactly what
    ``torch.manual_seed(seed)`` before the model's own call gives; later chunks
    derive theirs through numpy's ``SeedSequence``, so neighbouring chunks and
    seeds get unrelated streams.
    """
    if seed is None or index == 0:
        return seed
    import numpy as np  # here, not at the top: see the module's docstring

    return int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint64)[0] >> 1)


def seed_torch(seed: int | None) -> None:
    """Seed torch's global generator before a model call (None: leave it as it is)."""
    if seed is not None:
        import torch  # here, not at the top: see the module's docstring

        torch.manual_seed(seed)
