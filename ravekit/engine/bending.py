"""Latent bending on the way to the decoder: pick or reorder dims, then scale and shift them.

``z`` ``(1, latent_dims, frames)`` becomes ``z[:, dims] * scale + bias``: ``dims``
(``--dims 2,1,3``, counted from 1, repeats allowed) chooses which input dims
the decoder gets and in which order; ``scale`` and ``bias`` are one value for
every decoded dim or one per decoded dim (after ``dims``).  Bending is frame
by frame, so it gives the same result whatever the chunking.

Only the standard library is imported at module level, so the argparse types
below cost nothing to ``--help``.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ravekit.errors import RavekitError

if TYPE_CHECKING:
    from ravekit.engine.model import ModelInfo


def dim_list(text: str) -> list[int]:
    """An argparse type: ``"2,1,3"``, dims counted from 1 -> ``[1, 0, 2]``.

    Every entry is a whole number from 1: an empty entry (``1,2,,3``) is
    refused rather than skipped, since the dims after it would each feed the
    decoder's dim one before the one meant.  Repeats are allowed (one input
    dim may feed several decoder dims).
    """
    picked = []
    for n, part in enumerate(text.split(","), 1):
        what = None
        try:
            value = int(part)
        except ValueError:
            what = "is empty" if not part.strip() else f"({part.strip()!r}) is not a whole number"
        else:
            if value < 1:
                what = f"({value}) is below 1"
        if what:
            raise argparse.ArgumentTypeError(f"{text!r}: entry {n} {what}; give latent dims counted from 1, "
                                             "separated by commas, e.g. 2,1,3,4")
        picked.append(value - 1)
    return picked


def value_list(text: str) -> list[float]:
    """An argparse type: ``"0.5"`` or ``"1,1,0.5"``, finite numbers."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: give one number, or one per decoded dim separated by commas")
    return values


@dataclass(frozen=True)
class Bending:
    """What happens to latents between reading (or encoding) them and decoding them.

    Attributes
    ----------
    dims : 0-based input dims, in the order the decoder gets them; ``None`` keeps them all.
    scale, bias : one value, or one per decoded dim; ``None`` leaves the values alone.
    """

    dims: tuple[int, ...] | None = None
    scale: tuple[float, ...] | None = None
    bias: tuple[float, ...] | None = None

    @classmethod
    def from_lists(cls, dims: list[int] | None, scale: list[float] | None, bias: list[float] | None) -> Bending:
        """From the parsed flags; a scale of all ones or a bias of all zeros is kept (it is what was asked)."""
        return cls(None if dims is None else tuple(dims), None if scale is None else tuple(scale),
                   None if bias is None else tuple(bias))

    @property
    def active(self) -> bool:
        return self.dims is not None or self.scale is not None or self.bias is not None

    def decoded_dims(self, input_dims: int) -> int:
        """How many dims the decoder gets from ``input_dims`` input dims."""
        return len(self.dims) if self.dims is not None else input_dims

    def check(self, input_dims: int, where: str, exit_code: int = 1, source: str | None = None) -> None:
        """Refuse flags that do not fit latents of ``input_dims`` dims.

        ``where`` starts the message (a file's path); ``source``, when given,
        names what makes the latents (``--encoder a.ts``) and the message
        then starts with the flag at fault.
        """
        if self.dims is not None and max(self.dims) >= input_dims:
            beyond = sorted({d + 1 for d in self.dims if d >= input_dims})
            asked = f"--dims asks for dim{'s' if len(beyond) > 1 else ''} {', '.join(map(str, beyond))}"
            if source:
                raise RavekitError(f"{asked}, but {source} makes only {input_dims} latent dim"
                                   f"{'s' * (input_dims != 1)}; pick from 1 to {input_dims}", exit_code)
            raise RavekitError(f"{where}: {asked}, but there {'is' if input_dims == 1 else 'are'} only "
                               f"{input_dims}; pick from 1 to {input_dims}", exit_code)
        n = self.decoded_dims(input_dims)
        for flag, values in (("--scale", self.scale), ("--bias", self.bias)):
            if values is not None and len(values) not in (1, n):
                raise RavekitError(f"{where}: {flag} gives {len(values)} values for {n} decoded dims; "
                                   f"give one value for all, or {n} (one per dim, after --dims)", exit_code)

    def check_decoder(self, model: ModelInfo) -> list[str]:
        """Refuse (exit 2) more ``--dims`` entries than ``model`` decodes; warn when some replace its noise.

        A model decodes up to ``decode_dims`` dims (``full_latent_size``; a
        spherical export exactly its ``latent_size`` angles): its first
        ``latent_size`` carry the latents, and it fills the rest with noise.
        Entries past ``latent_size`` take the place of that noise.
        """
        if self.dims is None:
            return []
        n, name = len(self.dims), Path(model.path).name
        most = model.decode_dims
        if n > most:
            raise RavekitError(f"--dims lists {n} dims, but {name} decodes at most {most} (latent size "
                               f"{model.latent_size}, {most} in all); give at most {most}", 2)
        if n > model.latent_size:
            return [f"--dims lists {n} dims and {name} has a latent size of {model.latent_size}: entries "
                    f"{model.latent_size + 1} to {n} take the place of the noise it fills its other dims with, "
                    f"which changes its sound; give {model.latent_size} or fewer to keep that noise"]
        return []

    def apply(self, z):
        """Bend latents.

        Parameters
        ----------
        z : np.ndarray [shape=(1, latent_dims, frames), dtype=float32]

        Returns
        -------
        bent : np.ndarray [shape=(1, decoded_dims, frames), dtype=float32]
            A new array; ``decoded_dims`` is :meth:`decoded_dims` of ``latent_dims``.
        """
        import numpy as np

        out = z[:, list(self.dims)] if self.dims is not None else z.copy()
        if self.scale is not None:
            out *= np.asarray(self.scale, np.float32)[None, :, None]
        if self.bias is not None:
            out += np.asarray(self.bias, np.float32)[None, :, None]
        return np.ascontiguousarray(out, dtype=np.float32)

    def to_record(self) -> dict | None:
        """The record's ``bending`` section (dims counted from 1, as the user gave them); None when off."""
        if not self.active:
            return None
        return {"dims": None if self.dims is None else [d + 1 for d in self.dims],
                "scale": None if self.scale is None else list(self.scale),
                "bias": None if self.bias is None else list(self.bias)}

    def describe(self) -> str:
        """``--dims 2,1 --scale 0.5`` as the user would type it, for messages."""
        return describe_record(self.to_record())


def describe_record(section: dict | None) -> str:
    """A record's ``bending`` section as flags (``--dims 2,1 --scale 0.5``), or ``none``."""
    parts = [f"--{key} {','.join(f'{v:g}' for v in section[key])}"
             for key in ("dims", "scale", "bias") if section and section.get(key) is not None]
    return " ".join(parts) or "none"
