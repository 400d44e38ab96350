"""Hearing a merge: one audio file through each parent model and the merged one.

Every model encodes and decodes the same file with the same seed, so the
renders differ only by the models' weights.  Files are written beside the
merged model as ``<audio stem>.A.wav``, ``<audio stem>.B.wav``, ... and
``<audio stem>.<merged model stem>.wav``, 32-bit float, each at its model's
sample rate and trimmed to the input's duration so they line up in an editor.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Sequence

from .merge import model_labels


def render_paths(audio: str | Path, merged: Path, n_models: int) -> list[Path]:
    """Where the renders of ``n_models`` parents and the merged model go."""
    stem = Path(audio).stem
    labels = model_labels(n_models)
    merged_label = merged.stem if merged.stem not in labels else "merged"
    return [merged.parent / f"{stem}.{label}.wav" for label in [*labels, merged_label]]


def render_comparison(audio: Path, models: Sequence[Path], outputs: Sequence[Path], seed: int | None = 0,
                      device: str = "auto") -> list[Path]:
    """Encode/decode ``audio`` through each model; write ``outputs[i]`` for ``models[i]``.

    The audio is resampled to each model's rate and its channels matched to
    the model's input; the decoded signal ``(target_channels, samples)`` is
    cut to the input's length.  Files longer than ``DEFAULT_CHUNK_SECONDS``
    go through the model in chunks with measured context, as encoder.py and
    decoder.py do, so any length they handle works here.  One model is in
    memory at a time.
    """
    from .audio import match_channels, read_audio, save_audio
    from .model import load_model
    from .process import DEFAULT_CHUNK_SECONDS, chunk_frames_for, decode_latents, encode_signal, measure_context

    written = []
    for model_path, out in zip(models, outputs):
        model = load_model(model_path, device, checksum=False)
        x, _ = read_audio(audio, sr=model.info.sr)
        x = match_channels(x, model.info.n_channels)
        chunk = chunk_frames_for(model, DEFAULT_CHUNK_SECONDS)
        if x.shape[-1] > chunk * model.info.ratio:
            ctx = measure_context(model)
            z = encode_signal(model, x, seed, chunk, ctx.encode)
            y = decode_latents(model, z, seed, chunk, ctx.decode)
        else:
            z = encode_signal(model, x, seed)
            y = decode_latents(model, z, seed)
        y = y[:, : x.shape[-1]]
        written.append(save_audio(out, y, model.info.sr))
        del model
        gc.collect()
    return written
