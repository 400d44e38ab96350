"""encoder.py: files with more (or fewer) channels than the model, said and recorded."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

import encoder
from conftest import run_cli, synth


def sidecar(path):
    return json.loads(path.with_suffix(".json").read_text())


def six_channels(tmp_path):
    """A 6-channel file (every channel a different tone) and the 48 kHz stereo fixture's inputs."""
    x = synth(48000, 1.0, 6)
    sf.write(tmp_path / "six.wav", x, 48000, subtype="FLOAT")
    return x


def encoded(tmp_path, capsys, model, audio, name, *flags):
    sf.write(tmp_path / f"{name}.wav", audio, 48000, subtype="FLOAT")
    code, out, err = run_cli(capsys, encoder, "-m", model, "-i", tmp_path / f"{name}.wav", "-o", tmp_path / name,
                             *flags, lines=True)
    assert code == 0, err
    return np.load(out[0])


def test_extra_channels_are_named_on_stderr_and_in_the_sidecar(tmp_path, capsys, fixture_models):
    model = fixture_models["stereo512"]
    x = six_channels(tmp_path)
    code, out, err = run_cli(capsys, encoder, "-m", model, "-i", tmp_path / "six.wav", "-o", tmp_path / "o", lines=True)
    assert code == 0
    warnings = [line for line in err.splitlines() if "six.wav" in line]
    assert len(warnings) == 1  # once per file
    assert "6 channels into a 2-channel model" in warnings[0] and "ignored 3-6" in warnings[0]
    assert "--channel_mode fold" in warnings[0] and "--channels 3,4" in warnings[0]
    source = sidecar(tmp_path / "o" / "six.npy")["source"]
    assert source["channel_map"] == [[1], [2]] and source["channels_unused"] == [3, 4, 5, 6]
    assert "ignored 3-6" in source["channel_warning"]
    # What the warning says is what happened: channels 1 and 2, as a stereo file of them.
    np.testing.assert_array_equal(np.load(out[0]), encoded(tmp_path, capsys, model, x[:, :2], "first2"))


def test_fold_mixes_every_channel_down_to_the_models(tmp_path, capsys, fixture_models):
    model = fixture_models["stereo512"]
    x = six_channels(tmp_path)
    code, out, err = run_cli(capsys, encoder, "-m", model, "-i", tmp_path / "six.wav", "-o", tmp_path / "o",
                             "--channel_mode", "fold", lines=True)
    assert code == 0 and "six.wav" not in err
    folded = np.stack([x[:, 0::2].mean(1), x[:, 1::2].mean(1)], 1)
    np.testing.assert_allclose(np.load(out[0]), encoded(tmp_path, capsys, model, folded, "ref"), atol=1e-5)
    source = sidecar(tmp_path / "o" / "six.npy")["source"]
    assert source["channel_map"] == [[1, 3, 5], [2, 4, 6]] and source["channels_unused"] == []
    assert "channel_warning" not in source


def test_channels_picks_the_ones_to_use(tmp_path, capsys, fixture_models):
    model = fixture_models["stereo512"]
    x = six_channels(tmp_path)
    code, out, err = run_cli(capsys, encoder, "-m", model, "-i", tmp_path / "six.wav", "-o", tmp_path / "o",
                             "--channels", "3,4", lines=True)
    assert code == 0 and "six.wav" not in err  # asked for: nothing to warn about
    np.testing.assert_array_equal(np.load(out[0]), encoded(tmp_path, capsys, model, x[:, 2:4], "ref"))
    meta = sidecar(tmp_path / "o" / "six.npy")
    assert meta["source"]["channel_map"] == [[3], [4]] and meta["processing"]["channels"] == [3, 4]
    # A mono model mixes the picked channels; split encodes each on its own.
    code, out, _ = run_cli(capsys, encoder, "-m", fixture_models["demo"], "-i", tmp_path / "six.wav",
                           "-o", tmp_path / "s", "--channels", "6,1", "--channel_mode", "split", lines=True)
    assert code == 0 and sorted(p.rsplit("/", 1)[1] for p in out) == ["six.ch1.npy", "six.ch6.npy"]
    # Resuming with other channels is refused rather than silently kept.
    code, _, err = run_cli(capsys, encoder, "-m", model, "-i", tmp_path / "six.wav", "-o", tmp_path / "o",
                           "--channels", "5,6", lines=True)
    assert code == 1 and "channels [3, 4]" in err


def test_a_channel_the_file_lacks_fails_that_file_only(tmp_path, capsys, fixture_models):
    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / "st.wav", synth(48000, 0.5, 2), 48000, subtype="FLOAT")
    sf.write(tmp_path / "in" / "quad.wav", synth(48000, 0.5, 4), 48000, subtype="FLOAT")
    code, out, err = run_cli(capsys, encoder, "-m", fixture_models["stereo512"], "-i", tmp_path / "in",
                             "-o", tmp_path / "o", "--channels", "3,4", lines=True)
    assert code == 1 and [p.rsplit("/", 1)[1] for p in out] == ["quad.npy"]
    assert "st.wav: --channels 3,4: the file has only 2 channels" in err
    for bad in ("0,1", "a", "2,2"):
        with pytest.raises(SystemExit) as exit_info:  # argparse's own exit, before any work
            encoder.main(["-m", str(fixture_models["demo"]), "-i", str(tmp_path / "in"), "--channels", bad])
        assert exit_info.value.code == 2 and "counted from 1" in capsys.readouterr().err


def test_mono_into_stereo_is_duplicated_and_recorded(tmp_path, capsys, fixture_models):
    sf.write(tmp_path / "m.wav", synth(48000, 0.5, 1), 48000, subtype="FLOAT")
    code, _, err = run_cli(capsys, encoder, "-m", fixture_models["stereo512"], "-i", tmp_path / "m.wav",
                           "-o", tmp_path / "o", lines=True)
    assert code == 0 and "m.wav" not in err
    source = sidecar(tmp_path / "o" / "m.npy")["source"]
    assert source["channel_map"] == [[1], [1]] and source["channels_used"] == [1]


def test_a_listed_channel_the_model_has_no_room_for_is_named(tmp_path, capsys, fixture_models):
    """--channels 3,4,5 into a stereo model: channel 5 is dropped, and that is said."""
    model = fixture_models["stereo512"]
    x = six_channels(tmp_path)
    code, out, err = run_cli(capsys, encoder, "-m", model, "-i", tmp_path / "six.wav", "-o", tmp_path / "o",
                             "--channels", "3,4,5", lines=True)
    assert code == 0
    warnings = [line for line in err.splitlines() if "six.wav" in line]
    assert len(warnings) == 1 and "warning" in warnings[0], err
    assert "used channels 3, 4, ignored 5" in warnings[0] and "--channel_mode fold" in warnings[0]
    assert "ignored 5" in sidecar(tmp_path / "o" / "six.npy")["source"]["channel_warning"]
    np.testing.assert_array_equal(np.load(out[0]), encoded(tmp_path, capsys, model, x[:, 2:4], "ref"))


def test_right_of_one_picked_channel_is_a_wrong_command_line(tmp_path, capsys, fixture_models):
    six_channels(tmp_path)
    code, out, err = run_cli(capsys, encoder, "-m", fixture_models["stereo512"], "-i", tmp_path / "six.wav",
                             "-o", tmp_path / "o", "--channels", "3", "--channel_mode", "right", lines=True)
    assert code == 2 and not out and len(err.strip().splitlines()) == 1, err
    assert "--channels 3 picks one" in err and "two or more channels" not in err
