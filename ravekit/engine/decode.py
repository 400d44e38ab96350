"""Latents -> audio files: the work behind ``decoder.py``, importable on its own.

>>> from ravekit.engine.model import load_model
>>> from ravekit.io.latents import Latents
>>> dec = Decoder(load_model("model.ts"))
>>> latents = Latents.load("song.npy")
>>> for block in dec.decode(latents):   # float32 (target_channels, n) at the model's sr
...     pass
>>> dec.decode_to_file(latents, "song.wav")   # or straight into a file
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ravekit.engine.chunks import DEFAULT_CHUNK_SECONDS, chunk_frames_for, decode_chunks, measure_context
from ravekit.engine.latency import measure_latency
from ravekit.engine.layout import cpu_kernels, layout_record
from ravekit.engine.live import Jumps, Live, check_live, live_decode, nn_latency
from ravekit.engine.model import RaveModel
from ravekit.errors import RavekitError, first_line, shown
from ravekit.io.channels import spans
from ravekit.io.codes import check_codes
from ravekit.io.files import OutputSet, write_json
from ravekit.io.latents import Latents, Sidecar, sidecar_path
from ravekit.io.records import (
    make_record,
    read_record,
    record_path,
    settings_differences,
    source_identity,
    stale_error,
)
from ravekit.io.writer import AudioWriter


def check_latents(latents: Latents, model: RaveModel, path: os.PathLike | str) -> list[str]:
    """Refuse latents the model cannot decode; return warnings for doubtful ones.

    More dims than the model's ``decode_dims`` is an
    error; a count other than ``latent_size`` or metadata from another model
    is a warning (RAVE fills missing dims with noise).  A discrete model takes
    only codes: fewer than ``latent_size`` dims, or a value in its code dims
    that is not a whole number in ``0 .. codebook_size - 1``, is an error (the
    model itself would clamp and truncate it silently).
    """
    m = model.info
    z, dims = latents.z, latents.latent_dims
    name = Path(m.path).name
    if dims > m.decode_dims:
        raise RavekitError(
            f"{path}: {dims} latent dims, but {name} decodes at most {m.decode_dims}; "
            "decode with the model that made these latents")
    if m.discrete:
        if dims < m.latent_size:
            raise RavekitError(f"{path}: {dims} latent dims, but {name} is a discrete model and needs all "
                               f"{m.latent_size} code dims; decode codes made by its encoder or generator.py")
        check_codes(z[0, :m.latent_size], m.codebook_size, path, name,
                    "decode codes made by this model's encoder, or generator.py from their statistics")
    warnings = []
    if m.discrete and dims > m.latent_size:
        # The model reads its code dims only: the rest would go without a word.
        warnings.append(f"{path}: dims {spans(list(range(m.latent_size, dims)))} are ignored: a discrete model "
                        f"decodes only its {m.latent_size} code dims")
    elif dims != m.latent_size:
        warnings.append(f"{path}: {dims} latent dims, the model's latent_size is {m.latent_size}"
                        + ("; the missing dims are filled with noise" if dims < m.latent_size else ""))
    for found in latents.sidecar.mismatches(m, ("ratio", "model")):
        if found.what == "ratio":
            warnings.append(f"{path}: made for compression ratio {found.recorded}, the model's is {m.ratio}; "
                            "timing will differ from the source")
        else:
            warnings.append(f"{path}: encoded with {found.recorded or 'another model'}, decoding with {name}")
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
    warn : called with warnings about what is written (RF64, clipping); default ``warnings.warn``.
    live : decode as nn~ does (:mod:`ravekit.engine.live`) instead of the clean offline way.
    """

    def __init__(self, model: RaveModel, seed: int | None = 0, subtype: str = "FLOAT",
                 chunk_seconds: float = DEFAULT_CHUNK_SECONDS, trim: bool = True,
                 warn: Callable[[str], None] | None = None, live: Live | None = None):
        self.model, self.seed, self.subtype, self.trim, self.warn = model, seed, subtype, trim, warn
        if live is not None:
            check_live(live, model.info, ("decode",))
        self.live = live
        self.jumps: Jumps | None = None  # of the last live decode of a non-streaming export
        self.context = measure_context(model, ("decode",)).decode if chunk_seconds > 0 else None
        self.chunk = chunk_frames_for(model, chunk_seconds) if chunk_seconds > 0 else 1
        # Samples a streaming export's audio comes late; compensated, so output starts with the source.
        self.latency = measure_latency(model, ("decode",)).decode
        # With the seed, the model and the latents, what makes the bytes (see records.py).
        self.processing = {
            "subtype": subtype,
            "trim": trim,
            "chunk_frames": self.chunk if self.context is not None else None,
            "context_frames": self.context,
            "latency_samples": self.latency,
            "device": str(model.device),
            "layout": layout_record(),
            "cpu_kernels": cpu_kernels() if model.device.type == "cpu" else None,
            # A live render is another result than the offline one: resume tells them apart (records.py).
            "live": live.record() if live is not None else None,
        }

    def _trim_to(self, sidecar: Sidecar) -> int | None:
        """Samples to keep (the source's length), or None to keep every decoded sample."""
        m = self.model.info
        limit = sidecar.source_samples if self.trim else None
        # The source's length is counted at the encoding model's rate and ratio:
        # it only applies when this model shares them.
        same_timing = sidecar.sr in (None, m.sr) and sidecar.ratio in (None, m.ratio)
        if limit is None or not same_timing:
            return None
        if self.live is not None:
            return limit  # a live decode counts nn~'s delays itself (engine.live)
        # Latents of encoder.py --live start late by nn~'s delay (kept): decoded offline, the source's length
        # ends that much later.
        live = sidecar.processing.get("live")
        delay = live.get("delay_frames") if isinstance(live, dict) else None
        return limit + delay * m.ratio if isinstance(delay, int) and delay > 0 else limit

    def decode(self, latents: Latents, progress: Callable[[float], None] | None = None) -> Iterator[np.ndarray]:
        """The audio of ``latents``, chunk by chunk: float32 ``(target_channels, n)`` at the model's sr.

        Samples beyond the sidecar's ``source.samples`` (the padding of the
        last frame) are cut when ``trim`` is on.  ``progress(seconds)`` is
        called after every model call (see ``decode_chunks``).  The model's
        ``RuntimeError`` goes through.
        """
        remaining = self._trim_to(latents.sidecar)
        if self.live is not None:
            yield from self._decode_live(latents, remaining, progress)
            return
        for block in decode_chunks(self.model, latents.z, self.seed, self.chunk, self.context, self.latency,
                                   progress):
            if remaining is not None:
                block = block[:, :remaining]
                remaining -= block.shape[1]
            if block.shape[1]:
                yield block

    def _decode_live(self, latents: Latents, samples: int | None,
                     progress: Callable[[float], None] | None = None) -> Iterator[np.ndarray]:
        """:func:`~ravekit.engine.live.live_decode`, measuring the boundary jumps of a non-streaming export."""
        assert self.live is not None
        m = self.model.info
        samples = latents.frames * m.ratio if samples is None else min(samples, latents.frames * m.ratio)
        self.jumps = None if m.streaming else Jumps()
        yield from live_decode(self.model, latents.z, self.live, self.seed, self.latency, samples, self.jumps,
                               progress)

    def rendered_length(self, latents: Latents) -> int:
        """Samples the render of ``latents`` lasts: offline, the trimmed length; live, plus the delay kept."""
        m = self.model.info
        trim_to = self._trim_to(latents.sidecar)
        frames = latents.frames * m.ratio if trim_to is None else min(trim_to, latents.frames * m.ratio)
        if self.live is not None and self.live.keep:
            frames += nn_latency(self.live.buffer) + self.latency
        return frames

    def decode_to_file(self, latents: Latents, out: os.PathLike | str, source: dict | None = None,
                       progress: Callable[[float], None] | None = None, extra: dict | None = None) -> Path:
        """Decode ``latents`` into ``out`` (:meth:`decode`), block by block as they come.

        Returns the path written.  With ``source`` (``records.source_identity``
        of the latents), the record ``out``'s ``.json`` is written too, after
        the audio (order in ``records``).
        ``progress(seconds)`` is called after every model call (see ``decode_chunks``).
        ``extra`` sections are added to the record as given (``transfer``: encoder, bending).
        """
        out = Path(out)
        trim_to = self._trim_to(latents.sidecar)
        frames = self.rendered_length(latents)
        # The sound file and its record are one set, the record last (records.py): a failed write
        # leaves an earlier pair as it was.
        with OutputSet([out] if source is None else [out, record_path(out)]) as staged:
            self._write_audio(latents, out, frames, progress, staged, source, trim_to, extra)
            staged.commit()
        return out

    def _write_audio(self, latents: Latents, out: Path, frames: int, progress: Callable[[float], None] | None,
                     staged: OutputSet, source: dict | None, trim_to: int | None, extra: dict | None) -> None:
        """The writes of :meth:`decode_to_file`, to the set's temporary names."""
        m = self.model.info
        try:
            with AudioWriter(out, m.sr, m.target_channels, self.subtype, frames=frames, warn=self.warn) as writer:
                for block in self.decode(latents, progress):
                    writer.write(block)
        except RuntimeError as exc:
            raise RavekitError(f"{out}: the model failed to decode ({first_line(exc)})") from None
        if source is not None:
            output = {"file": out.name, "bytes": staged[out].stat().st_size, **(writer.summary or {}),
                      "clipped_share": writer.clipped / max(1, writer.frames * m.target_channels)}
            if self.jumps is not None:
                output["live_jumps"] = {"boundary": self.jumps.boundary, "at": self.jumps.at,
                                        "median_step": self.jumps.interior}
            record = make_record(
                created_by="decoder.py", sr=m.sr, channels=m.target_channels,
                model=m.identity(),
                source={**source, "latent_dims": latents.latent_dims, "latent_frames": latents.frames},
                seed=self.seed, processing={**self.processing, "trimmed_to": trim_to}, output=output, **(extra or {}))
            write_json(record_path(out), record)

    def decode_file(self, path: os.PathLike | str, out: os.PathLike | str,
                    progress: Callable[[float], None] | None = None) -> tuple[Path, list[str]]:
        """Read a latent file (``.npy`` or latent WAV), check it, decode it into ``out`` with its record.

        ``progress(seconds)`` is called after every model call (see ``decode_chunks``).
        """
        source = self.source_of(path) if Path(path).exists() else None
        latents = Latents.load(path)
        warnings = check_latents(latents, self.model, path)
        written = self.decode_to_file(latents, out, source, progress)
        return written, warnings + self.live_warnings(path, latents.latent_dims)

    def live_warnings(self, path: os.PathLike | str, dims: int) -> list[str]:
        """What a live render of ``path`` tells the user: the clicks of a non-streaming export, dims nn~ cannot take."""
        if self.live is None:
            return []
        m = self.model.info
        said = [self.jumps.warning(str(path), self.live.buffer)] if self.jumps is not None else []
        if dims > m.latent_size and not m.discrete:
            said.append(f"{path}: --live: nn~'s [nn~ {Path(m.path).name} decode] has {m.latent_size} inlets, so dims "
                        f"{m.latent_size + 1}-{dims} are left out (the model fills them with noise)")
        return said

    def source_of(self, path: os.PathLike | str) -> dict:
        """What identifies input ``path`` in a record: the file and its sidecar (``records.source_identity``)."""
        return source_identity(path, sidecar_path(path))

    def differences(self, record: dict, source: dict) -> list[str]:
        """The settings in an existing output's record that do not match this decoder's.

        ``source`` (``source_of`` the input) lets subclasses tell audio from latents.
        """
        return settings_differences(record, self.model.info, self.seed, self.processing,
                                    ("subtype", "trim", "chunk_frames", "context_frames", "layout", "live"))

    @staticmethod
    def inputs_changed(record: dict, source: dict) -> list[str]:
        """Which of the latents and their sidecar changed since the output was decoded from them."""
        made_from = record.get("source") or {}
        if made_from.get("sha256") != source["sha256"]:
            what = "the latents" if source.get("sidecar_sha256") is not None or made_from.get("sidecar_sha256") \
                else "the input"
            return [f"{what} {shown(source['file'])} " + ("have" if what == "the latents" else "has")
                    + " changed since it was decoded"]
        if made_from.get("sidecar_sha256") != source["sidecar_sha256"]:
            return [f"their sidecar {shown(sidecar_path(source['file']))} has changed since it was decoded"]
        return []

    def finished(self, path: os.PathLike | str, out: os.PathLike | str) -> bool:
        """Whether ``out`` is already this decoder's result for latents ``path`` (resume).

        False when ``out`` does not exist.  Raises ``RavekitError`` when it
        exists but was made otherwise, or when nothing records how it was made.
        """
        out = Path(out)
        if not out.exists():
            return False
        record = read_record(out)
        if record is None:
            raise RavekitError(f"{shown(path)}: {shown(out)}: no record ({record_path(out).name}) says how it was "
                               "made (an older ravekit, "
                               "or an interrupted run); use --force to redo it, or another --output")
        source = self.source_of(path)
        changed = self.differences(record, source)
        causes = self.inputs_changed(record, source)
        recorded, size = (record.get("output") or {}).get("bytes"), out.stat().st_size
        if recorded != size:
            causes.append(f"it is {size} bytes, its record says {recorded}: cut short or replaced since it was "
                          "written")
        if changed or causes:
            raise stale_error(out, changed, causes, path)
        return True
