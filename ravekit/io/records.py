"""The record beside each decoded sound file: how it was made, so a resumed run can tell.

``song.wav`` gets ``song.json``: the latents it came from (path, size,
sha256, and its sidecar's sha256), the model, the seed, the settings that
change the bytes (``processing``) and what was written (``output``: container,
subtype, frames, peak, clipped samples).  It is a plain dict: new sections or
keys (say, a streaming latency) are added by the code that knows them, and
readers ignore what they do not know.

Order of writes, so an interrupted run is always recognised: the sound file
and the record are written to temporary names first; only then is the old
record removed, the sound file renamed into place and the record last
(``files.OutputSet``).  A failed write leaves the earlier pair as it was.  A
record therefore always describes the file beside it; a sound file without one
(interrupted in the instant between the renames, or made by an older ravekit)
is reported, never taken as done.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ravekit import __version__
from ravekit.errors import RavekitError, shown
from ravekit.io import formats
from ravekit.io.files import read_json, sha256_of


class ModelFacts(Protocol):
    """What an output's record is compared with (``engine.model.ModelInfo`` has it)."""

    sha256: str  # "" when not computed: the model is then not compared
    ratio: int


FORMAT = formats.AUDIO_RECORD
FORMAT_VERSION = 1


def record_path(path: os.PathLike | str) -> Path:
    """``song.wav`` -> ``song.json``, as for latent files."""
    return Path(path).with_suffix(".json")


def source_identity(path: os.PathLike | str, sidecar: os.PathLike | str | None) -> dict:
    """What identifies an input: path, size and sha256, and its sidecar's sha256 (None if absent).

    The sidecar counts because it changes the result (the trim length).
    """
    p = Path(path)
    side = Path(sidecar) if sidecar is not None else None
    return {"file": str(p), "bytes": p.stat().st_size, "sha256": sha256_of(p),
            "sidecar_sha256": sha256_of(side) if side is not None and side.exists() else None}


def make_record(*, created_by: str, sr: int, channels: int, model: dict | None, source: dict,
                seed: int | None, processing: dict, output: dict, **extra) -> dict:
    """The record dict; ``extra`` sections are stored as given."""
    record = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "ravekit_version": __version__,
        "created_by": created_by, "sr": int(sr), "channels": int(channels),
        "frames": int(output.get("frames", 0)), "model": model, "source": source, "seed": seed,
        "processing": processing, "output": output,
    }
    record.update(extra)
    return record


@dataclass(frozen=True)
class Mismatch:
    """One way an earlier output differs from this run: ``what`` (``model``, ``ratio``, ``seed``
    or a ``processing`` key) and the value the output records; ``str`` gives ``"seed 1"``."""

    what: str
    recorded: object
    words: str | None = None  # how to say it, where "what recorded" would not be understood

    def __str__(self) -> str:
        return self.words or f"{self.what} {self.recorded}"


def mismatches(record: dict, model: ModelFacts, compare: Iterable[str], seed: int | None = None,
               processing: dict | None = None) -> list[Mismatch]:
    """What in a latents sidecar or an output's record differs from ``model`` and a run's settings.

    ``compare`` names what to look at, in the order reported: ``model`` (by
    sha256, when both know it; ``recorded`` is the file name), ``ratio`` (when
    the record has a whole number), ``seed``, ``layout`` (the arithmetic
    layout, :mod:`ravekit.engine.layout`; a record without one is stale), ``live``
    (nn~'s block loop, :mod:`ravekit.engine.live`; a record without one is an offline render), and
    other keys of ``processing`` (only where the record has them: records of
    older versions lack some).
    The encoder's resume, the decoder's checks of latents and its resume share this rule.
    """
    old_model = record.get("model") or {}
    old = record.get("processing") or {}
    found = []
    for what in compare:
        if what == "model":
            sha = old_model.get("sha256")
            if sha and model.sha256 and sha != model.sha256:
                found.append(Mismatch(what, old_model.get("file")))
        elif what == "ratio":
            ratio = record.get("ratio")
            if isinstance(ratio, int) and ratio != model.ratio:
                found.append(Mismatch(what, ratio))
        elif what == "seed":
            if record.get("seed") != seed:
                found.append(Mismatch(what, record.get("seed")))
        elif what == "layout":
            # Unlike other settings, a record without one is stale: it predates recorded layouts.
            now = (processing or {}).get("layout")
            if old.get("layout") != now:
                found.append(Mismatch(what, old.get("layout"), _layout_words(old.get("layout"), now)))
        elif what == "live":
            # Always compared, like the layout: a record without it (or an older one) is an offline render.
            now = (processing or {}).get("live")
            if _live_key(old.get("live")) != _live_key(now):
                found.append(Mismatch(what, old.get("live"), _live_words(old.get("live"))))
        elif what in old and old[what] != (processing or {}).get(what):
            found.append(Mismatch(what, old[what]))
    return found


def _live_key(live: object) -> tuple | None:
    """What makes a live render (``engine.live.Live.record``): its buffer and latency, or None offline."""
    return (live.get("buffer"), live.get("latency")) if isinstance(live, dict) else None


def _live_words(recorded: object) -> str:
    """A recorded live setting in words: ``--live 4096 (latency keep)``, or an offline render."""
    if not isinstance(recorded, dict):
        return "an offline render (no --live)"
    return f"--live {recorded.get('buffer')} (latency {recorded.get('latency')})"


def _layout_words(recorded: object, now: object) -> str:
    """A recorded arithmetic layout (``engine.layout.layout_record``) in words, against this run's."""
    now = now if isinstance(now, dict) else {}
    if not isinstance(recorded, dict):
        return "the arithmetic layout of an earlier ravekit, whose last bits differ"
    if recorded.get("version") != now.get("version"):
        return (f"arithmetic layout {recorded.get('version')}, whose last bits differ from layout "
                f"{now.get('version')}'s")
    return f"--threads {recorded.get('threads')}, whose last bits differ"


def settings_differences(record: dict, model: ModelFacts, seed: int | None, processing: dict,
                         keys: tuple[str, ...]) -> list[str]:
    """The model, seed and ``keys`` of ``processing`` that differ in an earlier output's record, as ``"seed 1"``.

    ``model`` is this run's model (:class:`ModelFacts`) (see :func:`mismatches`).
    """
    return [str(found) for found in mismatches(record, model, ("model", "seed", *keys), seed, processing)]


def read_record(path: os.PathLike | str) -> dict | None:
    """The record of sound file ``path``, or None when there is none (or it is no such record)."""
    side = record_path(path)
    if not side.exists():
        return None
    record = read_json(side)
    if record.get("format") not in (FORMAT, *formats.AUDIO_RECORD_EARLIER):
        return None
    version = record.get("format_version", 1)
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise RavekitError(f"{side}: written by a newer ravekit (format {version}); upgrade ravekit")
    return record


def stale_error(path: os.PathLike | str, changed: list[str], causes: Sequence[str] = (),
                source: os.PathLike | str | None = None) -> RavekitError:
    """An existing output that is not this run's result: the encoder's and decoder's one message.

    ``changed`` lists settings that differ (``seed 1``); ``causes`` says what
    else makes the output stale, by cause (an input changed since, an output
    cut short).  ``source``, the input, starts the message as in other per-file errors.
    """

    parts = [f"made by an earlier run with other settings ({', '.join(changed)})"] if changed else []
    head = f"{shown(source)}: " if source is not None else ""
    return RavekitError(f"{head}{shown(path)}: {'; '.join(parts + list(causes))}; "
                        "use --force to redo it, or another --output")
