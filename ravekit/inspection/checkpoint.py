"""Training checkpoints (``.ckpt``), read without running any code they carry.

A checkpoint is a pickle, and a pickle can run arbitrary code when it is
unpickled in full.  Checkpoints are untrusted input here, so they are only
ever opened with ``torch.load(weights_only=True)``, which accepts tensors and
plain data (dicts, lists, numbers, strings) and refuses everything else.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from pathlib import Path

import torch

from ravekit.errors import RavekitError, first_line

CHECKPOINT_SUFFIXES = (".ckpt", ".pth")
# Keys under which Lightning, RAVE and Stable Audio Tools store a run's settings.
CONFIG_KEYS = ("hyper_parameters", "hparams", "config", "model_config", "args")
# How far up from a checkpoint to look for a RAVE run's config.gin:
# runs/NAME/config.gin beside runs/NAME/version_0/checkpoints/best.ckpt.
GIN_LEVELS = 3


def load_checkpoint(path: os.PathLike | str) -> dict:
    """Read a checkpoint with ``torch.load(weights_only=True)``, on the CPU.

    Returns
    -------
    dict
        The checkpoint's top-level dict.

    Raises
    ------
    RavekitError
        When the file is missing, not a checkpoint, or holds Python objects
        that cannot be read safely (the pickle is never executed).
    """
    p = Path(path)
    if not p.is_file():
        raise RavekitError(f"{p}: checkpoint not found; check the path given to --input")
    if p.stat().st_size == 0:
        raise RavekitError(f"{p}: the checkpoint file is empty; copy it again")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = torch.load(str(p), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        what = f" ({found.group(1)})" if found else ""
        raise RavekitError(
            f"{p}: could not be read safely: it contains Python objects{what} beyond tensors and plain "
            "data, and unpickling them could run code; it was not loaded. Re-save the weights from a "
            "trusted Python session with torch.save(ckpt['state_dict'], ...), or export the model with `rave export`"
        ) from None
    except RuntimeError as exc:
        if "TorchScript" in str(exc):
            raise RavekitError(f"{p}: is a TorchScript model, not a checkpoint; rename it to .ts") from None
        raise RavekitError(f"{p}: not a readable PyTorch checkpoint ({first_line(exc, 120)}); copy it again") from None
    except Exception as exc:  # noqa: BLE001 - truncated zips raise KeyError, EOFError, ...
        raise RavekitError(
            f"{p}: not a readable PyTorch checkpoint ({type(exc).__name__}: {first_line(exc, 120)}); "
            "it may be truncated or another kind of file"
        ) from None
    if isinstance(data, dict):
        return data
    raise RavekitError(f"{p}: the checkpoint holds a {type(data).__name__}, not a dict of weights; nothing to inspect")


def checkpoint_state_dict(ckpt: dict) -> dict[str, torch.Tensor]:
    """The model weights of a checkpoint, as ``name -> tensor``.

    Lightning (RAVE, Stable Audio Tools) keeps them under ``state_dict``;
    a bare ``torch.save(model.state_dict())`` is the dict itself.  Tensors
    nested in sub-dicts get dotted names.
    """
    for key in ("state_dict", "model", "module"):
        if isinstance(ckpt.get(key), dict):
            return _flatten_tensors(ckpt[key])
    return _flatten_tensors({k: v for k, v in ckpt.items() if k not in ("optimizer_states", "lr_schedulers")})


def _flatten_tensors(tree: dict, prefix: str = "") -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, torch.Tensor):
            out[name] = value
        elif isinstance(value, dict):
            out.update(_flatten_tensors(value, name + "."))
    return out


def find_config_gin(path: os.PathLike | str) -> Path | None:
    """The ``config.gin`` of the RAVE run a checkpoint belongs to, if any."""
    folder = Path(path).resolve().parent
    for _ in range(GIN_LEVELS):
        candidate = folder / "config.gin"
        if candidate.is_file():
            return candidate
        if folder.parent == folder:
            break
        folder = folder.parent
    return None


def stored_config(path: os.PathLike | str, ckpt: dict | None) -> list[tuple[str, object]]:
    """Every training configuration found for a model or checkpoint.

    Returns
    -------
    list of (source, config)
        ``source`` says where it came from (a file path or ``FILE [key]``);
        ``config`` is the text of a config.gin or the stored dict.
    """
    found: list[tuple[str, object]] = []
    gin = find_config_gin(path)
    if gin is not None:
        try:
            found.append((str(gin), gin.read_text(encoding="utf-8", errors="replace")))
        except OSError as exc:
            raise RavekitError(f"{gin}: cannot read ({exc.strerror}); check its permissions") from None
    for key in CONFIG_KEYS:
        if ckpt is not None and ckpt.get(key) not in (None, {}, []):
            found.append((f"{path} [{key}]", ckpt[key]))
    return found


def gin_value(text: str, name: str):
    """A scalar binding ``NAME = value`` from config.gin text, or ``None``."""
    match = re.search(rf"^\s*{re.escape(name)}\s*=\s*([-\w.]+)\s*$", text, re.MULTILINE)
    if not match:
        return None
    raw = match.group(1)
    try:
        return int(raw)
    except ValueError:
        try:
            return float(raw)
        except ValueError:
            return raw


def checkpoint_facts(path: os.PathLike | str, ckpt: dict) -> dict:
    """What a checkpoint says about its run: epoch, step, versions, sample rate.

    Values not stored are ``None``.
    """
    hp: dict = next((ckpt[k] for k in CONFIG_KEYS if isinstance(ckpt.get(k), dict)), {})
    sr = next((hp[k] for k in ("sr", "sample_rate", "sampling_rate") if isinstance(hp.get(k), int)), None)
    latent = next((hp[k] for k in ("latent_size", "latent_dim") if isinstance(hp.get(k), int)), None)
    gin = find_config_gin(path)
    if gin is not None and (sr is None or latent is None):
        text = gin.read_text(encoding="utf-8", errors="replace")
        sr = sr if sr is not None else gin_value(text, "SAMPLING_RATE")
        latent = latent if latent is not None else gin_value(text, "LATENT_SIZE")
    return {
        "epoch": ckpt.get("epoch") if isinstance(ckpt.get("epoch"), int) else None,
        "global_step": ckpt.get("global_step") if isinstance(ckpt.get("global_step"), int) else None,
        "lightning_version": ckpt.get("pytorch-lightning_version"),
        "sr": sr if isinstance(sr, int) else None,
        "latent_size": latent if isinstance(latent, int) else None,
        "config_gin": str(gin) if gin else None,
    }
