"""Pattern structure (fibo, orale, blender, swapper, loop) and plugin discovery with --patterns_dir."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import generator
from conftest import run_cli, save_npy
from ravekit.generate import patterns as reg
from ravekit.generate.pooling import compute_stats
from ravekit.io.latents import make_sidecar


@pytest.fixture(scope="module")
def stats(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lat")
    z = np.random.default_rng(0).standard_normal((1, 3, 400)).astype(np.float32) * [[[1], [2], [0.5]]]
    save_npy(folder / "a.npy", z.astype(np.float32), make_sidecar(sr=44100, ratio=2048, latent_dims=3, frames=400))
    return compute_stats([folder / "a.npy"])


def pattern(name):
    return reg.load_pattern(reg.find(reg.discover(), name))


def bases(n, k=5, dims=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((k, dims)).astype(np.float32) for _ in range(n)]


def test_loop_tiles_the_base(stats):
    (a,) = bases(1)
    out = pattern("loop").generate([a], 3, np.random.default_rng(0), stats)
    assert out.shape == (15, 3)
    for i in range(3):
        np.testing.assert_array_equal(out[5 * i:5 * i + 5], a)


def test_fibo_prefix_lengths_follow_fibonacci(stats):
    (a,) = bases(1, k=11)
    mod = pattern("fibo")
    out = mod.generate([a], 2, np.random.default_rng(0), stats)
    lengths = [1, 2, 3, 5, 8]  # Fibonacci numbers <= 11
    assert out.shape == (2 * sum(lengths), 3) == (mod.output_frames(11, 3, 2), 3)
    pos = 0
    for _ in range(2):
        for f in lengths:
            np.testing.assert_array_equal(out[pos:pos + f], a[:f])
            pos += f


def test_orale_is_three_to_one_at_every_level(stats):
    (a,) = bases(1, k=4)
    mod = pattern("orale")
    out = mod.generate([a], 2, np.random.default_rng(1), stats, orale_levels=2, orale_amount=0.5)
    k = 4
    assert out.shape == (16 * k * 2, 3) == (mod.output_frames(k, 3, 2, orale_levels=2), 3)
    np.testing.assert_array_equal(out[:64], out[64:])  # looped twice
    blocks = out[:64].reshape(16, k, 3)
    for group in range(4):  # level 1 inside each 4-block: A A A A'
        g = blocks[4 * group:4 * group + 4]
        np.testing.assert_array_equal(g[0], g[1])
        np.testing.assert_array_equal(g[0], g[2])
        shift = g[3] - g[0]
        assert np.abs(shift).max() > 0
        np.testing.assert_allclose(shift, np.broadcast_to(shift[0], shift.shape), atol=1e-5)  # one offset per dim
        assert np.all(np.abs(shift[0]) <= 0.5 * stats.std + 1e-5)
    np.testing.assert_array_equal(blocks[:4], blocks[4:8])
    np.testing.assert_array_equal(blocks[:4], blocks[8:12])
    np.testing.assert_array_equal(blocks[0], a)
    assert not np.array_equal(blocks[12:16], blocks[:4])  # level 2: the 4th 4-block is varied


@pytest.mark.parametrize("order", ["forward", "invert", "mirror", "mirror-invert"])
def test_blender_goes_from_a_to_b_one_value_at_a_time(stats, order):
    a, b = bases(2, k=3)
    mod = pattern("blender")
    loops, k, dims = 2, 3, 3
    out = mod.generate([a, b], loops, np.random.default_rng(0), stats, blender_order=order)
    assert out.shape == ((k * dims + 1) * k * loops, dims) == (mod.output_frames(k, dims, loops), dims)
    states = out.reshape(-1, loops, k, dims)
    np.testing.assert_array_equal(states[:, 0], states[:, 1])  # each state repeated num_loops times
    states = states[:, 0]
    np.testing.assert_array_equal(states[0], a)
    np.testing.assert_array_equal(states[-1], b)
    changed = [tuple(np.argwhere(states[i] != states[i + 1])[0]) for i in range(k * dims)]
    assert all((states[i] != states[i + 1]).sum() == 1 for i in range(k * dims))
    expected = {"forward": (0, 0), "invert": (k - 1, dims - 1), "mirror": (0, dims - 1),
                "mirror-invert": (k - 1, 0)}[order]
    assert changed[0] == expected
    if order == "forward":
        assert changed[:dims + 1] == [(0, d) for d in range(dims)] + [(1, 0)]


def test_swapper_only_exchanges_values_between_the_two_bases(stats):
    a, b = bases(2, k=6)
    mod = pattern("swapper")
    out = mod.generate([a, b], 3, np.random.default_rng(2), stats, swapper_steps=10)
    assert out.shape == (10 * 6 * 3, 3) == (mod.output_frames(6, 3, 3, swapper_steps=10), 3)
    states = out.reshape(10, 3, 6, 3)
    np.testing.assert_array_equal(states[:, 0], states[:, 2])
    for s in states[:, 0]:
        assert np.all((s == a) | (s == b))
    diffs = [(states[i + 1, 0] != states[i, 0]).sum() for i in range(9)]
    assert all(d <= 1 for d in diffs) and (states[-1, 0] != a).any()
    again = mod.generate([a, b], 3, np.random.default_rng(2), stats, swapper_steps=10)
    np.testing.assert_array_equal(out, again)  # the generator passed in is the only source of randomness


def test_pattern_flags_reach_the_pattern(stats, tmp_path, capsys):
    stats_json = tmp_path / "stats.json"
    from ravekit.generate.stats import save_stats

    save_stats(stats_json, stats)
    code = generator.main(["--stats", str(stats_json), "--pattern", "orale", "--orale_levels", "1",
                           "--num_latents", "5", "--num_loops", "2", "--embeddings", "--output", str(tmp_path / "o")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert np.load(out.split()[0]).shape == (1, 3, 4 * 5 * 2)
    meta = json.loads(Path(out.split()[0]).with_suffix(".json").read_text())
    assert meta["generator"]["pattern_options"] == {"orale_levels": 1, "orale_amount": 1.0}


PLUGIN = '''"""Reverses the base, then loops it."""
import numpy as np

NUM_BASES = 1


def add_arguments(parser):
    parser.add_argument("--mirror_gain", type=float, default=1.0)


def generate(bases, num_loops, rng, stats, mirror_gain=1.0):
    return np.tile(bases[0][::-1] * mirror_gain, (num_loops, 1))
'''


def test_plugin_folder_adds_a_pattern_with_its_own_flag(stats, tmp_path, capsys):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "mirror.py").write_text(PLUGIN)
    (plugins / "broken.py").write_text('"""Fails on import."""\nraise RuntimeError("boom")\n')
    (plugins / "_helper.py").write_text("x = 1\n")
    assert generator.main(["--patterns_dir", str(plugins), "--list_patterns"]) == 0
    listing = capsys.readouterr().out
    assert "mirror" in listing and "Reverses the base, then loops it." in listing
    assert "broken" in listing and "_helper" not in listing and "fibo" in listing  # listing imports nothing

    from ravekit.generate.stats import save_stats

    save_stats(tmp_path / "s.json", stats)
    common = ["--stats", str(tmp_path / "s.json"), "--patterns_dir", str(plugins), "--num_latents", "4",
              "--num_loops", "2", "--embeddings", "--seed", "3"]
    assert generator.main(common + ["--pattern", "loop", "--output", str(tmp_path / "loop")]) == 0
    base = np.load(capsys.readouterr().out.split()[0])[0].T[:4]
    assert generator.main(common + ["--pattern", "mirror", "--mirror_gain", "2", "--output", str(tmp_path / "m")]) == 0
    out = np.load(capsys.readouterr().out.split()[0])[0].T
    np.testing.assert_allclose(out[:4], 2 * base[::-1], rtol=1e-6)  # same seed -> same base as loop

    code = generator.main(common + ["--pattern", "broken", "--output", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 1 and "broken.py" in err and "boom" in err and "Traceback" not in err


def test_plugin_breaking_the_contract_is_named(stats, tmp_path, capsys):
    plugins = tmp_path / "p"
    plugins.mkdir()
    (plugins / "wrong.py").write_text('"""Returns the wrong shape."""\nNUM_BASES = 1\n'
                                      "def generate(bases, num_loops, rng, stats):\n    return bases[0][:, :1]\n")
    (plugins / "nobases.py").write_text('"""No NUM_BASES."""\ndef generate(*a):\n    return a\n')
    from ravekit.generate.stats import save_stats

    save_stats(tmp_path / "s.json", stats)
    for name, words in (("wrong", "returned a ndarray of shape (10, 1)"), ("nobases", "NUM_BASES")):
        code = generator.main(["--stats", str(tmp_path / "s.json"), "--patterns_dir", str(plugins), "--pattern", name,
                               "--output", str(tmp_path / name)])
        err = capsys.readouterr().err
        assert code == 1 and words in err and name in err


def test_orale_with_iqr_varies_by_the_robust_std(tmp_path, capsys):
    # Heavy tails: the std is many times the robust std, so offsets scaled by the std would show.
    rng = np.random.default_rng(3)
    z = rng.standard_cauchy((1, 4, 4000)).astype(np.float32)
    save_npy(tmp_path / "lat" / "a.npy", z, make_sidecar(sr=44100, ratio=2048, latent_dims=4, frames=4000))
    k = 5
    code, out, err = run_cli(capsys, generator, "--input", tmp_path / "lat", "--output", tmp_path / "o", "--iqr",
                             "--pattern", "orale", "--orale_levels", "1", "--num_latents", k, "--embeddings")
    assert code == 0, err
    st = json.loads((tmp_path / "o" / "stats.json").read_text())
    assert min(np.divide(st["std"], st["robust_std"])) > 5
    y = np.load(out.split()[0])[0].T.astype(np.float64)  # (4 k, dims): A A A A'
    offset = y[3 * k] - y[0]
    assert np.all(np.abs(offset) <= np.asarray(st["robust_std"]) * (1 + 1e-5)), (offset, st["robust_std"])
    assert np.any(offset != 0)


def test_user_pattern_named_like_a_builtin_is_refused(stats, tmp_path, capsys):
    """Replacing loop silently would change what every existing `--pattern loop` script makes."""
    plugins = tmp_path / "p"
    plugins.mkdir()
    (plugins / "loop.py").write_text('"""My loop."""\nNUM_BASES = 1\ndef generate(bases, num_loops, rng, stats):\n'
                                     "    return bases[0] * 0\n")
    from ravekit.generate.stats import save_stats

    save_stats(tmp_path / "s.json", stats)
    for extra in ([], ["--list_patterns"]):
        code = generator.main(["--stats", str(tmp_path / "s.json"), "--patterns_dir", str(plugins),
                               "--output", str(tmp_path / "o"), *extra])
        out, err = capsys.readouterr()
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
        assert "loop.py" in err and "built-in pattern 'loop'" in err and "rename" in err
    assert not (tmp_path / "o").exists()
    # The same name in two user folders is refused too; one folder given twice is read once.
    other = tmp_path / "q"
    other.mkdir()
    (plugins / "loop.py").rename(plugins / "mine.py")
    (other / "mine.py").write_text((plugins / "mine.py").read_text())
    assert set(reg.discover([plugins, plugins])) == set(reg.discover()) | {"mine"}
    with pytest.raises(reg.RavekitError, match="the pattern in"):
        reg.discover([plugins, other])


@pytest.mark.parametrize("returned, got", [
    ("None", "NoneType"),
    ("'abc'", "str of shape () and dtype <U3"),
    ("[['a'] * 3] * 4", "list of shape (4, 3) and dtype <U1"),
    ("(bases[0], 1)", "tuple"),  # ragged: numpy cannot make one array of it
    ("bases[0][None]", "ndarray of shape (1, 5, 3)"),
])
def test_pattern_returning_the_wrong_type_gets_the_contract_message(stats, tmp_path, capsys, returned, got):
    plugins = tmp_path / "p"
    plugins.mkdir()
    (plugins / "odd.py").write_text('"""Returns something else."""\nNUM_BASES = 1\n'
                                    f"def generate(bases, num_loops, rng, stats):\n    return {returned}\n")
    from ravekit.generate.stats import save_stats

    save_stats(tmp_path / "s.json", stats)
    code = generator.main(["--stats", str(tmp_path / "s.json"), "--patterns_dir", str(plugins), "--pattern", "odd",
                           "--num_latents", "5", "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1 and "unexpected" not in err, err
    assert err.startswith(f"generator.py: error: {plugins / 'odd.py'}: pattern 'odd' returned a {got};"), err
    assert "must return a numeric array of shape (frames, 3)" in err
