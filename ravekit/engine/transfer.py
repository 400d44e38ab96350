"""Audio in, audio out: resynthesis and A-to-B timbre transfer in one step, the work behind
``decoder.py --encoder``.

An audio input is encoded by the encoder model (``engine.encode.Encoder``: its
channel plan, chunking with measured context, streaming latency and seed),
bent (:mod:`ravekit.engine.bending`), and decoded by the decoder model
(``engine.decode.Decoder``: chunking, streaming latency, noise for missing dims,
trimming, the record).  Nothing is written in between, and the file's audio
is never held whole: it is read block by block and written chunk by chunk.
The file's latents are held, as ``encoder.py`` holds them before writing its
``.npy``; they are ``ratio`` times smaller than its audio (2.5 MB for an hour
of a v2 model), and holding them is what makes the result bit-identical to
``encoder.py | decoder.py`` with the same seed (encoding draws from torch's
generator first, decoding after, in both).

Latent inputs (``.npy``, latent WAV) go through the same bending.  A ``.wav``
is audio or latents by what it is (:func:`ravekit.io.kind.input_kind`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from ravekit.engine.bending import Bending, describe_record
from ravekit.engine.chunks import DEFAULT_CHUNK_SECONDS
from ravekit.engine.decode import Decoder, check_latents
from ravekit.engine.encode import Encoder
from ravekit.engine.latent_map_file import LatentMap
from ravekit.engine.live import Live
from ravekit.engine.model import ModelInfo, RaveModel
from ravekit.errors import RavekitError
from ravekit.io.audio import AudioInfo
from ravekit.io.kind import AUDIO, LATENTS, input_kind
from ravekit.io.latents import Latents
from ravekit.io.records import source_identity


def check_bending_model(model: ModelInfo, bending: Bending) -> None:
    """Refuse (exit 2) bending a discrete model's codes (``--dims`` itself: ``Bending.check_decoder``).

    Codes are indices, so scaling or shifting them means nothing, and each of
    RAVE's residual quantizers has its own codebook (16 different ones in the
    real discrete export), so code k moved to another dim means something else.
    """
    name = Path(model.path).name
    if model.discrete and bending.active:
        raise RavekitError(
            f"{bending.describe()}: {name} is a discrete model; its latents are codebook "
            "indices, one codebook per dim, so scaled, shifted or moved codes mean nothing; bend a continuous "
            "model's latents", 2)


def check_pair(enc: ModelInfo, dec: ModelInfo, bending: Bending,
               latent_map: LatentMap | None = None) -> tuple[list[str], list[str]]:
    """Refuse (exit 2) an encoder and decoder that cannot be chained.

    Returns ``(notes, warnings)`` to tell the user once: the rates, and a
    change of timing or missing dims.

    A different latent size or ratio needs ``--dims`` (which of the encoder's
    dims the decoder gets), unless a latent map translates between them:
    then timing follows the decoder's latent rate.
    A discrete model's codes and continuous latents never mix.
    """
    a, b = Path(enc.path).name, Path(dec.path).name
    if enc.discrete != dec.discrete:
        kind = {True: "codebook indices (discrete)", False: "continuous latents"}
        raise RavekitError(f"--encoder {a} makes {kind[enc.discrete]}, --model {b} decodes {kind[dec.discrete]}; "
                           "pair models of the same kind", 2)
    differ = []
    if enc.latent_size != dec.latent_size:
        differ.append(f"latent size ({enc.latent_size} and {dec.latent_size} dims)")
    if enc.ratio != dec.ratio:
        differ.append(f"compression ratio ({enc.ratio} and {dec.ratio})")
    if latent_map is not None:
        latent_map.check_pair(enc, dec)
    if differ and bending.dims is None and latent_map is None:
        example = ",".join(str(d + 1) for d in range(min(enc.latent_size, dec.latent_size)))
        raise RavekitError(f"--encoder {a} and --model {b} differ in {' and '.join(differ)}; to transfer anyway, "
                           f"say which of {a}'s dims {b} gets, in order, with --dims (e.g. --dims {example})", 2)
    # With a map, bending works on its output: B's dims.
    made = latent_map.audio.out_dims if latent_map is not None else enc.latent_size
    bending.check(made, f"--encoder {a}", 2, source=f"--map {Path(latent_map.path).name}" if latent_map else
                  f"--encoder {a}")
    notes, warnings = [], []
    if enc.sr != dec.sr:
        notes.append(f"encoding at {a}'s {enc.sr} Hz, decoding at {b}'s {dec.sr} Hz: the outputs are at {dec.sr} Hz")
    stretch = (dec.ratio / dec.sr) / (enc.ratio / enc.sr)
    if stretch != 1:
        warnings.append(f"a latent frame lasts {1000 * enc.ratio / enc.sr:.2f} ms in {a} and "
                     f"{1000 * dec.ratio / dec.sr:.2f} ms in {b}: outputs last {stretch:.4g} times their sources")
    given = bending.decoded_dims(made)
    if given > dec.decode_dims:
        raise RavekitError(f"--encoder {a} gives {given} latent dims, but --model {b} decodes at most "
                           f"{dec.decode_dims}; pick at most {dec.decode_dims} of them with --dims", 2)
    if given < dec.latent_size and latent_map is None:
        warnings.append(f"{b} gets {given} of its {dec.latent_size} latent dims; the others are filled with noise "
                     "from --seed")
    return notes, warnings


class Transfer(Decoder):
    """A decoder that also takes audio (encoded on the way by ``encoder``) and bends latents.

    Parameters
    ----------
    model : the decoding model.
    seed, subtype, chunk_seconds, trim, warn : as for ``Decoder``; the seed
        is set before encoding a file and again before decoding it, as
        ``encoder.py`` and ``decoder.py`` each do.
    bending : applied to every input's latents before decoding (default: none).
    wav_as : ``auto``, ``audio`` or ``latents``: how ``.wav`` inputs are read (:func:`ravekit.io.kind.input_kind`).
    live : decode as nn~ does; audio inputs then go through ``[nn~ A encode] -> [nn~ B decode]``
        (the encoder given to :meth:`use_encoder` must be live with the same setting).

    A latent map (:meth:`use_map`) applies before the bending: A's latents
    become B's, then ``--dims``/``--scale``/``--bias`` work on B's dims.
    """

    def __init__(self, model: RaveModel, seed: int | None = 0, subtype: str = "FLOAT",
                 chunk_seconds: float = DEFAULT_CHUNK_SECONDS, trim: bool = True,
                 warn: Callable[[str], None] | None = None, bending: Bending | None = None, wav_as: str = "auto",
                 live: Live | None = None):
        bending = bending or Bending()
        check_bending_model(model.info, bending)
        fitted = bending.check_decoder(model.info)
        super().__init__(model, seed, subtype, chunk_seconds, trim, warn, live)
        for message in fitted:  # said once, not with every file
            if warn is not None:
                warn(message)
            else:
                import warnings

                warnings.warn(message, stacklevel=2)
        self.bending, self.wav_as = bending, wav_as
        self.encoder: Encoder | None = None
        self.latent_map: LatentMap | None = None
        self._identities: dict[tuple, dict] = {}

    def use_map(self, latent_map: LatentMap, encoder: ModelInfo) -> tuple[list[str], list[str]]:
        """Map every input's latents with ``latent_map`` (fitted for ``encoder`` -> this model) before bending."""
        said = check_pair(encoder, self.model.info, self.bending, latent_map)
        self.latent_map = latent_map
        return said

    def use_encoder(self, encoder: Encoder) -> tuple[list[str], list[str]]:
        """Encode audio inputs with ``encoder``; refuses a pair that does not fit (``check_pair``)."""
        said = check_pair(encoder.model.info, self.model.info, self.bending, self.latent_map)
        self.encoder = encoder
        if self.live is not None:
            # In the patch, [nn~ A encode] goes on encoding the silence after the file: the last buffers of
            # [nn~ B decode] get those frames, not the last one held.
            r = self.model.info.ratio
            encoder.live_tail = self.live.buffer // r + -(-self.latency // r) + 1
        return said

    def kind(self, path: os.PathLike | str) -> str:
        """``AUDIO`` or ``LATENTS`` (:func:`input_kind` with this decoder's ``wav_as``)."""
        return input_kind(path, self.wav_as, self.model.info.latent_size)

    def source_of(self, path: os.PathLike | str) -> dict:
        """The input's identity; audio has no sidecar.  Hashed once per run (resume checks ask twice)."""
        st = os.stat(path)
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in self._identities:
            if self.kind(path) == AUDIO:
                self._identities[key] = source_identity(path, None)
            else:
                self._identities[key] = super().source_of(path)
        return self._identities[key]

    def _encoder_section(self, kind: str) -> dict | None:
        if kind != AUDIO or self.encoder is None:
            return None
        return {**self.encoder.model.info.identity(), "processing": self.encoder.processing}

    def _map(self, latents: Latents, path: os.PathLike | str, kind: str) -> Latents:
        """A's latents -> B's through the map's fit for ``kind``; refuses (exit 1) latents it was not fitted on."""
        if self.latent_map is None:
            return latents
        part, enc = self.latent_map.part(kind), self.latent_map.meta["encoder"]
        made_by = (latents.sidecar.model or {}).get("sha256") if kind == LATENTS else None
        if made_by and made_by != enc["sha256"]:
            raise RavekitError(f"{path}: made by {latents.sidecar.model.get('file')}, but the map "
                               f"{Path(self.latent_map.path).name} maps latents of {enc['file']}; encode the audio "
                               f"with {enc['file']}, or decode without --map")
        if latents.latent_dims != part.in_dims:
            raise RavekitError(f"{path}: {latents.latent_dims} latent dims, but the map "
                               f"{Path(self.latent_map.path).name} maps {part.in_dims} ({enc['file']}'s "
                               f"{'latent size' if kind == LATENTS else 'full space'}); give latents of {enc['file']}")
        return replace(latents, z=part.apply(latents.z))

    def _bend(self, latents: Latents, path: os.PathLike | str, kind: str = LATENTS) -> Latents:
        latents = self._map(latents, path, kind)
        if not self.bending.active:
            return latents
        self.bending.check(latents.latent_dims, str(path))
        return replace(latents, z=self.bending.apply(latents.z))

    def decode_file(self, path: os.PathLike | str, out: os.PathLike | str,
                    progress: Callable[[float], None] | None = None,
                    reading: tuple[AudioInfo, Iterator[np.ndarray]] | None = None) -> tuple[Path, list[str]]:
        """Decode latents, or encode then decode audio, into ``out`` with its record.

        ``reading`` is an audio input's info and blocks when they are already
        being read (``prefetch.AudioPrefetcher``).  ``progress(seconds)`` is
        called after every model call, encoding and decoding alike.
        Returns the path written and warnings for the user.
        """
        if not Path(path).exists():
            raise RavekitError(f"{path}: file not found (removed since the run started?); check the path")
        kind = self.kind(path)
        source = self.source_of(path)
        extra = {"encoder": self._encoder_section(kind), "bending": self.bending.to_record(),
                 "map": self._map_section(kind)}
        if kind == LATENTS:
            latents = self._bend(Latents.load(path), path)
            warnings = check_latents(latents, self.model, path)
            if self.latent_map is not None:  # mapped latents are B's, as many dims as the map gives: as meant
                warnings = []
            written = self.decode_to_file(latents, out, source, progress, extra)
            return written, warnings + self.live_warnings(path, latents.latent_dims)
        if self.encoder is None:
            raise RavekitError(f"{path}: audio, but no model to encode it with; give --encoder")
        passes = list(self.encoder.encode_file(path, reading, progress))
        encoded = self._bend(passes[0], path, AUDIO)
        # Only its errors matter (codes a discrete decoder cannot take): the pair was reported on once.
        check_latents(Latents(encoded.z), self.model, path)
        made = encoded.sidecar.source
        source = {**source, **{k: made[k] for k in ("sr", "channels", "channel_map", "samples", "duration")}}
        written = self.decode_to_file(self.timing(encoded), out, source, progress, extra)
        # Live, the clicks are told of the audio (the decoder's jumps), not of the latents between the two.
        said = [w for w in passes[0].warnings if w not in self.encoder.live_warnings(path)]
        return written, said + self.live_warnings(path, encoded.latent_dims)

    def timing(self, latents: Latents) -> Latents:
        """The encoder's latents restated at the decoder's rate and ratio, so trimming cuts only the padding.

        The source lasts ``samples / enc.ratio`` frames; at the decoder's ratio
        that is ``samples * dec.ratio / enc.ratio`` of its samples.
        """
        m, side = self.model.info, latents.sidecar
        samples = side.source["samples"]
        if self.live is not None and self.live.keep and self.encoder is not None:
            # The encoder's frames come late by the delay of [nn~ A encode]: the render keeps them all
            # (not the encoded silence after them).
            late = latents.frames - self.encoder.live_tail - -(-samples // side.raw["ratio"])
            samples += late * side.raw["ratio"]
        samples = round(samples * m.ratio / side.raw["ratio"])
        source = {**side.source, "samples": samples}
        return replace(latents, sidecar=side.updated(sr=m.sr, ratio=m.ratio, source=source))

    def differences(self, record: dict, source: dict) -> list[str]:
        """``Decoder.differences``, plus the encoder (model, channels, chunking) and the bending."""
        found = super().differences(record, source)
        old, new = record.get("encoder") or {}, self._encoder_section(self.kind(source["file"])) or {}
        if old.get("sha256") != new.get("sha256"):
            found.append(f"encoder {old.get('file') or 'none'}")
        else:
            before, now = old.get("processing") or {}, new.get("processing") or {}
            # The layout and --live are the run's, said once by Decoder.differences.
            found.extend(f"encoder {key} {before[key]}" for key in Encoder.SETTINGS
                         if key not in ("layout", "live") and key in before and before[key] != now.get(key))
        bent = record.get("bending")
        if bent != self.bending.to_record():
            found.append(f"bending {describe_record(bent)}")
        mapped, now = record.get("map") or {}, self._map_section(self.kind(source["file"])) or {}
        if (mapped.get("sha256"), mapped.get("fit")) != (now.get("sha256"), now.get("fit")):
            found.append(f"map {mapped.get('file') or 'none'}")
        return found

    def _map_section(self, kind: str) -> dict | None:
        return None if self.latent_map is None else self.latent_map.to_record(kind)
