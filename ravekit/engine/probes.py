"""A cache of what was measured on a model at load: chunk context and streaming latency.

The probes (:func:`ravekit.engine.context.measure_context`,
:func:`ravekit.engine.latency.measure_latency`) cost a few model calls each, which is
most of what a short file costs after torch is imported.  Their answers depend only on
the model's bytes (and, in principle, on torch and the device), so they are kept in one
small JSON file per model under the user's cache folder, named by the model's sha256:
a model edited in place has a new sha256 and is measured afresh, never read stale.

Concurrent runs are safe: a file is replaced whole (written to a temporary and renamed),
so a reader sees an old or a new version, never half of one; two runs that measure at
once both write the same answers.  A cache that cannot be read or written is ignored:
the probes run, nothing fails.

``RAVEKIT_CACHE_DIR`` moves the cache (empty: no cache); otherwise it lives in
``$XDG_CACHE_HOME/ravekit/probes`` (``~/.cache/ravekit/probes``).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ravekit.engine.model import RaveModel

log = logging.getLogger(__name__)

# Bump when a probe changes what it measures: older entries are then ignored.
PROBE_VERSION = 1


def cache_dir() -> Path | None:
    """Where probe results are kept, or None when caching is switched off."""
    if "RAVEKIT_CACHE_DIR" in os.environ:
        value = os.environ["RAVEKIT_CACHE_DIR"]
        return Path(value) / "probes" if value else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ravekit" / "probes"


def _stamp(model: RaveModel) -> dict:
    import torch

    return {"probe_version": PROBE_VERSION, "torch": torch.__version__, "device": str(model.device)}


def _read(path: Path, stamp: dict) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("stamp") != stamp or not isinstance(data.get("values"), dict):
        return {}
    return data["values"]


def _write(path: Path, stamp: dict, values: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".part", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump({"stamp": stamp, "values": values}, f)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        log.debug("probe cache not written (%s): %s", path, exc)


def cached(model: RaveModel, name: str, measure: Callable[[], int | None]) -> int | None:
    """``measure()``'s answer for ``model``, from the cache when this model was measured before.

    Parameters
    ----------
    model : RaveModel
        A loaded model; without its sha256 (``load_model(checksum=False)``) nothing is cached.
    name : str
        What is measured, e.g. ``"context.encode"``.
    measure : callable
        Runs the probe; its answer (an int, or None) must be JSON-serialisable.
    """
    folder = cache_dir()
    if folder is None or not model.info.sha256:
        return measure()
    path = folder / f"{model.info.sha256}.json"
    stamp = _stamp(model)
    values = _read(path, stamp)
    found = values.get(name, "absent")
    # Only what a probe can answer is taken: a whole number of 0 or more, or None (unbounded).
    if found is None or (type(found) is int and found >= 0):
        return found
    found = measure()
    # Read again: a run beside this one may have added its own answers meanwhile.
    _write(path, stamp, {**_read(path, stamp), name: found})
    return found
