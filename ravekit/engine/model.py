"""Loading exported RAVE / nn~ models and reading what they know about themselves.

Everything about a model (sample rate, channels, latent size, compression
ratio) is read from the model: from its attributes where RAVE exports them,
else from the nn~ metadata buffers (``encode_params`` =
``[in_channels, in_ratio, out_channels, out_ratio]``) that every model
playable in Max or Pure Data carries.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, overload

import torch

from ravekit.errors import RavekitError, first_line
from ravekit.io.files import sha256_of

# Buffers whose names end like this hold a streaming export's convolution
# state (docs/rave-exports.md: zeroing them equals reloading the model).
STREAMING_BUFFER_SUFFIXES = (".pad", ".cache")


@contextlib.contextmanager
def quiet_jit():
    """Silence torch 2.13's DeprecationWarnings for torch.jit, and only those."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r".*torch\.jit.*deprecated", category=DeprecationWarning)
        yield


def pick_device(name: str = "auto") -> torch.device:
    """Resolve ``auto|cpu|cuda|mps`` to an available torch device.

    ``auto`` prefers CUDA, then Apple's MPS, then the CPU; asking for a device
    this machine does not have is an error rather than a silent fallback.
    """
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if has_mps else torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RavekitError("--device cuda: no CUDA device is available here; use --device cpu or auto", 2)
    if name == "mps" and not has_mps:
        raise RavekitError("--device mps: Apple MPS is not available here; use --device cpu or auto", 2)
    return torch.device(name)


@dataclass
class ModelInfo:
    """What a loaded model says about itself.

    Attributes
    ----------
    sr : int
        Audio sample rate in Hz.
    n_channels, target_channels : int
        Audio channels into ``encode`` and out of ``decode``.
    latent_size : int
        Latent dims ``encode`` returns.
    full_latent_size : int
        The model's ``full_latent_size`` attribute: the size of its internal
        latent space (128 for v2's PCA space; 16 for a spherical model's unit vector).
    decode_dims : int
        Latent dims ``decode`` takes: more are refused, fewer are filled with
        noise up to it (:func:`read_decode_dims`).
    ratio : int
        Audio samples per latent frame (``encode_params[3]``).
    discrete : bool
        The latents are codebook indices (RAVE's ``DiscreteScriptedRAVE``),
        not continuous values.
    codebook_size : int or None
        Codes per latent dim of a discrete model (valid codes are
        ``0 .. codebook_size - 1``); ``None`` for continuous models, or for a
        discrete model that does not say it.
    """

    path: str
    sr: int
    n_channels: int
    target_channels: int
    latent_size: int
    full_latent_size: int
    ratio: int
    original_name: str = "unknown"
    methods: list[str] = field(default_factory=list)
    streaming: bool = False
    has_prior: bool = False
    sha256: str = ""
    discrete: bool = False
    codebook_size: int | None = None
    decode_dims: int = 0

    def __post_init__(self):
        # Models made without it (tests, older callers) decode every full dim, as RAVE's v1/v2/v3 do.
        self.decode_dims = self.decode_dims or self.full_latent_size

    @property
    def latent_rate(self) -> float:
        """Latent frames per second, ``sr / ratio`` (not an integer in general)."""
        return self.sr / self.ratio

    def identity(self, kind: bool = True) -> dict:
        """The ``model`` section of an output's record or sidecar: file name, sha256 and, with ``kind``, RAVE's
        ``original_name``; resume compares the sha256 (:mod:`ravekit.io.records`)."""
        found = {"file": Path(self.path).name, "sha256": self.sha256}
        return {**found, "original_name": self.original_name} if kind else found

    def to_dict(self) -> dict:
        d = asdict(self)
        d["latent_rate"] = self.latent_rate
        return d


class RaveModel:
    """A loaded TorchScript model, its facts, and the device it runs on.

    Use :func:`load_model` to make one.  ``module`` is the raw ScriptModule.
    """

    def __init__(self, module: torch.jit.ScriptModule, info: ModelInfo, device: torch.device):
        self.module = module
        self.info = info
        self.device = device
        self._streaming_buffers = [
            b for name, b in module.named_buffers() if name.endswith(STREAMING_BUFFER_SUFFIXES)
        ]

    def reset_state(self) -> None:
        """Zero a streaming export's caches, so no state leaks from one file to the next."""
        with torch.no_grad():
            for b in self._streaming_buffers:
                b.zero_()

    # TorchScript's optimizing executor profiles the first calls and specialises the graph on their
    # shapes; RAVE's convolutions run no faster for it, while every new shape (each file's last
    # chunk) pays again: 0.25 s for the first call of a discrete export against 0.14 s, and about
    # 0.06 s per new shape. Outputs are bit-identical either way (checked on every shipped export).
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, channels, samples)`` float32 -> ``(batch, latent_dims, ceil(samples / ratio))``."""
        with torch.inference_mode(), torch.jit.optimized_execution(False):
            return self.module.encode(x.to(self.device)).float()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``(batch, latent_dims, frames)`` float32 -> ``(batch, target_channels, frames * ratio)``."""
        with torch.inference_mode(), torch.jit.optimized_execution(False):
            return self.module.decode(z.to(self.device)).float()


def _attr(module, name: str):
    try:
        value = getattr(module, name)
    except (AttributeError, RuntimeError):
        return None
    if isinstance(value, torch.Tensor):
        return value.tolist() if value.numel() > 1 else value.item()
    return value


def _methods(module) -> list[str]:
    try:
        return list(module.get_methods())
    except Exception:  # noqa: BLE001 - models without nn~'s get_methods
        return [m for m in ("encode", "decode", "forward") if hasattr(module, m)]


def _positive_int(value) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None
    return value


def read_codebook_size(module) -> int | None:
    """The codebook size of a discrete model, or ``None`` when it has no codebook.

    Looked up in this order (docs/rave-exports.md, ``DiscreteScriptedRAVE``):

    1. a ``codebook_size`` attribute on the model itself (forks may export one);
    2. a ``codebook_size`` attribute on a submodule: RAVE keeps it on each
       quantizer layer (``encoder.rvq.layers.N``), and its decode clamps codes
       to ``0 .. codebook_size - 1`` with it;
    3. the rows of a codebook buffer, the state_dict entry whose name ends in
       ``codebook.embed`` (``encoder.rvq.layers.0._codebook.embed``, shape
       ``(codebook_size, dim)``).
    """
    size = _positive_int(_attr(module, "codebook_size"))
    if size:
        return size
    for _, child in module.named_modules():
        size = _positive_int(_attr(child, "codebook_size"))
        if size:
            return size
    for name, buf in module.named_buffers():
        if name.endswith("codebook.embed") and buf.dim() == 2 and buf.shape[0] > 0:
            return int(buf.shape[0])
    return None


def read_decode_dims(original_name: str, decode_params: list | None, full: int) -> int:
    """How many latent dims ``decode`` takes, from the model's class and its ``decode_params``.

    RAVE's variational decoders (v1, v2, v3) take 1 to ``full_latent_size``
    dims and fill the rest of their PCA space with noise.  A spherical one
    (``SphericalScriptedRAVE``) turns exactly ``decode_params[0]`` angles
    (its ``latent_size``) into a unit vector of ``full_latent_size`` values,
    so ``full_latent_size`` dims in are a shape error (docs/rave-exports.md).
    """
    if "Spherical" in original_name and decode_params:
        return int(decode_params[0])
    return full


FACTS = ("original_name", "sr", "n_channels", "target_channels", "latent_size", "full_latent_size", "decode_dims",
         "ratio", "latent_rate", "has_prior", "discrete", "codebook_size")


def get_attr(module, name: str):
    """``module.name``, or None where TorchScript has no such attribute."""
    try:
        return getattr(module, name)
    except Exception:  # noqa: BLE001 - TorchScript raises RuntimeError or AttributeError
        return None


def as_int(value) -> int | None:
    """A whole number from a number or a one-element tensor, else None."""
    if isinstance(value, torch.Tensor):
        value = value.item() if value.numel() == 1 else None
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@overload
def read_info(module, path: str = "", strict: Literal[True] = True, notes: list[str] | None = None) -> ModelInfo: ...
@overload
def read_info(module, path: str = "", *, strict: Literal[False], notes: list[str] | None = None) -> dict: ...


def read_info(module, path: str = "", strict: bool = True, notes: list[str] | None = None) -> ModelInfo | dict:
    """Collect a model's facts from its attributes and nn~ metadata buffers: the one reading of them.

    Parameters
    ----------
    module : torch.jit.ScriptModule
        The loaded model.
    path : str
        Its file, for messages.
    strict : bool
        True (to run the model): return a :class:`ModelInfo`, raising
        ``RavekitError`` when the model lacks what the toolkit needs
        (encode/decode, a sample rate, a compression ratio).  False (to
        describe any model, as the inspector does): return a dict with the
        keys of :data:`FACTS`, ``None`` for each fact the model does not say,
        and append to ``notes`` why the strict reading failed.
    notes : list of str, optional
        Where the lenient reading says what it could not read.
    """
    if not strict:
        return _lenient_facts(module, path, [] if notes is None else notes)
    for method in ("encode", "decode"):
        if not hasattr(module, method):
            raise RavekitError(
                f"{path}: the model has no {method}() method; ravekit needs an nn~ model "
                "exported by `rave export` (encode/decode)"
            )
    enc = _attr(module, "encode_params")
    dec = _attr(module, "decode_params")
    enc = enc if isinstance(enc, list) and len(enc) == 4 else None
    dec = dec if isinstance(dec, list) and len(dec) == 4 else None

    sr = _attr(module, "sr")
    if sr is None and hasattr(module, "get_sample_rate"):
        sr = int(module.get_sample_rate())
    if not sr:
        raise RavekitError(f"{path}: the model does not say its sample rate (no `sr` attribute); is it a RAVE export?")
    ratio = enc[3] if enc else (dec[1] if dec else None)
    if not ratio:
        raise RavekitError(
            f"{path}: the model has no encode_params/decode_params buffers, so its compression ratio "
            "is unknown; re-export it with `rave export`"
        )
    latent_size = _attr(module, "latent_size") or (enc[2] if enc else None) or (dec[0] if dec else None)
    if not latent_size:
        raise RavekitError(f"{path}: the model does not say its latent size (no `latent_size` attribute and "
                           "empty encode_params/decode_params); re-export it with `rave export`")
    n_channels = _attr(module, "n_channels") or (enc[0] if enc else 1)
    target = _attr(module, "target_channels") or (dec[2] if dec else n_channels)
    full = _attr(module, "full_latent_size") or latent_size
    try:
        original = module.original_name
    except Exception:  # noqa: BLE001
        original = "unknown"
    methods = _methods(module)
    streaming = any(n.endswith(STREAMING_BUFFER_SUFFIXES) for n, _ in module.named_buffers())
    codebook_size = read_codebook_size(module)
    return ModelInfo(
        path=str(path), sr=int(sr), n_channels=int(n_channels), target_channels=int(target),
        latent_size=int(latent_size), full_latent_size=int(full), ratio=int(ratio),
        original_name=str(original), methods=methods, streaming=streaming,
        has_prior="prior" in methods, sha256="",
        discrete=codebook_size is not None or "Discrete" in str(original), codebook_size=codebook_size,
        decode_dims=read_decode_dims(str(original), dec, int(full)),
    )


def _lenient_facts(module, path: str, notes: list[str]) -> dict:
    facts: dict = dict.fromkeys(FACTS)
    try:
        info = read_info(module, path)
        facts.update({k: v for k, v in info.to_dict().items() if k in facts})
    except RavekitError as exc:
        notes.append(str(exc).split(": ", 1)[-1])
        # Gather what the model does say, one fact at a time.
        enc, dec = get_attr(module, "encode_params"), get_attr(module, "decode_params")
        enc = enc.tolist() if isinstance(enc, torch.Tensor) and enc.numel() == 4 else None
        dec = dec.tolist() if isinstance(dec, torch.Tensor) and dec.numel() == 4 else None
        facts["sr"] = as_int(get_attr(module, "sr"))
        facts["ratio"] = enc[3] if enc else (dec[1] if dec else None)
        facts["latent_size"] = as_int(get_attr(module, "latent_size")) or (enc[2] if enc else None)
        facts["n_channels"] = as_int(get_attr(module, "n_channels")) or (enc[0] if enc else None)
        facts["target_channels"] = as_int(get_attr(module, "target_channels")) or (dec[2] if dec else None)
        facts["full_latent_size"] = as_int(get_attr(module, "full_latent_size"))
        full = facts["full_latent_size"] or facts["latent_size"]
        facts["decode_dims"] = full and read_decode_dims(str(get_attr(module, "original_name")), dec, full)
        if facts["sr"] and facts["ratio"]:
            facts["latent_rate"] = facts["sr"] / facts["ratio"]
    facts["original_name"] = str(get_attr(module, "original_name") or "unknown")
    if facts["discrete"] is None:  # the strict reading failed: the codebook may still be there
        facts["codebook_size"] = read_codebook_size(module)
        facts["discrete"] = facts["codebook_size"] is not None or "Discrete" in facts["original_name"]
    return facts


def load_module(path: os.PathLike | str, device: str | torch.device = "cpu") -> torch.jit.ScriptModule:
    """``torch.jit.load`` with one clear error for every way a file can fail to be a model."""
    p = Path(path)
    if not p.exists():
        raise RavekitError(f"{p}: model file not found; check the path given to --model")
    if p.is_dir():
        raise RavekitError(f"{p}: is a folder, not a model file; pass the exported .ts file")
    if p.stat().st_size == 0:
        raise RavekitError(f"{p}: the model file is empty; copy or export it again")
    try:
        with quiet_jit():
            module = torch.jit.load(str(p), map_location=device)
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError, ValueError, ...
        hint = (
            "a training checkpoint; export it for nn~ with `rave export` first"
            if p.suffix == ".ckpt"
            else "not a TorchScript model or a truncated one; pass a .ts file exported by `rave export`"
        )
        raise RavekitError(f"{p}: cannot load the model ({first_line(exc, 100, sentence=True)}): {hint}") from None
    module.eval()
    return module


def load_model(path: os.PathLike | str, device: str = "auto", checksum: bool = True) -> RaveModel:
    """Load an exported RAVE model once, ready for inference.

    Parameters
    ----------
    path : path to the ``.ts`` file.
    device : ``auto``, ``cpu``, ``cuda`` or ``mps``.
    checksum : compute the file's sha256 for the metadata of outputs.

    Returns
    -------
    RaveModel
    """
    dev = pick_device(device) if isinstance(device, str) else device
    module = load_module(path, dev)
    info = read_info(module, str(path))
    if checksum:
        info.sha256 = sha256_of(path)
    return RaveModel(module, info, dev)
