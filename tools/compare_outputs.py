"""Same bytes before and after a change: run a fixed set of commands with two versions of ravekit.

A restructuring must not change a single output byte.  This script extracts
another revision of the repository (``git archive REV``), runs the same
commands with it and with this checkout, each in the same scratch folder (so
paths recorded in sidecars agree), and compares every output file byte for
byte.  The commands: encode, decode, one-step transfer, generate (statistics,
latent WAVs with a Pd patch, and ``.npy``), generate with an MSPrior, and
merge with ``--audio`` -- on the demo model and on one shared export.

Usage::

    python -m tools.compare_outputs --base HEAD~3            # this checkout vs HEAD~3
    python -m tools.compare_outputs --base main --shared ../shared

Exit status 0 when every output is identical, 1 when any differs or is
missing; each difference is one line on stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
SCRIPTS = ("encoder.py", "decoder.py", "generator.py", "averager.py")


def commands(demo: Path, export: Path | None, other: Path | None, prior: Path | None) -> list[list[str]]:
    """The fixed command set, run in a scratch folder holding ``audio/``; paths relative to it."""
    runs: list[list[str]] = []
    for tag, model, second in (("demo", demo, demo), ("export", export, other)):
        if model is None:
            continue
        m = str(model)
        runs += [
            ["encoder.py", "-m", m, "-i", "audio", "-o", f"{tag}/enc", "-j", "1"],
            ["decoder.py", "-m", m, "-i", f"{tag}/enc", "-o", f"{tag}/dec", "-j", "2"],
            ["decoder.py", "-m", m, "--encoder", str(second), "-i", "audio", "-o", f"{tag}/transfer",
             "--seed", "5"],
            ["generator.py", "-i", f"{tag}/enc", "-m", m, "--num_files", "2", "--pattern", "loop",
             "--seed", "3", "--pd", "-o", f"{tag}/gen"],
            ["generator.py", "--stats", f"{tag}/gen/stats.json", "-m", m, "--num_files", "2",
             "--pattern", "blender", "--embeddings", "--seed", "4", "-o", f"{tag}/gen-npy"],
        ]
        if second != model:
            runs.append(["averager.py", "--models", m, str(second), "--weights", "0.6", "0.4",
                         "--audio", "audio/a.wav", "-o", f"{tag}/merge/merged.ts", "--seed", "2"])
    if prior is not None and export is not None:
        runs.append(["generator.py", "--prior", str(prior), "-m", str(export), "-i", "export/enc",
                     "--num_files", "1", "--pattern", "loop", "--seed", "6", "-o", "export/prior"])
    return runs


def make_audio(folder: Path) -> None:
    """Two short test signals (a chirp with noise, and a stereo file), the same on every run."""
    import numpy as np
    import soundfile as sf

    folder.mkdir(parents=True)
    sr = 44100
    t = np.arange(int(sr * 3.1)) / sr
    rng = np.random.default_rng(0)
    mono = 0.4 * np.sin(2 * np.pi * (110 + 200 * t) * t) + 0.02 * rng.standard_normal(t.size)
    sf.write(folder / "a.wav", mono.astype(np.float32), sr, subtype="FLOAT")
    stereo = np.stack([mono, np.roll(mono, 999)], axis=1)
    sf.write(folder / "b.flac", stereo, sr, subtype="PCM_24")


def run_all(checkout: Path, scratch: Path, audio: Path, runs: list[list[str]]) -> dict[str, str]:
    """Run ``runs`` with ``checkout``'s scripts in a fresh ``scratch``; sha256 of every file written."""
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    shutil.copytree(audio, scratch / "audio", copy_function=shutil.copy2)  # same mtimes as recorded
    env = dict(os.environ, PYTHONPATH=str(checkout), RAVEKIT_JOBS="1")
    for run in runs:
        cmd = [sys.executable, str(checkout / run[0]), *run[1:]]
        done = subprocess.run(cmd, cwd=scratch, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{checkout}: {' '.join(run)} failed: {done.stderr.strip()}")
    digests = {}
    for path in sorted(scratch.rglob("*")):
        if path.is_file() and "audio" not in path.relative_to(scratch).parts[:1]:
            # A Pd patch declares the pd/ folder of the checkout that wrote it: the one expected difference.
            data = path.read_bytes().replace(os.fsencode(checkout / "pd"), b"CHECKOUT/pd")
            digests[str(path.relative_to(scratch))] = hashlib.sha256(data).hexdigest()
    return digests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="git revision to compare this checkout with")
    parser.add_argument("--shared", default=str(HERE.parent / "shared"), help="the shared models folder")
    args = parser.parse_args(argv)
    shared = Path(args.shared)
    export = shared / "rave-models" / "v2cap16_mono_44k_seed0.ts"
    other = shared / "rave-models" / "v2cap16_mono_44k_seed1.ts"
    prior = shared / "priors" / "prior_small_v2cap16_mono_44k_seed0.ts"
    with tempfile.TemporaryDirectory(prefix="ravekit-compare-") as tmp:
        root = Path(tmp)
        base = root / "base"
        base.mkdir()
        archive = subprocess.run(["git", "-C", str(HERE), "archive", args.base], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
        demo = root / "demo.ts"
        subprocess.run([sys.executable, "-m", "tools.make_demo_model", str(demo)], cwd=HERE, check=True,
                       capture_output=True)
        make_audio(root / "audio")
        runs = commands(demo, export if export.exists() else None, other if other.exists() else None,
                        prior if prior.exists() else None)
        scratch = root / "scratch"
        before = run_all(base, scratch, root / "audio", runs)
        after = run_all(HERE, scratch, root / "audio", runs)
    differ = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    for name in differ:
        state = "missing before" if name not in before else "missing after" if name not in after else "differs"
        print(f"{name}: {state}")
    print(f"{len(runs)} commands, {len(after)} files: {len(differ)} differ from {args.base}", file=sys.stderr)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
