"""What a model's probes measured is kept, so a second run on the same model starts at once.

The cache (ravekit/engine/probes.py) is keyed by the model's sha256: a run reuses
the answers for the same bytes, measures afresh for other bytes, and survives a
damaged, stale or unwritable cache by measuring again; the outputs never depend
on whether the answers came from the cache.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import decoder
import encoder
import ravekit.engine.context as context
from conftest import run_cli, write_audio
from ravekit.engine.model import sha256_of
from ravekit.engine.probes import PROBE_VERSION


@pytest.fixture
def probes(monkeypatch, tmp_path):
    """Count the probe runs, with a cache of this test's own."""
    calls = []
    real = context.widening_probe

    def counting(model, probe):
        calls.append(probe.__name__)
        return real(model, probe)

    monkeypatch.setattr(context, "widening_probe", counting)
    import ravekit.engine.latency as latency
    monkeypatch.setattr(latency, "widening_probe", counting)
    monkeypatch.setenv("RAVEKIT_CACHE_DIR", str(tmp_path / "cache"))
    return calls


def _encode(capsys, model, src, out):
    code, _, err = run_cli(capsys, encoder, "-m", model, "-i", src, "-o", out, "--force", "-q")
    assert code == 0, err
    return np.load(out / f"{src.stem}.npy", allow_pickle=False)


def test_second_run_does_not_probe_again(tmp_path, capsys, fixture_models, probes):
    src = write_audio(tmp_path / "a.wav", 44100, 2.0)
    first = _encode(capsys, fixture_models["streaming"], src, tmp_path / "one")
    assert probes, "the first run measures the model"
    probes.clear()
    second = _encode(capsys, fixture_models["streaming"], src, tmp_path / "two")
    assert probes == []
    assert np.array_equal(first, second)
    entry = tmp_path / "cache" / "probes" / f"{sha256_of(fixture_models['streaming'])}.json"
    assert json.loads(entry.read_text())["values"]["latency.encode"] == 0


def test_other_bytes_are_measured_afresh(tmp_path, capsys, fixture_models, probes):
    src = write_audio(tmp_path / "a.wav", 44100, 1.0)
    _encode(capsys, fixture_models["demo"], src, tmp_path / "one")
    probes.clear()
    _encode(capsys, fixture_models["demo_b"], src, tmp_path / "two")
    assert probes, "a model with other weights is not taken for the cached one"


def test_decoder_answers_are_cached_too(tmp_path, capsys, fixture_models, probes):
    z = np.zeros((1, 8, 40), np.float32)
    np.save(tmp_path / "z.npy", z)
    args = ["-m", fixture_models["streaming"], "-i", tmp_path / "z.npy", "--force", "-q"]
    assert run_cli(capsys, decoder, *args, "-o", tmp_path / "one")[0] == 0
    assert probes
    probes.clear()
    assert run_cli(capsys, decoder, *args, "-o", tmp_path / "two")[0] == 0
    assert probes == []


@pytest.mark.parametrize("damage", ["garbage", "stale", "wrong type", "unwritable"])
def test_a_bad_cache_is_measured_around(tmp_path, capsys, fixture_models, probes, monkeypatch, damage):
    model = fixture_models["streaming"]
    src = write_audio(tmp_path / "a.wav", 44100, 2.0)
    monkeypatch.setenv("RAVEKIT_CACHE_DIR", "")  # the reference: no cache at all
    reference = _encode(capsys, model, src, tmp_path / "ref")
    monkeypatch.setenv("RAVEKIT_CACHE_DIR", str(tmp_path / "cache"))
    entry = tmp_path / "cache" / "probes" / f"{sha256_of(model)}.json"
    entry.parent.mkdir(parents=True)
    if damage == "garbage":
        entry.write_text("{not json")
    elif damage == "stale":  # written by an older probe: its answers are not trusted
        entry.write_text(json.dumps({"stamp": {"probe_version": 0}, "values": {"latency.encode": 99,
                                                                               "context.encode": 99}}))
    elif damage == "wrong type":  # hand-edited: answers no probe gives
        stamp = {"probe_version": PROBE_VERSION, "torch": torch.__version__, "device": "cpu"}
        entry.write_text(json.dumps({"stamp": stamp, "values": {"latency.encode": "7", "context.encode": -1}}))
    else:  # a cache folder that cannot be made (chmod would not stop root)
        blocker = tmp_path / "blocker"
        blocker.write_text("a file where the cache folder should go")
        monkeypatch.setenv("RAVEKIT_CACHE_DIR", str(blocker))
    probes.clear()
    assert np.array_equal(_encode(capsys, model, src, tmp_path / "out"), reference)
    assert probes, "the probes ran instead of trusting a bad entry"
    if damage != "unwritable":
        assert json.loads(entry.read_text())["stamp"]["probe_version"] >= 1


def test_runs_side_by_side_never_see_half_a_cache_file(tmp_path, monkeypatch, fixture_models):
    """Two runs measuring one model at once: every read finds a whole file, and both answers end up kept."""
    import threading

    from ravekit.engine import probes
    from ravekit.engine.model import load_model

    monkeypatch.setenv("RAVEKIT_CACHE_DIR", str(tmp_path / "cache"))
    model = load_model(fixture_models["demo"], "cpu")
    path = probes.cache_dir() / f"{model.info.sha256}.json"
    stop, torn = threading.Event(), []

    def reader():
        while not stop.is_set():
            if path.exists():
                try:
                    json.loads(path.read_text())
                except ValueError:
                    torn.append(path.read_text())

    def writer(name):
        for k in range(100):
            probes.cached(model, f"{name}.{k}", lambda k=k: k)

    threads = [threading.Thread(target=reader)] + [threading.Thread(target=writer, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads[1:]:
        t.join()
    stop.set()
    threads[0].join()
    assert torn == []
    # An answer written over by the other run is measured again next time; none is ever wrong.
    values = json.loads(path.read_text())["values"]
    assert values and all(values[key] == int(key.split(".")[1]) for key in values)
    assert not list(path.parent.glob(".*.part"))
