"""Whether an input file holds audio to encode or latents to decode: the one rule every script follows.

``.npy`` is latents and any other ending but ``.wav`` is audio.  A ``.wav``
is read by its header (:func:`input_kind`): audio runs at thousands of
samples per second, latents at ``sr / ratio`` (tens of frames per second).
"""

from __future__ import annotations

import os
from pathlib import Path

import soundfile as sf

from ravekit.errors import RavekitError
from ravekit.io.latents import AUDIO_RATE_FLOOR, Sidecar, sidecar_path
from ravekit.io.latents import FORMAT as LATENTS_FORMAT

AUDIO, LATENTS = "audio", "latents"  # the values of ravekit.choices.WAV_AS besides auto


def input_kind(path: os.PathLike | str, wav_as: str = "auto", latent_size: int | None = None,
               decide: str = "say which with --wav_as audio or --wav_as latents") -> str:
    """Whether an input holds audio to encode or latents to decode: ``AUDIO`` or ``LATENTS``.

    ``.npy`` is latents and any other ending but ``.wav`` is audio.  A WAV is
    latents when ``wav_as`` says so; with ``auto``, by its header: a rate of
    ``AUDIO_RATE_FLOOR`` (4 kHz) or more is audio (latent rates are
    ``sr / ratio``, tens of Hz); below it, a latents sidecar, more than two
    channels or exactly ``latent_size`` channels make it latents.  A low-rate
    WAV of one or two channels and nothing else to go by is refused: it may be
    either: the message ends with ``decide``, what the user can do about it
    (``--wav_as`` in the decoder).
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".npy":
        return LATENTS
    if suffix != ".wav":
        return AUDIO
    if wav_as != "auto":
        return wav_as
    try:
        info = sf.info(str(p))
    except Exception:  # noqa: BLE001 - the audio reader says what is wrong with it, with the fix
        return AUDIO
    if info.samplerate >= AUDIO_RATE_FLOOR:
        return AUDIO
    if Sidecar.read(p).format == LATENTS_FORMAT or info.channels > 2 or info.channels == latent_size:
        return LATENTS
    raise RavekitError(
        f"{p}: a {info.samplerate} Hz WAV of {info.channels} channel{'s' if info.channels > 1 else ''} without a "
        f"latents sidecar ({sidecar_path(p).name}) may be low-rate audio or latents; {decide}")
