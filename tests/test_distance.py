"""RAVE's multi-scale spectral distance (ravekit.engine.distance), as the merge bench uses it."""

from __future__ import annotations

import math

import numpy as np

from conftest import synth
from ravekit.engine.distance import loudness_db, spectral_distance


def test_distance_is_zero_for_the_input_and_follows_rave_s_definition_for_a_gain():
    x = synth(44100, 1.0)[:, 0]
    assert spectral_distance(x, x) == 0.0
    # Half the amplitude: every log magnitude is off by log 2 (the 1e-7 epsilon aside), and the
    # linear magnitudes by (1 - 0.5)^2 of the input's energy: 0.693 + 0.25 per STFT size, averaged.
    assert math.isclose(spectral_distance(x, 0.5 * x), math.log(2) + 0.25, rel_tol=1e-3)


def test_distance_ranks_noise_far_and_output_length_is_cut_to_the_input():
    x = synth(44100, 1.0)[:, 0]
    noise = 0.01 * np.random.default_rng(0).standard_normal(x.size).astype(np.float32)
    assert spectral_distance(x, noise) > 4 * spectral_distance(x, 0.9 * x)
    longer = np.concatenate([x, np.ones(2048, np.float32)])
    assert spectral_distance(x, longer) == 0.0
    assert math.isclose(loudness_db(0.1 * np.ones(100)), -20.0) and loudness_db(np.zeros(4)) == -math.inf
