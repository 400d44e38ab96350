"""averager.py --audio: the listening page, opened in a real headless browser (Debian's chromium)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import averager
from conftest import REAL_MODELS, run_cli, write_audio

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
V2 = [p for p in REAL_MODELS if p.stem in ("v2cap16_mono_44k_seed0", "v2cap16_mono_44k_seed1")]
needs_v2 = pytest.mark.skipif(len(V2) < 2, reason="RAVE_TEST_MODELS with two mono v2 exports not set")


def browse(page: Path, *flags: str) -> tuple[str, str]:
    """Open ``page`` from disk in headless chromium; return (what it printed, its log on stderr)."""
    with tempfile.TemporaryDirectory(prefix="ravekit-chromium-") as profile:
        done = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--autoplay-policy=no-user-gesture-required",
             "--virtual-time-budget=5000", "--enable-logging=stderr", "--v=0", *flags, page.resolve().as_uri()],
            capture_output=True, text=True, timeout=120)
    return done.stdout, done.stderr


def audio_states(page: Path) -> dict[str, str | None]:
    """Each <audio> src of the page as the browser saw it: ``ready`` (the file loaded), ``error`` or None."""
    dom, log = browse(page, "--dump-dom")
    # The page logs nothing itself, and chromium logs console.error like console.log (INFO:CONSOLE):
    # any console line is an error or an uncaught exception.
    assert "Uncaught" not in log and ":CONSOLE" not in log, log
    states = {}
    for tag in re.findall(r"<audio[^>]*>", dom):
        src = re.search(r'src="([^"]*)"', tag)
        state = re.search(r'data-state="([^"]*)"', tag)
        assert src, tag
        states[src.group(1)] = state.group(1) if state else None
    return states


def check_offline(page: Path) -> str:
    """The page needs nothing but itself and the WAVs beside it."""
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)
    assert "<svg" in text and text.count("data:image/png;base64,") == text.count("<audio")
    return text


@needs_chromium
def test_listening_page_plays_every_render_in_a_browser(fixture_models, tmp_path, capsys):
    song = write_audio(tmp_path / "in" / "my song.wav", seconds=0.6)
    out = tmp_path / "out" / "hybrid.ts"
    code, stdout, err = run_cli(capsys, averager, "--models", fixture_models["demo"], fixture_models["demo_b"],
                                "-o", out, "--audio", song, "--seed", 2)
    assert code == 0, err
    page = out.parent / "hybrid.listen.html"
    renders = [out.parent / f"my song.{x}.wav" for x in ("A", "B", "hybrid")]
    assert stdout.split("\n")[:-1] == [str(out.with_suffix(x)) for x in (".ts", ".csv", ".json")] + \
        [str(p) for p in renders] + [str(page)]
    assert json.loads(out.with_suffix(".json").read_text())["listening_page"] == str(page)
    text = check_offline(page)
    assert "rel_dist" in text and text.count("<rect") > 0
    # Relative, URL-quoted names: the page and its WAVs move together.
    assert audio_states(page) == {"my%20song.A.wav": "ready", "my%20song.B.wav": "ready",
                                  "my%20song.hybrid.wav": "ready"}

    # Copied without its WAVs, the page says which file is missing instead of failing silently.
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(page, alone / page.name)
    assert set(audio_states(alone / page.name).values()) == {"error"}

    shot = tmp_path / "page.png"
    browse(page, f"--screenshot={shot}", "--window-size=1200,1600")
    assert shot.stat().st_size > 10_000


@needs_chromium
@needs_v2
def test_listening_page_with_align_adds_the_unaligned_merge(tmp_path, capsys):
    song = write_audio(tmp_path / "song.wav", seconds=0.5)
    out = tmp_path / "out" / "m.ts"
    code, stdout, err = run_cli(capsys, averager, "--models", *V2, "--align", "-o", out, "--audio", song, lines=True)
    assert code == 0, err
    names = [Path(p).name for p in stdout]
    assert names == ["m.ts", "m.csv", "m.json", "song.A.wav", "song.B.wav", "song.m.wav", "song.m.unaligned.wav",
                     "m.listen.html", "m.align.csv"]
    check_offline(out.parent / "m.listen.html")
    assert audio_states(out.parent / "m.listen.html") == dict.fromkeys(names[3:7], "ready")
    recipe = json.loads(out.with_suffix(".json").read_text())
    assert [Path(r).name for r in recipe["renders"]] == names[3:7]

    import soundfile as sf

    aligned, unaligned = (sf.read(str(out.parent / n))[0] for n in names[5:7])
    # Same seed, same input: the two merges differ only by the alignment.
    assert aligned.shape == unaligned.shape and not (aligned == unaligned).all()


@needs_v2
def test_chart_has_one_slot_per_row_of_the_report(tmp_path, capsys):
    import csv

    song = write_audio(tmp_path / "song.wav", seconds=0.3)
    out = tmp_path / "out" / "m.ts"
    code, _, err = run_cli(capsys, averager, "--models", *V2, "-o", out, "--audio", song)
    assert code == 0, err
    with open(out.with_suffix(".csv"), newline="") as f:
        names = [row["entry"] for row in csv.DictReader(f)]
    chart = out.parent.joinpath("m.listen.html").read_text(encoding="utf-8").split("<svg", 1)[1]
    slots = re.findall(r"<title>([^:<]+):", chart)
    assert slots == names and len(names) == 79  # v2: 79 entries, 4 of them with zero elements
    assert f"all {len(names)} entries" in chart and "4 hollow: no rel_dist" in chart
