"""Hearing a merge: one audio file through each parent model and the merged one.

Every model encodes and decodes the same file with the same seed, so the
renders differ only by the models' weights.  Files are written beside the
merged model as ``<audio stem>.A.wav``, ``<audio stem>.B.wav``, ... and
``<audio stem>.<merged model stem>.wav``, 32-bit float, each at its model's
sample rate and trimmed to the input's duration so they line up in an editor.
With ``--align`` the merge made without alignment is rendered too
(``<audio stem>.<merged model stem>.unaligned.wav``), to hear what aligning changed.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ravekit.engine import chunks as process
from ravekit.engine.decode import Decoder
from ravekit.engine.encode import Encoder
from ravekit.engine.model import load_model
from ravekit.engine.transfer import Transfer
from ravekit.merging.entries import model_labels

if TYPE_CHECKING:
    from ravekit.engine.live import Live


def render_paths(audio: str | Path, merged: Path, n_models: int, unaligned: bool = False) -> list[Path]:
    """Where the renders of ``n_models`` parents and the merged model go; with ``unaligned`` (``--align``)
    also the merge made without alignment, ``<audio stem>.<merged model stem>.unaligned.wav``."""
    stem = Path(audio).stem
    labels = model_labels(n_models)
    merged_label = merged.stem if merged.stem not in labels else "merged"
    paths = [merged.parent / f"{stem}.{label}.wav" for label in [*labels, merged_label]]
    if unaligned:
        paths.append(merged.parent / f"{stem}.{merged_label}.unaligned.wav")
    return paths


def render_comparison(audio: Path, models: Sequence[Path], outputs: Sequence[Path], seed: int | None = 0,
                      device: str = "auto", warn: Callable[[str], None] | None = None,
                      live: Live | None = None) -> list[Path]:
    """Encode/decode ``audio`` through each model; write ``outputs[i]`` for ``models[i]``.

    The audio is streamed block by block (resampled to each model's rate, its
    channels matched to the model's input) through ``engine.encode.Encoder``, and
    the latents decoded straight into the file by ``engine.decode.Decoder``, cut
    to the input's duration; chunks with measured context, as encoder.py and
    decoder.py use, so any length they handle works here without holding
    the audio in memory.  One model is in memory at a time.  ``warn`` gets
    the writer's warnings (RF64 for 4 GiB or more).  With ``live``, each model
    renders as ``[nn~ M encode] -> [nn~ M decode]`` plays (``engine.live``, as
    ``decoder.py --live``), and ``warn`` gets a non-streaming export's clicks.
    """

    chunk_seconds = process.DEFAULT_CHUNK_SECONDS  # read at call time: tests shorten it
    written = []
    for model_path, out in zip(models, outputs):
        model = load_model(model_path, device, checksum=False)
        if live is not None:
            written.append(_render_live(model, audio, out, seed, chunk_seconds, warn, live))
        else:
            for encoded in Encoder(model, seed, "auto", chunk_seconds).encode_file(audio):
                written.append(Decoder(model, seed, chunk_seconds=chunk_seconds, warn=warn).decode_to_file(encoded,
                                                                                                             out))
        del model
        gc.collect()
    return written


def _render_live(model, audio: Path, out: Path, seed: int | None, chunk_seconds: float,
                 warn: Callable[[str], None] | None, live: Live) -> Path:
    """One model's render of ``audio`` as nn~ plays it: the decoder's own live path (``Transfer``), no record."""

    transfer = Transfer(model, seed, chunk_seconds=chunk_seconds, warn=warn, live=live)
    transfer.use_encoder(Encoder(model, seed, "auto", chunk_seconds, live=live))
    assert transfer.encoder is not None
    encoded = next(iter(transfer.encoder.encode_file(audio)))
    written = transfer.decode_to_file(transfer.timing(encoded), out)
    for message in transfer.live_warnings(out.name, encoded.latent_dims):
        if warn is not None:
            warn(message)
    return written
