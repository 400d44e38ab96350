"""Packaging and start-up: `pip install .` gives the five console commands, which find the built-in
patterns from the installed package, and no command's --help loads torch or numpy."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT

COMMANDS = ("encoder", "decoder", "generator", "inspector", "averager")
# What each --help must show (flags or defaults only that command has).
HELP_SHOWS = {"encoder": ["--channel_mode"], "decoder": ["--subtype"], "generator": ["--pattern"],
              "inspector": ["--compare", "./_inspector-output"], "averager": ["--scope", "--weights"]}
# Every pattern file of the checkout is a built-in the installed package must carry.
BUILTIN_PATTERNS = tuple(sorted(p.stem for p in (ROOT / "patterns").glob("*.py") if not p.stem.startswith("_")))


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return {**env, **extra}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The checkout installed with pip into a folder of its own (no network, no dependencies).

    The sources are copied first so that the build leaves nothing in the checkout; the
    dependencies (numpy, torch, ...) come from the running venv.
    """
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is not installed (requirements-dev.txt); cannot build the checkout offline")
    base = tmp_path_factory.mktemp("install")
    src, target = base / "src", base / "site"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("ravekit", "patterns", "pd"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "--disable-pip-version-check", "--target", str(target), str(src)],
                          capture_output=True, text=True, timeout=300, env=clean_env())
    assert done.returncode == 0, done.stderr
    return target


def run_installed(site: Path, command: str, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """Run an installed console command outside the checkout, seeing only the installed ravekit."""
    return subprocess.run([str(site / "bin" / command), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=clean_env(PYTHONPATH=str(site), **env))


def test_pyproject_declares_the_five_console_commands():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {f"ravekit-{c}": f"ravekit.commands.{c}:main" for c in COMMANDS}


def test_installed_package_has_the_builtin_patterns_and_no_top_level_patterns(installed):
    assert not (installed / "patterns").exists()
    assert {p.stem for p in (installed / "ravekit" / "_patterns").glob("*.py")} >= set(BUILTIN_PATTERNS)
    # The Pd abstractions that the patches of generator.py --pd declare travel with the package too.
    assert (installed / "ravekit" / "_pd" / "latent-player~.pd").is_file()
    assert sorted(p.name for p in (installed / "bin").iterdir()) == sorted(f"ravekit-{c}" for c in COMMANDS)


def test_installed_generator_lists_and_runs_the_builtin_patterns(installed, tmp_path):
    listed = run_installed(installed, "ravekit-generator", "--list_patterns", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()] == list(BUILTIN_PATTERNS)
    z = np.random.default_rng(0).standard_normal((1, 4, 50)).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    done = run_installed(installed, "ravekit-generator", "--input", "z.npy", "--pattern", "fibo", "--num_latents",
                         "5", "--sample_rate", "44100", "--ratio", "2048", "--embeddings", "--seed", "3",
                         "--output", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    written = [Path(line) for line in done.stdout.splitlines()]
    assert any(p.suffix == ".npy" and "fibo" in p.name for p in written)
    assert all((tmp_path / p).is_file() for p in written)


def heavy_imports(importtime: str) -> list[str]:
    """The torch/numpy modules named in a ``PYTHONPROFILEIMPORTTIME`` log."""
    names = [line.rsplit("|", 1)[-1].strip() for line in importtime.splitlines() if line.startswith("import time:")]
    return [n for n in names if n.split(".")[0] in ("torch", "numpy")]


@pytest.mark.parametrize("kind", ["script", "console"])
@pytest.mark.parametrize("command", COMMANDS)
def test_help_imports_neither_torch_nor_numpy(command, kind, request, tmp_path):
    if kind == "script":
        done = subprocess.run([sys.executable, f"{command}.py", "--help"], cwd=ROOT, capture_output=True, text=True,
                              timeout=60, env=clean_env(PYTHONPROFILEIMPORTTIME="1"))
    else:
        done = run_installed(request.getfixturevalue("installed"), f"ravekit-{command}", "--help", cwd=tmp_path,
                             PYTHONPROFILEIMPORTTIME="1")
    assert done.returncode == 0, done.stderr
    assert "import time:" in done.stderr  # the log this test reads is there
    assert heavy_imports(done.stderr) == [], "heavy import"
    for text in HELP_SHOWS[command]:
        assert text in done.stdout


def test_installed_commands_name_themselves_as_run_workers_included(installed, tmp_path):
    """Usage and message lines said "encoder.py" though the user ran ravekit-encoder."""
    for command in COMMANDS:
        done = run_installed(installed, f"ravekit-{command}", "--help", cwd=tmp_path)
        assert done.stdout.startswith(f"usage: ravekit-{command} "), done.stdout[:80]
    import soundfile as sf

    for i in range(2):
        sf.write(str(tmp_path / f"a{i}.wav"), np.zeros(4410, np.float32), 44100)
    (tmp_path / "broken.ts").write_bytes(b"not a model")
    # One process, then two workers whose own error lines the parent relays.
    for jobs in ("1", "2"):
        done = run_installed(installed, "ravekit-encoder", "-m", "broken.ts", "-i", "a0.wav", "a1.wav", "-o", "out",
                             "--jobs", jobs, cwd=tmp_path)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and lines and all(line.startswith("ravekit-encoder: ") for line in lines), \
            done.stderr
    script = subprocess.run([sys.executable, str(ROOT / "encoder.py"), "-m", "broken.ts", "-i", "a0.wav"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120, env=clean_env())
    assert script.stderr.startswith("encoder.py: error: "), script.stderr
