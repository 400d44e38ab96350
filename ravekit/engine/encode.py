"""Audio files -> latents: the work behind ``encoder.py``, importable on its own.

>>> from ravekit.engine.model import load_model
>>> from ravekit.engine.encode import Encoder
>>> enc = Encoder(load_model("model.ts"))
>>> for result in enc.encode_file("song.flac"):
...     print(result.suffix, result.z.shape)   # "" (1, latent_size, frames)
...     result.save("song" + result.suffix + ".npy")   # the array and its sidecar
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ravekit.engine.chunks import DEFAULT_CHUNK_SECONDS, chunk_frames_for, encode_blocks, measure_context
from ravekit.engine.latency import measure_latency
from ravekit.engine.layout import cpu_kernels, layout_record
from ravekit.engine.live import Live, check_live, live_delay_frames, live_encode
from ravekit.engine.model import RaveModel
from ravekit.errors import RavekitError, first_line, shown
from ravekit.io.audio import BLOCK, AudioInfo, iter_audio, probe
from ravekit.io.channels import Groups, apply_channels, channel_plan, describe_groups, spans, unused_channels
from ravekit.io.files import sha256_of
from ravekit.io.latents import Latents, Sidecar, make_sidecar, sidecar_path
from ravekit.io.records import stale_error


@dataclass
class EncodedLatents(Latents):
    """The :class:`~ravekit.io.latents.Latents` of one pass of a file through the model.

    ``z`` is float32 ``(1, latent_size, frames)``, ``sidecar`` says how it was
    made; ``suffix`` names the pass (``""``, or ``.ch1``/``.ch2`` with
    ``channel_mode="split"``); ``warnings`` are messages for the user (also in the sidecar).
    """

    suffix: str = ""
    warnings: list[str] = field(default_factory=list)


class Encoder:
    """A model ready to encode many files: context measured once, settings fixed.

    Parameters
    ----------
    model : a loaded model (``load_model``).
    seed : seed set before every file, so each file's result does not depend
        on what came before it in the batch.
    channel_mode : ``auto``, ``mix``, ``fold``, ``left``, ``right`` or ``split``
        (see ``channels.channel_plan``).
    chunk_seconds : audio per model call; ``0`` encodes each file in one call.
    channels : file channels to use (0-based, in order) before ``channel_mode``
        applies; ``None`` uses them all.
    live : encode as nn~ does (:mod:`ravekit.engine.live`) instead of the clean offline way.
    """

    def __init__(self, model: RaveModel, seed: int | None = 0, channel_mode: str = "auto",
                 chunk_seconds: float = DEFAULT_CHUNK_SECONDS, channels: list[int] | None = None,
                 live: Live | None = None):
        if live is not None:
            check_live(live, model.info, ("encode",))
        self.live = live
        self.live_tail = 0  # frames of encoded silence after a live pass, for a live decoder's last buffers
        self.model = model
        self.seed = seed
        self.channel_mode = channel_mode
        self.channels = channels
        self.context = measure_context(model, ("encode",)).encode if chunk_seconds > 0 else None
        self.chunk = chunk_frames_for(model, chunk_seconds) if chunk_seconds > 0 else 1
        # Frames a streaming export's latents come late; dropped, so frame i covers samples i * ratio on.
        self.latency = measure_latency(model, ("encode",)).encode
        # Chunking changes a stochastic encoder's draws, so it is part of what
        # reproduces a result, with the seed and the model.
        self.processing = {
            "channel_mode": channel_mode,
            "channels": None if channels is None else [c + 1 for c in channels],
            "chunk_frames": self.chunk if self.context is not None else None,
            "context_frames": self.context,
            "latency_samples": self.latency * model.info.ratio,
            "device": str(model.device),
            "layout": layout_record(),
            "cpu_kernels": cpu_kernels() if model.device.type == "cpu" else None,
            # A live render is another result than the offline one: resume tells them apart (records.py).
            # Kept, the delay makes the latents that many frames longer than the source: a decoder keeps them.
            "live": None if live is None else
            {**live.record(), "delay_frames": live_delay_frames(model.info, live, self.latency)},
        }

    # The settings of ``processing`` that change the latents (the others are recorded only).
    # The context is part of the chunk grid: its windows' shapes (it is measured on the model and cached).
    SETTINGS = ("channel_mode", "channels", "chunk_frames", "context_frames", "layout", "live")

    @staticmethod
    def source_changed(sidecar: Sidecar, path: os.PathLike | str) -> bool:
        """Whether the audio at ``path`` differs from the file an earlier output's sidecar was encoded from.

        Size and mtime as recorded: taken as unchanged without reading the
        file; otherwise the sha256 decides (a copy with a new mtime is the same
        source).  Sidecars of older runs, without these fields, are not checked.
        """
        old = sidecar.source
        if not all(isinstance(old.get(k), t) for k, t in (("bytes", int), ("mtime_ns", int), ("sha256", str))):
            return False
        st = os.stat(path)
        if st.st_size == old["bytes"] and st.st_mtime_ns == old["mtime_ns"]:
            return False
        return st.st_size != old["bytes"] or sha256_of(path) != old["sha256"]

    def outputs(self, source: os.PathLike | str, output: Path) -> list[Path]:
        """The .npy files encoding ``source`` writes for ``output``: ``NAME.npy``, or with
        ``channel_mode="split"`` one ``NAME.chK.npy`` per pass (reads only the source's header)."""
        suffixes = self.plan(source) if self.channel_mode == "split" else [""]
        return [self.output_for(output, s) for s in suffixes]

    @staticmethod
    def output_for(output: Path, suffix: str) -> Path:
        """The .npy file of the pass named ``suffix`` (see :class:`EncodedLatents`)."""
        return output.with_name(output.stem + suffix + ".npy")

    def finished(self, source: os.PathLike | str, output: Path) -> list[Path]:
        """The resume rule: an earlier run's outputs when all exist and were made the same way, else ``[]``.

        Raises the :func:`~ravekit.io.records.stale_error` of the first output
        made otherwise (another model, seed, channel mode or chunk).
        """
        planned = self.outputs(source, output)
        if not all(p.exists() for p in planned):
            return []
        for path in planned:
            sidecar = Sidecar.read(path)
            # The sidecar is renamed into place last (Latents.save): without it the array is unfinished,
            # and compared, its absent fields would read as "seed None".
            if not sidecar.raw:
                raise RavekitError(f"{shown(source)}: {shown(path)}: its sidecar {sidecar_path(path).name} is missing, "
                                   "so nothing says how it was made (removed, or its run was interrupted); use --force "
                                   "to redo it, or another --output")
            changed = [str(found) for found in sidecar.mismatches(self.model.info, ("model", "seed", *self.SETTINGS),
                                                                  self.seed, self.processing)]
            causes = [f"{shown(source)} has changed since it was encoded"] * self.source_changed(sidecar, source)
            if changed or causes:
                raise stale_error(path, changed, causes, source)
        return planned

    def prefetch_blocks(self) -> int:
        """Enough read-ahead for one model chunk, so reading the next one overlaps its encoding."""

        m = self.model.info
        return 2 + min(self.chunk * m.ratio, 4 * m.sr * 60) // BLOCK

    def passes(self, file_channels: int) -> int:
        """How many times a file of ``file_channels`` channels goes through the model (progress estimates)."""
        try:
            return len(channel_plan(file_channels, self.model.info.n_channels, self.channel_mode, self.channels))
        except RavekitError:
            return 1

    def plan(self, path: os.PathLike | str) -> list[str]:
        """Name suffixes of the passes a file will get (reads only its header)."""
        return [s for s, _ in self._plan(probe(path).channels, path)]

    def _plan(self, file_channels: int, path: os.PathLike | str) -> list[tuple[str, Groups]]:
        try:
            return channel_plan(file_channels, self.model.info.n_channels, self.channel_mode, self.channels)
        except RavekitError as exc:
            raise RavekitError(f"{path}: {exc}") from None

    def channel_warning(self, file_channels: int, plan: list[tuple[str, Groups]]) -> str | None:
        """Say when channels of the file go unused without the user having chosen so.

        Channels left out of ``--channels`` were chosen; a channel it lists that
        the model has no room for (``--channels 3,4,5`` into a stereo model) was not.
        """
        unused = unused_channels(file_channels, plan)
        m = self.model.info
        if self.channels is not None and self.channel_mode == "auto":
            dropped = [c for c in self.channels if c in unused]
            if not dropped:
                return None
            listed = ",".join(str(c + 1) for c in self.channels)
            return (f"--channels {listed} into a {m.n_channels}-channel model: used channel"
                    f"{'s' if m.n_channels > 1 else ''} {describe_groups(plan[0][1])}, ignored "
                    f"{', '.join(str(c + 1) for c in dropped)}; --channel_mode fold mixes all {len(self.channels)} "
                    f"down, or give --channels {m.n_channels} channel{'s' if m.n_channels > 1 else ''}")
        if not unused or self.channels is not None or self.channel_mode != "auto":
            return None
        return (f"{file_channels} channels into a {m.n_channels}-channel model: used channel"
                f"{'s' if m.n_channels > 1 else ''} {describe_groups(plan[0][1])}, ignored {spans(unused)}; "
                f"--channel_mode fold mixes all {file_channels} down, --channels picks others "
                f"(e.g. --channels {','.join(str(c + 1) for c in unused[:m.n_channels])})")

    def _encode(self, blocks: Iterator[np.ndarray], progress: Callable[[float], None] | None) -> np.ndarray:
        """One pass's latents: offline in chunks with context, or live as nn~ (progress once, at the end)."""
        if self.live is None:
            return encode_blocks(self.model, blocks, self.seed, self.chunk, self.context, self.latency, progress)
        counted = {"samples": 0}

        def counting() -> Iterator[np.ndarray]:
            for block in blocks:
                counted["samples"] += block.shape[1]
                yield block

        z = live_encode(self.model, counting(), self.live, self.seed, self.latency, self.live_tail)
        if progress is not None:
            progress(counted["samples"] / self.model.info.sr)
        return z

    def live_warnings(self, path: os.PathLike | str) -> list[str]:
        """What a live encode tells the user: a non-streaming export's latents restart at every nn~ buffer."""
        if self.live is None or self.model.info.streaming:
            return []
        return [f"{path}: a non-streaming export restarts from zero padding in every nn~ buffer, so its latents "
                f"jump every {self.live.buffer // self.model.info.ratio} frames; a streaming export "
                "(`rave export --streaming`) carries its state across buffers"]

    def encode_file(self, path: os.PathLike | str,
                    source: tuple[AudioInfo, Iterator[np.ndarray]] | None = None,
                    progress: Callable[[float], None] | None = None) -> Iterator[EncodedLatents]:
        """Encode one file, pass by pass, reading it block by block.

        ``source`` is the file's info and its blocks at the model's rate, when
        they are already being read (``prefetch.AudioPrefetcher``); it serves
        a single pass, a file split in several passes is read once per pass.
        ``progress(seconds)`` is called after every model call with the seconds
        of audio it encoded (each pass sums to the file's duration).
        Raises ``RavekitError`` for unreadable or empty files.
        """
        info = source[0] if source else probe(path)
        m = self.model.info
        # The file's identity, for resuming (source_changed): stat before reading, hash once after the
        # first pass, while the file is still in the OS cache.
        st = os.stat(path)
        identity: dict[str, object] = {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns}
        plan = self._plan(info.channels, path)
        warning = self.channel_warning(info.channels, plan)
        for suffix, groups in plan:
            counted = {"samples": 0}
            reader = source[1] if source and len(plan) == 1 else iter_audio(path, m.sr, info=info)

            def blocks(reader=reader, groups=groups, counted=counted) -> Iterator[np.ndarray]:
                for block in reader:
                    if not np.isfinite(block).all():
                        raise RavekitError(f"{path}: the audio contains NaN or infinite samples; "
                                           "repair or re-export the file")
                    counted["samples"] += block.shape[1]
                    yield apply_channels(block, groups)

            try:
                z = self._encode(blocks(), progress)
            except ValueError as exc:
                if "no audio samples" in str(exc):
                    raise RavekitError(f"{path}: the file holds no audio samples; remove it or export it again") \
                    from None
                raise
            except RuntimeError as exc:
                raise RavekitError(f"{path}: the model failed on this file ({first_line(exc)})") from None
            samples = counted["samples"]
            identity.setdefault("sha256", sha256_of(path))
            described: dict[str, object] = {
                "file": str(path),
                "sr": info.sr,
                "channels": info.channels,
                "channels_used": sorted({c + 1 for g in groups for c in g}),
                # Per model channel, the file channels (from 1) averaged into it.
                "channel_map": [[c + 1 for c in g] for g in groups],
                "channels_unused": [c + 1 for c in unused_channels(info.channels, [(suffix, groups)])],
                "channel_mode": self.channel_mode,
                "samples": samples,
                "duration": samples / m.sr,
                **identity,
            }
            if warning:
                described["channel_warning"] = warning
            meta = make_sidecar(
                sr=m.sr, ratio=m.ratio, latent_dims=z.shape[1], frames=z.shape[2], n_channels=m.n_channels,
                model=m.identity(),
                source=described, seed=self.seed, created_by="encoder.py", processing=self.processing,
                discrete=m.discrete, codebook_size=m.codebook_size,
            )
            # Once per file, not once per pass.
            first = suffix == plan[0][0]
            yield EncodedLatents(z, Sidecar(meta), suffix=suffix,
                                 warnings=([f"{path}: {warning}"] if warning and first else [])
                                 + (self.live_warnings(path) if first else []))
