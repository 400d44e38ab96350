"""The two containers of a latent array, without the sidecar: ``.npy`` and latent WAV.

Readers return float32 ``(1, latent_dims, frames)`` and refuse what is not
latents with one line naming the file; writers are atomic.  The sidecar and
the artifact that joins both are in :mod:`ravekit.io.latents`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ravekit.errors import RavekitError
from ravekit.io.audio import truncated_error
from ravekit.io.files import atomic_write
from ravekit.io.header import truncation
from ravekit.io.writer import save_audio


def check_array(z: np.ndarray, path: os.PathLike | str) -> np.ndarray:
    """Validate and normalise to float32 ``(1, dims, frames)``."""
    if z.dtype.kind not in "fiu":
        raise RavekitError(f"{path}: latents must be numbers, found dtype {z.dtype}; re-encode the audio")
    if z.ndim == 2:
        z = z[None]
    if z.ndim != 3 or z.shape[0] != 1:
        raise RavekitError(
            f"{path}: latents have shape {z.shape}; expected (1, latent_dims, frames) or (latent_dims, frames)"
        )
    if z.shape[1] == 0 or z.shape[2] == 0:
        raise RavekitError(f"{path}: latents are empty (shape {z.shape}); re-encode the audio")
    z = np.ascontiguousarray(z, dtype=np.float32)
    if not np.isfinite(z).all():
        raise RavekitError(f"{path}: latents contain NaN or infinite values; regenerate the file")
    return z


def load_npy(path: os.PathLike | str) -> np.ndarray:
    """Read a ``.npy`` latent array as float32 ``(1, dims, frames)``, never unpickling."""
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except FileNotFoundError:
        raise RavekitError(f"{path}: file not found") from None
    except OSError as exc:
        raise RavekitError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    if magic != b"\x93NUMPY":
        # numpy would call any such file "pickled data": name what it really is.
        what = "an .npz archive" if magic.startswith(b"PK") else "not a .npy file (no NumPy header)"
        raise RavekitError(f"{path}: {what}; pass .npy latents written by encoder.py or np.save")
    try:
        z = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise RavekitError(f"{path}: file not found") from None
    except ValueError as exc:
        reason = "it holds pickled objects, which are never loaded" if "pickle" in str(exc) else str(exc)
        raise RavekitError(f"{path}: not a plain numeric .npy array ({reason}); re-encode the audio") from None
    except (OSError, EOFError) as exc:
        raise RavekitError(f"{path}: cannot read the .npy file ({exc}); it may be truncated") from None
    return check_array(z, path)


def write_npy(path: os.PathLike | str, z: np.ndarray) -> Path:
    """Write a checked ``(1, dims, frames)`` float32 array as ``.npy``, atomically."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, z, allow_pickle=False)

    return atomic_write(path, write)


# Latent rates are sr / ratio: tens of Hz (at most a few hundred for any real
# ratio). A WAV whose header says more is audio, and decoding it as latents
# would write hours of noise.
AUDIO_RATE_FLOOR = 4000


def check_latent_wav_rate(path: os.PathLike | str, rate: int) -> None:
    """Refuse a WAV whose header rate says it holds audio, not latents."""
    if rate >= AUDIO_RATE_FLOOR:
        raise RavekitError(f"{path}: a WAV at {rate} Hz is audio, not latents; encode it with encoder.py first "
                           "(or leave .wav out of --extensions)")


def read_latent_wav(path: os.PathLike | str) -> tuple[np.ndarray, int]:
    """Read a latent WAV: returns float32 ``(1, dims, frames)`` and the header rate."""
    import soundfile as sf


    try:
        rate = sf.info(str(path)).samplerate
        check_latent_wav_rate(path, rate)
        cut = truncation(path)
        if cut:
            raise truncated_error(path, *cut, rate, "write it again (generator.py) or copy it again")
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except RavekitError:
        raise
    except Exception as exc:  # noqa: BLE001 - soundfile raises several types
        raise RavekitError(f"{path}: cannot read the latent WAV ({exc}); is it a WAV written by generator.py?") \
            from None
    return check_array(data.T[None], path), int(rate)


def write_latent_wav(path: os.PathLike | str, z: np.ndarray, rate: int, double: bool = False,
                     warn: Callable[[str], None] | None = None) -> Path:
    """Write a checked ``(1, dims, frames)`` array as a WAV of ``dims`` channels at header rate ``rate``.

    32-bit float by default: Pure Data 0.53 cannot read 64-bit WAVs.  The same
    array always gives the same bytes (``writer.save_audio``); ``warn`` hears
    when the length needs RF64.
    """

    return save_audio(path, z[0].astype(np.float64 if double else np.float32), rate,
                      "DOUBLE" if double else "FLOAT", warn=warn)
