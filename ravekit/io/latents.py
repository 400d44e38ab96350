"""Latent file formats: the contract between every script of the toolkit.

Two containers hold the same array:

``.npy``
    float32, shape ``(1, latent_dims, frames)``, exactly what ``model.encode``
    returns, so ``model.decode(torch.from_numpy(np.load(f)))`` works.  Readers
    also accept ``(latent_dims, frames)`` (files from other tools).
latent WAV
    32-bit float WAV with ``frames`` sample frames of ``latent_dims`` channels,
    header rate ``round(sr / ratio)``; Pure Data plays it from tables.

Either may have a JSON sidecar with the same stem (``song.npy`` ->
``song.json``) holding what the array alone cannot say: the exact latent
rate, the model, the source and the seed.  Readers work without it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ravekit import __version__
from ravekit.choices import LATENT_EXTENSIONS  # noqa: F401 (re-exported)
from ravekit.errors import RavekitError
from ravekit.io.files import atomic_write, read_json, write_json

FORMAT = "ravekit.latents"
FORMAT_VERSION = 1
PD_MAX_CHANNELS = 64


def sidecar_path(path: os.PathLike | str) -> Path:
    """``song.npy`` -> ``song.json``."""
    return Path(path).with_suffix(".json")


def make_sidecar(*, sr: int, ratio: int, latent_dims: int, frames: int, n_channels: int | None = None,
                 model: dict | None = None, source: dict | None = None, seed: int | None = None,
                 created_by: str = "", **extra) -> dict:
    """The sidecar dict for a latent array.

    Parameters
    ----------
    sr : audio sample rate of the model, Hz.
    ratio : audio samples per latent frame.
    latent_dims, frames : the array's shape ``(1, latent_dims, frames)``.
    model : ``{"file": name, "sha256": hex}`` of the model that made it.
    source : what it was made from (``file``, ``samples``, ``duration``, ...).
    extra : further sections (e.g. ``generator``), stored as given.
    """
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "ravekit_version": __version__,
        "created_by": created_by,
        "sr": int(sr),
        "ratio": int(ratio),
        "latent_rate": sr / ratio,
        "latent_dims": int(latent_dims),
        "frames": int(frames),
        "n_channels": n_channels,
        "model": model,
        "source": source,
        "seed": seed,
    }
    meta.update(extra)
    return meta


def read_sidecar(path: os.PathLike | str) -> dict:
    """The sidecar of a latent file, or ``{}`` when there is none (UnRAVEl files)."""
    side = sidecar_path(path)
    if not side.exists():
        return {}
    meta = read_json(side)
    version = meta.get("format_version", 1)
    if meta.get("format") == FORMAT and isinstance(version, int) and version > FORMAT_VERSION:
        raise RavekitError(f"{side}: written by a newer ravekit (format {version}); upgrade ravekit")
    return meta


def _check_array(z: np.ndarray, path: os.PathLike | str) -> np.ndarray:
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
    return _check_array(z, path)


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

    from ravekit.io.audio import truncated_error
    from ravekit.io.header import truncation

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
    return _check_array(data.T[None], path), int(rate)


def load_latents(path: os.PathLike | str) -> tuple[np.ndarray, dict]:
    """Read latents from ``.npy`` or latent WAV, with their sidecar.

    Returns
    -------
    z : float32 array, shape ``(1, latent_dims, frames)``
    meta : the sidecar dict (``{}`` if absent); for WAVs, ``header_rate`` is added.
    """
    p = Path(path)
    if p.suffix.lower() == ".wav":
        z, rate = read_latent_wav(p)
        meta = dict(read_sidecar(p))
        meta.setdefault("header_rate", rate)
    else:
        z = load_npy(p)
        meta = read_sidecar(p)
    return z, meta


def save_npy(path: os.PathLike | str, z: np.ndarray, meta: dict | None = None) -> Path:
    """Write ``z`` (``(1, dims, frames)``) as float32 ``.npy`` plus its sidecar, atomically.

    The sidecar goes first so that an existing ``.npy`` always has its sidecar
    (resumed runs treat the ``.npy`` as the mark of a finished file).
    """
    z = _check_array(np.asarray(z), path)
    if meta is not None:
        write_json(sidecar_path(path), meta)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, z, allow_pickle=False)

    return atomic_write(path, write)


def save_latent_wav(path: os.PathLike | str, z: np.ndarray, sr: int, ratio: int,
                    meta: dict | None = None, double: bool = False,
                    warn: Callable[[str], None] | None = None) -> Path:
    """Write ``z`` (``(1, dims, frames)`` or ``(dims, frames)``) as a latent WAV.

    The header rate is ``round(sr / ratio)``; the exact rate goes in the
    sidecar.  32-bit float by default: Pure Data 0.53 cannot read 64-bit WAVs.
    The same array always gives the same bytes (``audio_write.save_audio``);
    ``warn`` hears when the length needs RF64.
    """
    from ravekit.io.writer import save_audio

    z = _check_array(np.asarray(z), path)
    rate = max(1, int(round(sr / ratio)))
    if meta is not None:
        write_json(sidecar_path(path), meta)
    return save_audio(path, z[0].astype(np.float64 if double else np.float32), rate,
                      "DOUBLE" if double else "FLOAT", warn=warn)
