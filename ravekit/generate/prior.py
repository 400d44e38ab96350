"""MSPrior models (``msprior export``): recognising, checking and running them offline.

An MSPrior export (TorchScript class ``ScriptedPrior``) is an nn~ model with
one method, ``forward``, whose ``forward_params`` are ``[N, ratio, N + 1,
ratio]``: it takes the ``N`` latent dims of one RAVE model at that model's
latent rate.  With ``listen`` on it quantizes what it is given into its
tokens and remembers it (the *prompt*); with ``listen`` off it generates as
many new frames as its input is long, one by one, each from the frames
before, and ignores the input's values.  Output channel ``N`` is perplexity.

Measured on real exports (docs/rave-exports.md, "MSPrior models"):

- the exported ``reset`` attribute does not reset: the attention caches and
  the last heard frame (``previous_step``) survive from call to call, so
  :meth:`Prior.reset` puts every buffer back as loaded and zeroes the cache
  counters, which equals reloading the file;
- after that and ``torch.manual_seed``, generation is bit-identical for a
  seed, in any process; continuous priors draw ``rand_like`` noise when they
  turn tokens back into latents, at the end of each call, so the number of
  frames per call is part of what reproduces a result (:data:`CHUNK_FRAMES`);
- the context is ``seq_len`` frames and rolls over, so generation goes on
  past it; a prompt longer than ``seq_len`` in one call fails, and only the
  last ``seq_len`` frames of a prompt are heard.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ravekit.engine.layout import use_threads
from ravekit.engine.model import load_module
from ravekit.errors import RavekitError, first_line
from ravekit.io.files import sha256_of

# Buffers holding a prior's running state (docs/rave-exports.md): zeroed by reset().
STATE_MARKERS = ("_cache_length", "_relative_index", "_state", "last_")
# Frames per generating call: fixed, because the dequantizing noise is drawn per call.
CHUNK_FRAMES = 64
# Frames of encoded silence a prior hears when no prompt is given.
SILENCE_FRAMES = 16
PRIOR_ATTRIBUTES = ("temperature", "listen")


@dataclass
class PriorInfo:
    """What an MSPrior export says about itself.

    Attributes
    ----------
    latent_size : int
        ``latent_dims`` of the RAVE model it was trained on (``forward_params[0]``).
    ratio : int
        That model's compression ratio (``forward_params[1]``).
    discrete : bool
        Trained on codes of a discrete RAVE model (``from_continuous`` false).
    num_tokens : int or None
        Tokens per dim: quantization bins of continuous latents, or the codebook size.
    seq_len : int or None
        Frames of context it attends to.
    """

    path: str
    latent_size: int
    ratio: int
    discrete: bool
    num_tokens: int | None = None
    seq_len: int | None = None
    num_rave_quantizers: int | None = None
    original_name: str = "unknown"
    attributes: dict = field(default_factory=dict)
    sha256: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _plain(value):
    if isinstance(value, torch.Tensor):
        return value.tolist() if value.numel() > 1 else value.item()
    if isinstance(value, tuple) and len(value) == 1:  # nn~ attribute getters return 1-tuples
        return value[0]
    return value


def _attr(module, name: str):
    try:
        return _plain(getattr(module, name))
    except (AttributeError, RuntimeError):
        return None


def prior_facts(module, path: os.PathLike | str = "") -> PriorInfo | None:
    """The facts of an MSPrior export, or ``None`` when ``module`` is not one.

    A prior is recognised by what nn~ needs to drive it: ``forward_params``
    of four numbers with ``N + 1`` outputs, and the ``listen`` and
    ``temperature`` attributes with their setters.
    """
    params = _attr(module, "forward_params")
    if not (isinstance(params, list) and len(params) == 4):
        return None
    if not all(hasattr(module, f"set_{a}") for a in PRIOR_ATTRIBUTES):
        return None
    n, ratio, n_out, _ = (int(v) for v in params)
    if n < 1 or ratio < 1 or n_out != n + 1:
        return None
    attrs = {}
    try:
        names = list(module.get_attributes())
    except Exception:  # noqa: BLE001 - nn~'s attribute list is optional
        names = []
    for name in names:
        getter = getattr(module, f"get_{name}", None)
        try:
            attrs[name] = _plain(getter()) if getter is not None else None
        except Exception:  # noqa: BLE001 - a getter that fails is reported as unknown
            attrs[name] = None
    from_continuous = _attr(module, "from_continuous")
    return PriorInfo(
        path=str(path), latent_size=n, ratio=ratio, discrete=from_continuous is False,
        num_tokens=_attr(module, "num_tokens"), seq_len=_attr(module, "seq_len"),
        num_rave_quantizers=_attr(module, "num_rave_quantizers"),
        original_name=str(_attr(module, "original_name") or "unknown"), attributes=attrs)


class Prior:
    """A loaded MSPrior export that runs from a clean state every time.

    Use :func:`load_prior` to make one.
    """

    def __init__(self, module, info: PriorInfo):
        self.module = module
        self.info = info
        # As loaded: reset() restores these, so no call leaks into the next file.
        self._loaded = {name: b.detach().clone() for name, b in module.named_buffers()}

    def reset(self) -> None:
        """Put the prior back as loaded, with empty caches (the exported ``reset`` does not)."""
        # Inside inference mode: buffers the prior replaced during an inference call are inference tensors.
        with torch.inference_mode():
            for name, buf in self.module.named_buffers():
                if any(m in name for m in STATE_MARKERS):
                    buf.zero_()
                elif name in self._loaded and buf.shape == self._loaded[name].shape:
                    buf.copy_(self._loaded[name])

    def _call(self, x: torch.Tensor, listen: bool) -> np.ndarray:
        self.module.set_listen(listen)
        with torch.inference_mode():
            y = self.module(x)
        return y[0, :self.info.latent_size].float().numpy()

    def generate(self, frames: int, *, seed: int, prompt: np.ndarray | None, temperature: float = 1.0,
                 progress: Callable[[int], None] | None = None) -> np.ndarray:
        """``frames`` new latent frames.

        Parameters
        ----------
        frames : int >= 0
            Latent frames to generate (any number: the context rolls over).
        seed : int
            Seeds torch right after the reset, so the result depends on
            nothing generated before.
        prompt : np.ndarray [shape=(latent_dims, prompt_frames)] or None
            Latents the prior hears first (the last ``seq_len`` frames of
            them); ``None`` hears nothing.  ``latent_dims`` is the prior's
            ``info.latent_size``.
        temperature : float >= 0
            The prior's sampling temperature (0 = most likely token).
        progress : callable(int) or None
            Called with the number of frames generated so far, after each call.

        Returns
        -------
        z : np.ndarray [shape=(frames, latent_dims), dtype=float32]
        """
        # One frame at a time is a chain of tiny matrix products: threads only add overhead
        # (measured 2.5 ms per frame on one thread, 8 ms on two, same results bit for bit).
        use_threads(1)
        out = self._generate(frames, seed, prompt, temperature, progress)
        if not np.isfinite(out).all():
            raise RavekitError(f"{self.info.path}: the prior produced NaN or infinite latents; "
                               "try a lower --temperature, or check the prior")
        return out

    def _generate(self, frames: int, seed: int, prompt: np.ndarray | None, temperature: float,
                  progress: Callable[[int], None] | None) -> np.ndarray:
        n = self.info.latent_size
        self.reset()
        torch.manual_seed(seed)
        self.module.set_temperature(float(temperature))
        if prompt is not None and prompt.shape[1]:
            heard = prompt[:, -self.info.seq_len:] if self.info.seq_len else prompt
            self._call(torch.from_numpy(np.ascontiguousarray(heard, dtype=np.float32))[None], listen=True)
        out = np.empty((frames, n), dtype=np.float32)  # the one array that grows with the length
        done = 0
        while done < frames:
            step = min(CHUNK_FRAMES, frames - done)
            out[done:done + step] = self._call(torch.zeros(1, n, step), listen=False).T
            done += step
            if progress:
                progress(done)
        return out


def load_prior(path: os.PathLike | str, checksum: bool = True) -> Prior:
    """Load an MSPrior export, refusing any other model with a line that says what it is."""

    try:
        module = load_module(path, "cpu")
    except RavekitError as exc:  # its hint names RAVE's export; a prior comes from msprior's
        raise RavekitError(str(exc).replace("`rave export`", "`msprior export`").replace("--model", "--prior"),
                           exc.exit_code) from None
    info = prior_facts(module, path)
    if info is None:
        if hasattr(module, "encode") and hasattr(module, "decode"):
            raise RavekitError(f"{path}: is a RAVE model (it has encode/decode), not an MSPrior prior; pass it "
                               "with --model and a prior exported by `msprior export` with --prior", 2)
        raise RavekitError(f"{path}: not an MSPrior prior (no forward_params [N, ratio, N+1, ratio] with listen and "
                           "temperature attributes); pass a model exported by `msprior export`", 2)
    if checksum:
        info.sha256 = sha256_of(path)
    return Prior(module, info)


def check_fit(prior: PriorInfo, model, model_file: str) -> None:
    """Refuse a prior made for another RAVE model than ``model`` (a :class:`~ravekit.engine.model.ModelInfo`)."""
    p, m = prior, model

    def kind(discrete: bool) -> str:
        return "discrete codes" if discrete else "continuous latents"

    problems = []
    if p.latent_size != m.latent_size:
        problems.append(f"{p.latent_size} latent dims, but the model has {m.latent_size}")
    if p.ratio != m.ratio:
        problems.append(f"ratio {p.ratio}, but the model's is {m.ratio}")
    if p.discrete != m.discrete:
        problems.append(f"{kind(p.discrete)}, but the model makes {kind(m.discrete)}")
    elif p.discrete and m.codebook_size and p.num_tokens and p.num_tokens != m.codebook_size:
        problems.append(f"a codebook of {p.num_tokens}, but the model's has {m.codebook_size}")
    if problems:
        raise RavekitError(f"{p.path} does not fit {model_file}: the prior expects {'; '.join(problems)}; "
                           "use the prior trained on this RAVE model", 2)


def silence_prompt(model, seed: int, frames: int = SILENCE_FRAMES) -> np.ndarray:
    """What the RAVE ``model`` makes of silence, seeded (encode samples).

    Parameters
    ----------
    model : ravekit.engine.model.RaveModel
    seed : int
    frames : int > 0
        Latent frames of silence to encode.

    Returns
    -------
    z : np.ndarray [shape=(latent_dims, frames), dtype=float32]
        ``latent_dims`` is the model's ``info.latent_size``.
    """
    info = model.info
    model.reset_state()
    torch.manual_seed(seed)
    z = model.encode(torch.zeros(1, info.n_channels, frames * info.ratio))
    return z[0].cpu().numpy().astype(np.float32)


def prior_sidecar(prior: PriorInfo, temperature: float, prompt: dict) -> dict:
    """The ``prior`` section of a generated file's sidecar."""
    return {"file": Path(prior.path).name, "sha256": prior.sha256, "temperature": temperature,
            "latent_size": prior.latent_size, "ratio": prior.ratio, "num_tokens": prior.num_tokens,
            "seq_len": prior.seq_len, "chunk_frames": CHUNK_FRAMES, "prompt": prompt}


def describe_error(path, exc: Exception) -> RavekitError:
    """A prior's TorchScript failure as one line naming the file."""
    return RavekitError(f"{path}: the prior failed ({first_line(exc)})")
