"""Shared fixtures: the project's own fixture models, real exports, synthetic audio.

Real RAVE exports are taken from the folder named by ``RAVE_TEST_MODELS``
(CI sets it to ``../shared/rave-models``) and from ``RAVE_TEST_MORE_MODELS``
(by default the ``more-kinds`` folder beside it: RAVE's v1, v3 and spherical
configs); tests parametrised over them are skipped, visibly, when
``RAVE_TEST_MODELS`` is unset.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Probe results (ravekit/engine/probes.py) go to a cache of this session, never the user's own.
os.environ["RAVEKIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="ravekit-test-cache-")
atexit.register(shutil.rmtree, os.environ["RAVEKIT_CACHE_DIR"], ignore_errors=True)
# In-process tests stay in this process (monkeypatches, capsys); --jobs auto has tests of its own.
os.environ["RAVEKIT_JOBS"] = "1"

from ravekit.demo.model import build_demo_model  # noqa: E402

# name -> build_demo_model keyword arguments
FIXTURE_SPECS = {
    "demo": dict(),  # 44.1 kHz, ratio 2048, 8 dims, mono
    "demo_b": dict(gain_seed=1),  # same architecture, other weights
    "stereo512": dict(sr=48000, ratio=512, latent_size=4, channels=2),
    "rave_named": dict(ratio=1024, latent_size=16, rave_name=True),
    "streaming": dict(streaming=True, decode_latency=5000),  # not a multiple of the ratio
    "discrete": dict(discrete=True, ratio=1024, codebook_size=32),  # codes 0..31, like DiscreteScriptedRAVE
}


def more_models_folder() -> Path | None:
    """``RAVE_TEST_MORE_MODELS``, else the ``more-kinds`` folder beside ``RAVE_TEST_MODELS``; None if neither.

    An empty ``RAVE_TEST_MORE_MODELS`` leaves the more kinds out.
    """
    more = os.environ.get("RAVE_TEST_MORE_MODELS")
    if more is not None:
        if more and not Path(more).is_dir():
            raise pytest.UsageError(f"RAVE_TEST_MORE_MODELS={more}: no such folder; set it to the folder of the "
                                    "more kinds of exports, or to nothing to leave them out")
        return Path(more) if more else None
    folder = os.environ.get("RAVE_TEST_MODELS")
    beside = Path(folder).resolve().parent / "more-kinds" if folder else None
    return beside if beside and beside.is_dir() else None


def real_model_paths() -> list[Path]:
    """Every export in ``RAVE_TEST_MODELS`` and its subfolders (``kinds/`` holds one of each kind),
    then every one in :func:`more_models_folder`."""
    folder = os.environ.get("RAVE_TEST_MODELS")
    if not folder:
        return []
    more = more_models_folder()
    return sorted(Path(folder).rglob("*.ts")) + (sorted(more.rglob("*.ts")) if more else [])


# docs/rave-exports.md's table: what each shared real export is documented to be.
# Tests check the toolkit against these and against the model's own buffers;
# exports not named here (a user's own) are checked against their buffers only.
_V2 = {"ratio": 2048, "latent_size": 8, "full_latent_size": 128, "decode_dims": 128, "n_channels": 1,
       "streaming": False, "original_name": "VariationalScriptedRAVE", "state_dict_entries": 79}
DOCUMENTED_EXPORTS = {
    "v2cap16_mono_44k_seed0": _V2,
    "v2cap16_mono_44k_seed1": _V2,
    "v2cap16_mono_44k_seed2": _V2,
    "v2cap16_mono_44k_seed2_streaming": {**_V2, "streaming": True, "state_dict_entries": 79 + 156},
    "v2cap16_stereo_44k_seed0": {**_V2, "n_channels": 2},
    "v2smallcap16_mono_44k_seed0": {**_V2, "ratio": 512, "state_dict_entries": None},
    "discretecap16_mono_44k_seed0": {**_V2, "ratio": 1024, "latent_size": 16,
                                     "original_name": "DiscreteScriptedRAVE", "state_dict_entries": None},
    # more-kinds/
    "v1cap16_mono_44k_seed0": {**_V2, "state_dict_entries": None},
    "v3cap16_mono_44k_seed0": {**_V2, "state_dict_entries": 265},
    # decode takes exactly its 15 angles; full_latent_size is the 16 of the unit vector they make
    "sphericalcap16_mono_44k_seed0": {**_V2, "latent_size": 15, "full_latent_size": 16, "decode_dims": 15,
                                      "original_name": "SphericalScriptedRAVE", "state_dict_entries": None},
}


def export_facts(path: Path) -> dict:
    """A real export's facts read straight from its nn~ buffers and attributes.

    Independent of ``ravekit.engine.model`` so tests can check it.  Keys: sr, ratio,
    latent_size, n_channels, target_channels, full_latent_size,
    original_name, discrete (its latents are integer codebook indices: its
    encode is deterministic and its decode only takes codes it made),
    spherical (its latents are angles: its encode is deterministic, and its
    decode takes exactly ``latent_size`` of them), decode_dims (the latent
    dims decode takes: ``latent_size`` for a spherical model, else
    ``full_latent_size``).
    """
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        m = torch.jit.load(str(path), map_location="cpu")
    enc, dec = m.encode_params.tolist(), m.decode_params.tolist()
    spherical = m.original_name == "SphericalScriptedRAVE"
    return {"sr": int(m.sr), "ratio": enc[3], "latent_size": enc[2], "n_channels": enc[0],
            "target_channels": dec[2], "full_latent_size": int(m.full_latent_size),
            "original_name": m.original_name, "discrete": m.original_name == "DiscreteScriptedRAVE",
            "spherical": spherical, "decode_dims": dec[0] if spherical else int(m.full_latent_size)}


REAL_MODELS = real_model_paths()
real_models = pytest.mark.parametrize(
    "real_model",
    REAL_MODELS or [pytest.param(None, marks=pytest.mark.skip(reason="RAVE_TEST_MODELS not set"))],
    ids=[p.stem for p in REAL_MODELS] or ["no-real-models"],
)


@pytest.fixture(scope="session")
def fixture_models(tmp_path_factory) -> dict[str, Path]:
    """Paths of the project's fixture models, built once per test session."""
    folder = tmp_path_factory.mktemp("fixture-models")
    return {name: build_demo_model(folder / f"{name}.ts", **spec) for name, spec in FIXTURE_SPECS.items()}


@pytest.fixture(scope="session")
def demo_model(fixture_models) -> Path:
    return fixture_models["demo"]


def run_cli(capsys, command, *args, lines: bool = False) -> tuple[int, str | list[str], str]:
    """Run ``command.main(args)`` in-process, as a user's command line would: ``(exit code, stdout, stderr)``.

    ``command`` is a script module (``encoder``, ``generator``, ...); ``args``
    are turned into strings.  stdout is the text, or with ``lines`` its
    non-empty lines.  A traceback on stderr fails the test: bad input gets one
    line, never a traceback.
    """
    code = command.main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, ([line for line in out.splitlines() if line] if lines else out), err


def full_disk_at_call(write, n: int):
    """``write`` that fails as on a full disk at its ``n``-th call (the calls before and after succeed)."""
    from ravekit.errors import RavekitError

    calls = []

    def failing(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == n:
            raise RavekitError(f"could not write {path}: No space left on device; free some space")
        return write(path, *args, **kwargs)

    return failing


def synth(sr: int, seconds: float, channels: int = 1, seed: int = 0, freq: float = 440.0) -> np.ndarray:
    """A tone plus a little noise, float32 ``(samples, channels)``; channels differ."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(sr * seconds))) / sr
    cols = [0.3 * np.sin(2 * np.pi * freq * (c + 1) * t) + 0.02 * rng.standard_normal(t.size) for c in range(channels)]
    return np.stack(cols, 1).astype(np.float32)


def write_audio(path: Path, sr: int = 44100, seconds: float = 1.0, channels: int = 1,
                seed: int = 0, subtype: str | None = None, freq: float = 440.0) -> Path:
    """Synthesize audio and write it; the format follows the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), synth(sr, seconds, channels, seed, freq), sr, subtype=subtype)
    return path


# Latent files for tests, from bare arrays and dicts: the library's one API is ravekit.io.latents.Latents.
def save_npy(path, z, meta=None):
    """Write ``z`` (``(1, latent_dims, frames)``) as ``.npy`` with the sidecar ``meta``."""
    from ravekit.io.latents import Latents, Sidecar

    return Latents(z, Sidecar(meta or {})).save(path)


def save_latent_wav(path, z, sr, ratio, meta=None, double=False, warn=None):
    """Write ``z`` as a latent WAV at header rate ``round(sr / ratio)``, with the sidecar ``meta``."""
    from ravekit.io.latents import Latents, Sidecar

    return Latents(z, Sidecar(meta or {})).save(path, double=double, warn=warn, rate=max(1, round(sr / ratio)))


def load_latents(path):
    """``(z, sidecar dict)`` of a latent file."""
    from ravekit.io.latents import Latents

    latents = Latents.load(path)
    return latents.z, latents.sidecar.raw
