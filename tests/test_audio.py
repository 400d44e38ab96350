"""Audio reading: block-wise resampling, read-ahead, channel plans."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr

from conftest import write_audio
from ravekit.errors import RavekitError
from ravekit.io.audio import iter_audio, read_audio
from ravekit.io.channels import channel_plan
from ravekit.io.prefetch import AudioPrefetcher


def test_blockwise_resampling_equals_whole_file(tmp_path):
    path = write_audio(tmp_path / "a.wav", 48000, 3.0, 2, subtype="FLOAT")
    whole = soxr.resample(sf.read(path, dtype="float32")[0], 48000, 44100, quality="HQ").T
    blocks = np.concatenate(list(iter_audio(path, 44100, block=10007)), axis=1)
    assert blocks.shape == whole.shape
    assert np.abs(blocks - whole).max() < 1e-5


def test_prefetcher_serves_files_in_order_even_when_one_is_abandoned(tmp_path):
    paths = [write_audio(tmp_path / f"{i}.wav", 44100, 1.0, 1, seed=i, subtype="FLOAT") for i in range(3)]
    (tmp_path / "bad.wav").write_bytes(b"RIFFnonsense")
    paths.insert(2, tmp_path / "bad.wav")
    with AudioPrefetcher(paths, 44100, max_blocks=2) as pf:
        _, first = pf.open(0)
        next(first)  # read one block, then give up on the file (as a failing model would)
        info, blocks = pf.open(1)
        got = np.concatenate(list(blocks), axis=1)
        assert info.path == str(paths[1])
        np.testing.assert_array_equal(got, read_audio(paths[1])[0])
        with pytest.raises(RavekitError, match="bad.wav"):
            pf.open(2)
        assert np.concatenate(list(pf.open(3)[1]), axis=1).shape == (1, 44100)


@pytest.mark.parametrize("file_ch, model_ch, mode, picked, expected", [
    (2, 1, "auto", None, [("", [[0, 1]])]),
    (1, 2, "auto", None, [("", [[0], [0]])]),  # mono into stereo: duplicated
    (2, 2, "auto", None, [("", [[0], [1]])]),
    (6, 2, "auto", None, [("", [[0], [1]])]),  # the first two (encoder.py warns)
    (2, 1, "split", None, [(".ch1", [[0]]), (".ch2", [[1]])]),
    (2, 2, "split", None, [(".ch1", [[0], [0]]), (".ch2", [[1], [1]])]),
    (2, 1, "right", None, [("", [[1]])]),
    (3, 2, "mix", None, [("", [[0, 1, 2], [0, 1, 2]])]),
    (6, 2, "fold", None, [("", [[0, 2, 4], [1, 3, 5]])]),
    (3, 2, "fold", None, [("", [[0, 2], [1]])]),
    (1, 2, "fold", None, [("", [[0], [0]])]),
    (6, 2, "auto", [2, 3], [("", [[2], [3]])]),
    (6, 2, "auto", [4], [("", [[4], [4]])]),
    (6, 1, "auto", [2, 3], [("", [[2, 3]])]),
    (6, 1, "split", [5, 0], [(".ch6", [[5]]), (".ch1", [[0]])]),
])
def test_channel_plans(file_ch, model_ch, mode, picked, expected):
    assert channel_plan(file_ch, model_ch, mode, picked) == expected


def test_picking_a_channel_the_file_lacks_is_refused():
    with pytest.raises(RavekitError, match="--channels 7: the file has only 6 channels"):
        channel_plan(6, 2, "auto", [5, 6])


def test_right_channel_of_a_mono_file_is_refused():
    with pytest.raises(RavekitError, match="two or more channels"):
        channel_plan(1, 1, "right")

