"""inspector.py --realtime: per method and nn~ buffer size, warm call times, real-time factor, headroom, verdict.

Timing values depend on the machine: the tests check that they are there, finite
and positive, and consistent with each other, never what they are.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

import inspector
from conftest import run_cli

STREAMING = Path(os.environ.get("RAVE_TEST_MODELS", "/nonexistent")) / "kinds" / "v2cap16_mono_44k_seed2_streaming.ts"


def realtime(capsys, model, *extra):
    return run_cli(capsys, inspector, "-i", model, "--realtime", "--seconds", "0.2", "--threads", "1", *extra)


def test_realtime_json_has_finite_positive_figures_and_a_verdict_per_method(demo_model, capsys):
    code, out, err = realtime(capsys, demo_model, "--buffer", "2048,4096", "--json")
    assert code == 0, err
    [doc] = json.loads(out)
    assert set(doc["methods"]) == {"forward", "encode", "decode"}
    assert doc["threads"] == 1
    for method, found in doc["methods"].items():
        assert [t["buffer"] for t in found["buffers"]] == [2048, 4096]
        for t in found["buffers"]:
            for key in ("buffer_ms", "median_ms", "worst_ms", "rtf", "rtf_worst", "headroom"):
                assert math.isfinite(t[key]) and t[key] > 0, (method, key, t[key])
            assert t["worst_ms"] >= t["median_ms"]
            assert t["calls"] >= 8
            assert t["buffer_ms"] == pytest.approx(1000 * t["buffer"] / 44100)
            assert t["keeps_up"] == (t["worst_ms"] < t["buffer_ms"])
        assert found["verdict"].startswith(f"{method}: ")
        if found["plays_from"] is None:
            assert "does not play live" in found["verdict"]
        else:
            assert f"plays live at buffer {found['plays_from']} and up" in found["verdict"]
            # every buffer from there up kept up
            assert all(t["keeps_up"] for t in found["buffers"] if t["buffer"] >= found["plays_from"])


def test_realtime_table_names_each_method_and_buffer(demo_model, capsys):
    code, out, err = realtime(capsys, demo_model, "--buffer", "4096")
    assert code == 0, err
    lines = out.splitlines()
    assert "ratio 2048" in lines[0] and "1 thread" in lines[0]
    for method in ("forward", "encode", "decode"):
        assert any(line.split()[:2] == [method, "4096"] for line in lines)
        assert any(line.strip().startswith(f"{method}: ") for line in lines[lines.index("verdict:"):])


def test_realtime_default_buffers_are_the_models_multiples(fixture_models, capsys):
    """A ratio-1024 model gets 1024..8192; the default list never fails a model for its ratio."""
    code, out, err = realtime(capsys, fixture_models["rave_named"], "--json")
    assert code == 0, err
    assert [t["buffer"] for t in json.loads(out)[0]["methods"]["decode"]["buffers"]] == [1024, 2048, 4096, 8192]
    code, out, err = realtime(capsys, fixture_models["demo"], "--json")
    assert [t["buffer"] for t in json.loads(out)[0]["methods"]["decode"]["buffers"]] == [2048, 4096, 8192]


@pytest.mark.skipif(not STREAMING.exists(), reason="real streaming export not in RAVE_TEST_MODELS/kinds")
def test_realtime_on_a_streaming_export(capsys):
    code, out, err = realtime(capsys, STREAMING, "--buffer", "4096", "--json")
    assert code == 0, err
    [doc] = json.loads(out)
    assert doc["streaming"] is True and set(doc["methods"]) == {"forward", "encode", "decode"}


@pytest.mark.parametrize("given, says", [("1000", "--buffer 1000: "), ("0", "--buffer 0: "),
                                         ("4096,3000", "--buffer 3000: ")])
def test_a_buffer_nn_cannot_use_is_one_line_exit_2(demo_model, capsys, given, says):
    code, out, err = realtime(capsys, demo_model, "--buffer", given)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert says in err and "multiple of its compression ratio 2048" in err


def test_realtime_with_save_is_refused(demo_model, capsys, tmp_path):
    code, _, err = realtime(capsys, demo_model, "--save", "-o", tmp_path / "o")
    assert code == 2 and "--save" in err and len(err.strip().splitlines()) == 1


def test_several_models_one_json_list_and_a_bad_file_does_not_stop_the_others(fixture_models, tmp_path, capsys):
    bad = tmp_path / "bad.ts"
    bad.write_bytes(b"not a model")
    code, out, err = run_cli(capsys, inspector, "-i", fixture_models["demo"], bad, fixture_models["discrete"],
                             "--realtime", "--seconds", "0.2", "--threads", "1", "--json")
    assert code == 1
    assert [Path(d["model"]).name for d in json.loads(out)] == ["demo.ts", "discrete.ts"]
    assert len(err.strip().splitlines()) == 1 and "bad.ts" in err


def test_a_model_with_none_of_nn_methods_is_one_line_exit_2(demo_model, capsys, monkeypatch):
    from ravekit.engine import model as model_module

    monkeypatch.setattr(model_module, "_methods", lambda module: ["prior"])
    code, out, err = realtime(capsys, demo_model)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "none of nn~'s methods (forward, encode, decode)" in err


@pytest.mark.parametrize("flags", [("--buffer", "2048"), ("--seconds", "1"), ("--threads", "1")])
def test_realtime_flags_without_realtime_are_refused_not_ignored(demo_model, capsys, flags):
    code, out, err = run_cli(capsys, inspector, "-i", demo_model, *flags)
    assert code == 2 and out == "" and f"{flags[0]} applies with --realtime" in err, err


def test_live_latency_without_live_is_refused_not_ignored(demo_model, capsys, tmp_path):
    import decoder

    code, _, err = run_cli(capsys, decoder, "-m", demo_model, "-i", tmp_path, "--live_latency", "trim",
                           "-o", tmp_path / "out")
    assert code == 2 and "--live_latency trim applies with --live" in err, err
