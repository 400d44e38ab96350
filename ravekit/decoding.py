"""Latents -> audio files: the work behind ``decoder.py``, importable on its own."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .audio import AudioWriter
from .errors import RavekitError, first_line
from .latents import load_latents
from .model import RaveModel
from .process import DEFAULT_CHUNK_SECONDS, chunk_frames_for, decode_chunks, measure_context


def check_latents(z: np.ndarray, meta: dict, model: RaveModel, path: os.PathLike | str) -> list[str]:
    """Refuse latents the model cannot decode; return warnings for doubtful ones.

    ``z`` is ``(1, dims, frames)``.  More dims than ``full_latent_size`` is an
    error; a count other than ``latent_size`` or metadata from another model
    is a warning (RAVE fills missing dims with noise).
    """
    m = model.info
    dims = z.shape[1]
    if dims > m.full_latent_size:
        raise RavekitError(
            f"{path}: {dims} latent dims, but {Path(m.path).name} decodes at most {m.full_latent_size}; "
            "decode with the model that made these latents")
    warnings = []
    if dims != m.latent_size:
        warnings.append(f"{path}: {dims} latent dims, the model's latent_size is {m.latent_size}"
                        + ("; the missing dims are filled with noise" if dims < m.latent_size else ""))
    ratio = meta.get("ratio")
    if isinstance(ratio, int) and ratio != m.ratio:
        warnings.append(f"{path}: made for compression ratio {ratio}, the model's is {m.ratio}; "
                        "timing will differ from the source")
    made_by = (meta.get("model") or {}).get("sha256")
    if made_by and m.sha256 and made_by != m.sha256:
        warnings.append(f"{path}: encoded with {(meta.get('model') or {}).get('file', 'another model')}, "
                        f"decoding with {Path(m.path).name}")
    return warnings


class Decoder:
    """A model ready to decode many latent files into audio.

    Parameters
    ----------
    model : a loaded model.
    seed : seed set before every file (decode fills missing dims with noise).
    subtype : soundfile subtype of the output (``FLOAT``, ``PCM_16``, ``PCM_24``).
    chunk_seconds : audio per model call; ``0`` decodes each file in one call.
    trim : cut the audio to the source's length when the sidecar knows it.
    """

    def __init__(self, model: RaveModel, seed: int | None = 0, subtype: str = "FLOAT",
                 chunk_seconds: float = DEFAULT_CHUNK_SECONDS, trim: bool = True):
        self.model, self.seed, self.subtype, self.trim = model, seed, subtype, trim
        self.context = measure_context(model, ("decode",)).decode if chunk_seconds > 0 else None
        self.chunk = chunk_frames_for(model, chunk_seconds) if chunk_seconds > 0 else 1

    def decode_to_file(self, z: np.ndarray, meta: dict, out: os.PathLike | str, progress=None) -> Path:
        """Decode ``z`` ``(1, dims, frames)`` into ``out`` at the model's sr, chunk by chunk.

        Returns the path written.  Samples beyond ``meta['source']['samples']``
        (the padding of the last frame) are cut when ``trim`` is on.
        ``progress(seconds)`` is called after every model call (see ``decode_chunks``).
        """
        m = self.model.info
        limit = ((meta.get("source") or {}).get("samples") if self.trim else None)
        # The source's length is counted at the encoding model's rate and ratio:
        # it only applies when this model shares them.
        same_timing = meta.get("sr", m.sr) == m.sr and meta.get("ratio", m.ratio) == m.ratio
        remaining = int(limit) if isinstance(limit, int) and limit > 0 and same_timing else None
        try:
            with AudioWriter(out, m.sr, m.target_channels, self.subtype) as writer:
                for block in decode_chunks(self.model, z, self.seed, self.chunk, self.context, progress):
                    if remaining is not None:
                        block = block[:, :remaining]
                        remaining -= block.shape[1]
                    if block.shape[1]:
                        writer.write(block)
        except RuntimeError as exc:
            raise RavekitError(f"{out}: the model failed to decode ({first_line(exc)})") from None
        return Path(out)

    def decode_file(self, path: os.PathLike | str, out: os.PathLike | str,
                    progress=None) -> tuple[Path, list[str]]:
        """Read a latent file (``.npy`` or latent WAV), check it, decode it into ``out``."""
        z, meta = load_latents(path)
        warnings = check_latents(z, meta, self.model, path)
        return self.decode_to_file(z, meta, out, progress), warnings
