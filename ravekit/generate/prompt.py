"""The prompt an MSPrior hears before it generates: latents, audio its RAVE model encodes, or silence.

Files are audio or latents by the rule every script follows
(:func:`ravekit.io.kind.input_kind`).  Only the last ``seq_len`` frames of a
prompt are heard (:mod:`ravekit.generate.prior`), so only those are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ravekit.engine.encode import Encoder
from ravekit.errors import RavekitError
from ravekit.generate.plan import Warn
from ravekit.generate.prior import SILENCE_FRAMES, silence_prompt
from ravekit.io.codes import check_codes
from ravekit.io.files import sha256_of
from ravekit.io.kind import AUDIO, input_kind
from ravekit.io.latents import Latents


def read_prompt(files: Sequence[Path], model, prior, seed: int,
                warn: Warn | None = None) -> tuple[np.ndarray | None, dict]:
    """The prompt from ``files`` in order, and its sidecar record.

    Without files the prompt is silence as ``model`` encodes it.

    Parameters
    ----------
    files : sequence of pathlib.Path
        Latent files or audio (encoded by ``model``).
    model : ravekit.engine.model.RaveModel
        The RAVE model the prior was trained on.
    prior : ravekit.generate.prior.Prior
    seed : int
    warn : callable(str) or None
        Hears about latents whose sidecar names another model (or ratio) than ``model``, as the decoder
        says of latents it decodes: the prior would hear them as ``model``'s.

    Returns
    -------
    prompt : np.ndarray [shape=(latent_dims, frames), dtype=float32] or None
        At most the prior's ``seq_len`` last frames.
    record : dict
        The ``prompt`` section of the outputs' sidecars.
    """
    p = prior.info
    if not files:
        z = silence_prompt(model, seed)
        return z, {"source": "silence", "frames": SILENCE_FRAMES, "encoded_by": Path(model.info.path).name}
    tail = np.zeros((p.latent_size, 0), dtype=np.float32)
    record: list[dict[str, Any]] = []
    for f in files:
        audio = input_kind(f, latent_size=p.latent_size,
                           decide="give it its sidecar, or save the latents as .npy") == AUDIO
        if audio:
            z = next(iter(Encoder(model, seed=seed).encode_file(f))).z[0]
        else:
            latents = Latents.load(f)
            z = latents.z[0]
            for found in latents.sidecar.mismatches(model.info, ("ratio", "model")):
                if warn is None:
                    continue
                name = Path(model.info.path).name
                if found.what == "ratio":
                    warn(f"{f}: made for compression ratio {found.recorded}, but {name} and its prior run at "
                         f"{model.info.ratio}; the prior hears the prompt at the wrong speed")
                else:
                    warn(f"{f}: encoded with {found.recorded or 'another model'}, but the prior belongs to {name}; "
                         f"it hears the prompt as {name}'s latents (prompt it with latents of {name}, or audio)")
        if z.shape[0] != p.latent_size:
            raise RavekitError(f"{f}: has {z.shape[0]} latent dims, but the prior {p.path} takes {p.latent_size}; "
                               "prompt it with latents of its RAVE model (or audio)")
        if p.discrete:
            check_codes(z, p.num_tokens, f, f"the prior's {p.num_tokens} codes", "prompt it with codes of its model")
        tail = np.concatenate([tail, z.astype(np.float32)], axis=1)
        if p.seq_len:  # only the last seq_len frames are heard: keeping just those bounds memory
            tail = tail[:, -p.seq_len:]
        record.append({"file": str(f), "sha256": sha256_of(f), "frames": int(z.shape[1]), "audio": audio})
    prompt = tail
    total = sum(r["frames"] for r in record)
    return prompt, {"source": "input", "files": record, "frames": total, "heard": int(prompt.shape[1])}
