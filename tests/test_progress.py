"""Progress in seconds of audio, and --jobs: one bar, one summary, each error once, no idle workers."""

from __future__ import annotations

import io
import re
import subprocess

import numpy as np
import pytest
import soundfile as sf

import decoder
import encoder
from conftest import write_audio
from ravekit.commands.parallel import plan_workers
from ravekit.commands.progress import PREFIX
from ravekit.engine.decode import Decoder
from ravekit.engine.encode import Encoder
from ravekit.engine.model import load_model


class Terminal(io.StringIO):
    """A stderr that says it is a terminal, so the bar is drawn into it."""

    def isatty(self) -> bool:
        return True


def lines_with(text: str, what: str) -> int:
    return sum(what in line for line in text.splitlines())


def test_library_reports_progress_chunk_by_chunk_within_one_file(demo_model, tmp_path):
    model = load_model(demo_model, "cpu", checksum=False)
    sr, ratio = model.info.sr, model.info.ratio
    src = write_audio(tmp_path / "long.wav", sr=sr, seconds=2.0)
    samples = sf.info(str(src)).frames
    steps = []
    enc = Encoder(model, chunk_seconds=0.25)
    (result,) = enc.encode_file(src, progress=steps.append)
    chunk = enc.chunk * ratio / sr
    frames = result.z.shape[-1]
    assert len(steps) == -(-frames // enc.chunk) > 3  # one call per chunk, several within the file
    assert steps[:-1] == [chunk] * (len(steps) - 1) and 0 < steps[-1] <= chunk
    assert sum(steps) == pytest.approx(samples / sr, abs=1e-9)

    steps.clear()
    dec = Decoder(model, chunk_seconds=0.25)
    dec.decode_to_file(result, tmp_path / "out.wav", progress=steps.append)
    assert len(steps) == -(-frames // dec.chunk) > 3
    assert sum(steps) == pytest.approx(frames * ratio / sr, abs=1e-9)


def test_bar_counts_seconds_of_audio_within_a_single_file(demo_model, tmp_path, monkeypatch, capsys):
    src = write_audio(tmp_path / "one.wav", seconds=3.0)
    term = Terminal()
    monkeypatch.setattr("sys.stderr", term)
    code = encoder.main(["-m", str(demo_model), "-i", str(src), "-o", str(tmp_path / "o"), "--chunk", "0.5"])
    assert code == 0
    shown = re.findall(r"([\d.]+)/3\.0 s of audio", term.getvalue())
    # The bar moves while the one file is encoded, not only when it is done.
    assert len({float(x) for x in shown if 0 < float(x) < 3.0}) >= 3
    assert float(shown[-1]) == 3.0
    # --quiet: no bar, no summary.
    term.seek(0)
    term.truncate()
    code = encoder.main(["-m", str(demo_model), "-i", str(src), "-o", str(tmp_path / "o"), "-q", "--force"])
    assert code == 0 and term.getvalue() == ""


def test_warnings_during_the_bar_are_written_above_it(demo_model, tmp_path, monkeypatch):
    """A warning printed straight to stderr landed on the bar's line, leaving a torn bar behind."""
    (tmp_path / "lat").mkdir()
    for name in ("a", "b"):  # 4 dims for a model of 8: a warning for each, while the bar is drawn
        np.save(tmp_path / "lat" / f"{name}.npy", np.zeros((1, 4, 30), np.float32))
    term = Terminal()
    monkeypatch.setattr("sys.stderr", term)
    code = decoder.main(["-m", str(demo_model), "-i", str(tmp_path / "lat"), "-o", str(tmp_path / "o")])
    assert code == 0
    # What a terminal shows of each line is what follows its last carriage return.
    shown = [line.rsplit("\r", 1)[-1] for line in term.getvalue().split("\n")]
    warnings = [line for line in term.getvalue().split("\n") if "warning:" in line]
    assert len(warnings) == 2, term.getvalue()
    assert sum(line.startswith("decoder.py: warning: ") for line in shown) == 2, term.getvalue()


def test_plan_workers_caps_at_cores():
    assert plan_workers(2, 8) == (2, None)
    n, note = plan_workers(99, 4)
    assert n == 4 and "--jobs 99" in note and "4 cores" in note
    assert plan_workers(8, 2) == (2, "--jobs 8: starting 2 processes (2 cores)")
    assert plan_workers(3, 1)[0] == 1
    assert plan_workers(4, None)[0] == 1  # unknown core count: one


def test_jobs_99_on_two_files_starts_two_workers(demo_model, tmp_path, monkeypatch, capfd):
    for i in range(2):
        write_audio(tmp_path / "in" / f"f{i}.wav", seconds=0.2, seed=i)
    started = []
    real_popen = subprocess.Popen

    def popen(*args, **kwargs):
        started.append(args[0])
        return real_popen(*args, **kwargs)

    monkeypatch.setattr("ravekit.commands.parallel.usable_cores", lambda: 64)
    monkeypatch.setattr("ravekit.commands.parallel.subprocess.Popen", popen)
    code = encoder.main(["-m", str(demo_model), "-i", str(tmp_path / "in"), "-o", str(tmp_path / "o"), "-j", "99"])
    out, err = capfd.readouterr()
    assert code == 0, err
    # Two files on 64 processes: one worker per file, each sharing its chunks with 31 helpers.
    assert len(started) == 2 and [c[-1] for c in started] == ["1/2", "2/2"]
    assert all(c[-4:-2] == ["--jobs", "32"] for c in started)
    assert "--jobs 99: starting 64 processes (64 cores)" in err
    assert sorted(out.split()) == [str(tmp_path / "o" / f"f{i}.npy") for i in range(2)]


def test_jobs_2_on_one_file_runs_in_this_process(demo_model, tmp_path, monkeypatch, capfd):
    src = write_audio(tmp_path / "only.wav", seconds=0.2)
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{src}\n"))
    monkeypatch.setattr("ravekit.commands.parallel.subprocess.Popen", None)  # starting a process would fail
    code = encoder.main(["-m", str(demo_model), "-i", "-", "-o", str(tmp_path / "o"), "-j", "2"])
    out, err = capfd.readouterr()
    assert code == 0 and out.split() == [str(tmp_path / "o" / "only.npy")], err


def test_jobs_2_shows_each_error_once_and_one_summary(demo_model, tmp_path, capfd):
    for i in range(3):
        write_audio(tmp_path / "in" / f"good{i}.wav", seconds=0.2, seed=i)
    (tmp_path / "in" / "bad.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    code = encoder.main(["-m", str(demo_model), "-i", str(tmp_path / "in"), "-o", str(tmp_path / "o"), "-j", "2"])
    out, err = capfd.readouterr()
    assert code == 1
    assert len(out.split()) == 3
    assert lines_with(err, "bad.wav") == 1 and err.count("error:") == 1
    assert len(re.findall(r"written", err)) == 1 and "3 written, 1 failed" in err
    assert PREFIX.strip() not in err  # the workers' progress lines are parsed, not relayed
    # An error every worker meets (a model that does not load) is shown once too.
    bad_model = tmp_path / "bad.ts"
    bad_model.write_bytes(b"not a model")
    code = encoder.main(["-m", str(bad_model), "-i", str(tmp_path / "in"), "-o", str(tmp_path / "o2"), "-j", "2"])
    out, err = capfd.readouterr()
    assert code == 1 and out == ""
    assert lines_with(err, str(bad_model)) == 1, err


def test_single_process_shows_each_error_once(demo_model, tmp_path, capfd):
    write_audio(tmp_path / "in" / "good.wav", seconds=0.2)
    (tmp_path / "in" / "bad.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    code = encoder.main(["-m", str(demo_model), "-i", str(tmp_path / "in"), "-o", str(tmp_path / "o")])
    _, err = capfd.readouterr()
    assert code == 1 and lines_with(err, "bad.wav") == 1 and "1 written, 1 failed" in err


def test_decoder_jobs_aggregate_progress_and_summary(demo_model, tmp_path, capfd):
    for i in range(2):
        np.save(tmp_path / f"z{i}.npy", np.zeros((1, 8, 5), dtype=np.float32))
    code = decoder.main(["-m", str(demo_model), "-i", str(tmp_path / "z0.npy"), str(tmp_path / "z1.npy"),
                         "-o", str(tmp_path / "o"), "-j", "2"])
    out, err = capfd.readouterr()
    assert code == 0, err
    assert len(out.split()) == 2 and err.count("2 written") == 1


def stdin_bytes(data: bytes) -> io.TextIOWrapper:
    """A stdin as the terminal gives it: text on top of bytes, lines split at "\\n" only."""
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline="\n")


@pytest.mark.parametrize("script", ["encoder", "decoder"])
def test_jobs_2_with_null_reads_and_writes_whole_nul_records(script, demo_model, tmp_path, monkeypatch, capfdbinary):
    """-i - -0 --jobs 2: names holding \\r or \\n reach the workers and come back intact, one record each."""
    names = ["plain", "car\rriage", "two\nlines", "tail"]
    for i, name in enumerate(names):
        write_audio(tmp_path / "in" / f"{name}.wav", seconds=0.2, seed=i)
    if script == "decoder":
        assert encoder.main(["-q", "-m", str(demo_model), "-i", str(tmp_path / "in"), "-0", "-o",
                             str(tmp_path / "lat")]) == 0
        capfdbinary.readouterr()
        inputs, main, suffix = tmp_path / "lat", decoder.main, ".wav"
    else:
        inputs, main, suffix = tmp_path / "in", encoder.main, ".npy"
    given = sorted(p for p in inputs.iterdir() if p.suffix in (".wav", ".npy"))
    monkeypatch.setattr("sys.stdin", stdin_bytes(b"".join(bytes(p) + b"\0" for p in given)))
    monkeypatch.setattr("ravekit.commands.parallel.usable_cores", lambda: 2)
    code = main(["-m", str(demo_model), "-i", "-", "-0", "-o", str(tmp_path / "out"), "--jobs", "2"])
    out, err = capfdbinary.readouterr()
    assert code == 0, err
    assert out.endswith(b"\0") and sorted(out.split(b"\0")[:-1]) == sorted(
        bytes(tmp_path / "out" / f"{name}{suffix}") for name in names)


def test_relay_with_null_writes_whole_records_only(tmp_path):
    """A record split across a worker's writes is not interleaved with another worker's paths."""
    import threading

    from ravekit.commands.parallel import _relay

    class Pieces(io.BytesIO):
        def __init__(self, pieces):
            super().__init__()
            self.pieces = list(pieces)

        def read1(self, n=-1):
            return self.pieces.pop(0) if self.pieces else b""

    class Out(io.StringIO):
        def __init__(self):
            super().__init__()
            self.buffer = io.BytesIO()
            self.writes = []
            self.buffer.write = lambda data: self.writes.append(bytes(data)) or len(data)

    out = Out()
    _relay(Pieces([b"/o/a\rb.n", b"py\0/o/c\n", b"d.npy\0"]), out, threading.Lock(), null=True)
    assert out.writes == [b"/o/a\rb.npy\0", b"/o/c\nd.npy\0"]
