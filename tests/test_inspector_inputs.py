"""inspector.py: bad input, checkpoints (.ckpt) and command-line behaviour."""

from __future__ import annotations

import io
import json
import os
import sys

import pandas as pd
import pytest
import torch
from test_inspector import assert_one_line_error, load, run_json

import inspector
from conftest import run_cli


class Payload:
    """Pickles as a call that would leave a marker file if it were ever run."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.fixture()
def checkpoint_run(tmp_path):
    """A Lightning-like RAVE run: config.gin at the top, the .ckpt two folders down."""
    run_dir = tmp_path / "runs" / "mymodel"
    ckpt = run_dir / "version_0" / "checkpoints" / "best.ckpt"
    ckpt.parent.mkdir(parents=True)
    (run_dir / "config.gin").write_text("SAMPLING_RATE = 48000\nLATENT_SIZE = 16\nCAPACITY = 32\n")
    gen = torch.Generator().manual_seed(0)
    state = {"encoder.net.0.weight": torch.randn(8, 1, 7, generator=gen),
             "encoder.net.0.bias": torch.randn(8, generator=gen),
             "decoder.net.0.weight": torch.randn(1, 8, 7, generator=gen),
             "pqmf.hk": torch.randn(4, 16, generator=gen),
             "step": torch.tensor(12)}
    torch.save({"epoch": 3, "global_step": 1200, "state_dict": state,
                "hyper_parameters": {"learning_rate": 1e-4, "beta": 0.1}}, ckpt)
    return ckpt, state


# ---------------------------------------------------------------- bad input

def test_non_model_file_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "notes.ts"
    bad.write_text("these are not weights\n")
    code, out, err = run_cli(capsys, inspector, "-i", bad)
    assert code != 0 and out == ""
    assert str(bad) in err and "Traceback" not in err


def test_truncated_model_is_one_line_error(demo_model, tmp_path, capsys):
    data = demo_model.read_bytes()
    cut = tmp_path / "cut.ts"
    cut.write_bytes(data[: len(data) // 2])
    code, out, err = run_cli(capsys, inspector, "-i", cut)
    assert code != 0 and out == ""
    assert str(cut) in err and "truncated" in err and "Traceback" not in err


def test_folder_with_a_bad_file_reports_it_and_shows_the_rest(demo_model, tmp_path, capsys):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "good.ts").write_bytes(demo_model.read_bytes())
    (folder / "broken.ts").write_bytes(b"\x00" * 100)
    (folder / "readme.txt").write_text("not picked up: wrong extension")
    code, out, err = run_cli(capsys, inspector, "-i", folder)
    assert code == 1
    assert "== good.ts ==" in out and "broken.ts" not in out
    assert "broken.ts" in err and "readme" not in err and "Traceback" not in err


# ---------------------------------------------------------------- checkpoints

@pytest.mark.parametrize("kind", ["open", "system"])
def test_malicious_checkpoint_never_runs_code(tmp_path, capsys, kind):
    marker = tmp_path / "pwned"
    payload = Payload(open, (str(marker), "w")) if kind == "open" else Payload(os.system, (f"touch '{marker}'",))
    ckpt = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(3)}, "hyper_parameters": payload}, ckpt)
    assert not marker.exists()
    for extra in ([], ["--config"], ["--dict"], ["--compare"]):
        inputs = [ckpt, ckpt] if extra == ["--compare"] else [ckpt]
        code, out, err = run_cli(capsys, inspector, "-i", *inputs, *extra)
        assert code != 0
        assert "could not be read safely" in err and str(ckpt) in err and "Traceback" not in err
    assert not marker.exists()


def test_checkpoint_summary(checkpoint_run, capsys):
    ckpt, state = checkpoint_run
    (s,) = run_json(capsys, "-i", ckpt)
    assert s["format"] == "checkpoint"
    assert s["state_dict_entries"] == len(state)
    assert s["sr"] == 48000 and s["latent_size"] == 16  # from the run's config.gin
    assert s["ratio"] is None  # a checkpoint does not say; printed as unknown
    assert s["checkpoint"]["epoch"] == 3 and s["checkpoint"]["global_step"] == 1200
    assert s["totals"]["tensors"] == sum(t.numel() for t in state.values())
    enc = next(c for c in s["components"] if c["component"] == "encoder")
    assert enc["tensors"] == state["encoder.net.0.weight"].numel() + state["encoder.net.0.bias"].numel()


def test_checkpoint_config_prints_gin_and_hyper_parameters(checkpoint_run, capsys):
    ckpt, _ = checkpoint_run
    code, out, err = run_cli(capsys, inspector, "-i", ckpt, "--config")
    assert code == 0, err
    assert "SAMPLING_RATE = 48000" in out and "learning_rate" in out
    records = run_json(capsys, "-i", ckpt, "--config")
    assert {r["source"] for r in records} == {str(ckpt.parents[2] / "config.gin"), f"{ckpt} [hyper_parameters]"}


def test_checkpoints_found_in_folders_with_extensions(checkpoint_run, demo_model, capsys):
    ckpt, _ = checkpoint_run
    root = ckpt.parents[3]
    (root / "demo.ts").write_bytes(demo_model.read_bytes())
    records = run_json(capsys, "-i", root, "--extensions", ".ts,.ckpt")
    assert sorted(r["format"] for r in records) == ["checkpoint", "torchscript"]
    assert [r["file"] for r in run_json(capsys, "-i", root)] == ["demo.ts"]  # default: .ts only


def test_config_of_export_without_one_is_clear(demo_model, capsys):
    code, _, err = run_cli(capsys, inspector, "-i", demo_model, "--config")
    assert code == 1
    assert_one_line_error(err, str(demo_model), "no training configuration")


def test_dict_mode_on_checkpoint(checkpoint_run, capsys, monkeypatch):
    ckpt, state = checkpoint_run
    monkeypatch.setattr(sys, "stdin", io.StringIO("pqmf.hk\n"))
    code, out, _ = run_cli(capsys, inspector, "-i", ckpt, "--dict")
    assert code == 0
    assert f"mean {float(state['pqmf.hk'].double().mean()):.6g}" in out


def test_attr_mode_on_checkpoint_shows_its_entries(checkpoint_run, capsys, monkeypatch):
    ckpt, _ = checkpoint_run
    monkeypatch.setattr(sys, "stdin", io.StringIO("hyper_parameters\nstate_dict\n"))
    code, out, _ = run_cli(capsys, inspector, "-i", ckpt, "--attr")
    assert code == 0
    assert "'learning_rate': 0.0001" in out
    assert "<tensor float32 (8, 1, 7)>" in out  # tensors described, not dumped


# ---------------------------------------------------------------- command line

def test_json_with_save_keeps_stdout_valid_json(fixture_models, tmp_path, capsys):
    paths = [fixture_models["demo"], fixture_models["stereo512"]]
    code, out, err = run_cli(capsys, inspector, "-i", *paths, "--json", "--save", "-o", tmp_path)
    assert code == 0, err
    assert [r["file"] for r in json.loads(out)] == ["demo.ts", "stereo512.ts"]
    summary = pd.read_csv(tmp_path / "summary.csv")  # one row per model when several
    assert list(summary["sr"]) == [load(p).sr for p in paths]
    for p in paths:
        assert (tmp_path / f"{p.stem}.state_dict.csv").is_file()
        assert f"saved {tmp_path / (p.stem + '.state_dict.csv')}" in err


def test_detail_mode_prompts_on_a_terminal(demo_model, capsys, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    typed = iter(["latent_mean", "q"])
    prompts = []

    def fake_input(prompt=""):
        prompts.append(prompt)
        return next(typed)

    monkeypatch.setattr(sys, "stdin", Terminal(""))
    monkeypatch.setattr("builtins.input", fake_input)
    code, out, err = run_cli(capsys, inspector, "-i", demo_model, "--dict")
    assert code == 0
    assert prompts == ["entry> ", "entry> "]  # asked again after an answer, then q ended it
    assert "latent_mean  (buffer)" in out and "q to quit" in err


def test_messages_are_prefixed_with_the_script_name(tmp_path, capsys):
    code, out, err = run_cli(capsys, inspector, "-i", tmp_path / "missing.ts")
    assert code != 0 and out == ""
    assert err.startswith("inspector.py: error: ") and str(tmp_path / "missing.ts") in err
