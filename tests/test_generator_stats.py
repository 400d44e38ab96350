"""generator.py's analysis: pooled statistics, degenerate inputs and the fitted distributions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_generator import latents, write_latents  # noqa: F401 (latents is a fixture)

import generator
from conftest import run_cli
from ravekit.generate.distributions import sample
from ravekit.generate.pooling import compute_stats

# --- statistics -------------------------------------------------------------------------------

def test_pooled_statistics_match_numpy_on_the_concatenated_frames(latents, tmp_path, capsys):
    folder, allz = latents
    code, _, err = run_cli(capsys, generator, "--input", folder, "--iqr", "--output", tmp_path / "o",
                           "--num_files", "1")
    assert code == 0, err
    st = json.loads((tmp_path / "o" / "stats.json").read_text())
    assert st["frames"] == allz.shape[1] and st["files"] == 3 and st["latent_dims"] == 6
    x = allz.astype(np.float64)
    np.testing.assert_allclose(st["mean"], x.mean(1), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(st["std"], x.std(1, ddof=1), rtol=1e-10)
    np.testing.assert_allclose(st["cov"], np.cov(x), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(st["corr"], np.corrcoef(x), atol=1e-10)
    med, q1, q3 = np.median(x, 1), np.quantile(x, 0.25, 1), np.quantile(x, 0.75, 1)
    np.testing.assert_allclose(st["median"], med, rtol=1e-6)
    np.testing.assert_allclose(st["q1"], q1, rtol=1e-6)
    np.testing.assert_allclose(st["q3"], q3, rtol=1e-6)
    np.testing.assert_allclose(st["lower_fence"], q1 - 1.5 * (q3 - q1), rtol=1e-6)
    np.testing.assert_allclose(st["upper_fence"], q3 + 1.5 * (q3 - q1), rtol=1e-6)
    np.testing.assert_allclose(st["robust_std"], (q3 - q1) / 1.349, rtol=1e-6)
    np.testing.assert_allclose(st["min"], x.min(1))
    np.testing.assert_allclose(st["max"], x.max(1))


def test_median_is_the_true_median_not_the_midhinge(tmp_path):
    skewed = np.array([[0, 0, 0, 1, 1, 2, 10, 50, 100]], dtype=np.float32)
    st = compute_stats(write_latents(tmp_path, [skewed]), quartiles=True)
    assert st.median[0] == 1.0  # midhinge (Q1 + Q3) / 2 would be 5.5
    assert (st.q1[0], st.q3[0]) == (0.0, 10.0)


def test_stats_file_feeds_a_later_run(latents, tmp_path, capsys):
    folder, _ = latents
    assert run_cli(capsys, generator, "--input", folder, "--output", tmp_path / "a", "--seed", "3")[0] == 0
    code, out, err = run_cli(capsys, generator, "--stats", tmp_path / "a" / "stats.json", "--output", tmp_path / "b",
                             "--seed", "3")
    assert code == 0, err
    name = Path(out.split()[0]).name
    assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    meta = json.loads((tmp_path / "b" / name).with_suffix(".json").read_text())
    assert meta["generator"]["stats_source"] == str(tmp_path / "a" / "stats.json")


def test_stats_without_quartiles_cannot_feed_iqr(latents, tmp_path, capsys):
    folder, _ = latents
    run_cli(capsys, generator, "--input", folder, "--output", tmp_path / "a")
    code, _, err = run_cli(capsys, generator, "--stats", tmp_path / "a" / "stats.json", "--iqr",
                           "--output", tmp_path / "b")
    assert code == 1 and "stats.json" in err and "--iqr" in err


# --- degenerate inputs ------------------------------------------------------------------------

def test_single_frame_is_a_clear_error(tmp_path, capsys):
    write_latents(tmp_path / "lat", [np.ones((4, 1), np.float32)])
    code, out, err = run_cli(capsys, generator, "--input", tmp_path / "lat", "--output", tmp_path / "o")
    assert code == 1 and out == "" and "part0.npy" in err and "at least 2" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("distribution", ["normal", "uniform", "iqr-uniform", "correlation-based"])
def test_constant_dim_is_generated_as_its_constant(tmp_path, capsys, distribution):
    z = np.random.default_rng(1).standard_normal((3, 50)).astype(np.float32)
    z[1] = 0.25
    write_latents(tmp_path / "lat", [z])
    code, out, err = run_cli(capsys, generator, "--input", tmp_path / "lat", "--output", tmp_path / "o", "--embeddings",
                             "--distribution", distribution, "--num_latents", "64")
    assert code == 0, err
    assert "latent dim 2 (0.25) is constant" in err
    g = np.load(out.split()[0])
    assert np.isfinite(g).all() and np.all(g[0, 1] == np.float32(0.25)) and g[0, 0].std() > 0


def test_nan_input_names_the_file(tmp_path, capsys):
    z = np.zeros((3, 10), np.float32)
    z[0, 4] = np.nan
    np.save(tmp_path / "bad.npy", z)
    code, _, err = run_cli(capsys, generator, "--input", tmp_path / "bad.npy", "--ratio", 2048, "--sample_rate", 44100,
                           "--output", tmp_path / "o")
    assert code == 1 and "bad.npy" in err and "NaN" in err


def test_mismatched_dims_name_the_odd_file(tmp_path, capsys):
    write_latents(tmp_path / "a", [np.ones((4, 10), np.float32) * np.arange(10)])
    write_latents(tmp_path / "b", [np.ones((5, 10), np.float32) * np.arange(10)])
    code, _, err = run_cli(capsys, generator, "--input", tmp_path / "a", tmp_path / "b", "--output", tmp_path / "o")
    assert code == 1 and str(tmp_path / "b" / "part0.npy") in err and "5 latent dims" in err


def test_non_psd_covariance_is_repaired_with_a_warning(latents, tmp_path, capsys):
    folder, _ = latents
    run_cli(capsys, generator, "--input", folder, "--output", tmp_path / "a")
    st = json.loads((tmp_path / "a" / "stats.json").read_text())
    cov = np.array(st["cov"])
    cov[0, 1] = cov[1, 0] = 3 * np.sqrt(cov[0, 0] * cov[1, 1])  # |corr| > 1: not PSD
    st["cov"] = cov.tolist()
    (tmp_path / "edited.json").write_text(json.dumps(st))
    code, out, err = run_cli(capsys, generator, "--stats", tmp_path / "edited.json",
                             "--distribution", "correlation-based", "--output", tmp_path / "b", "--embeddings",
                             "--num_latents", "32")
    assert code == 0, err
    assert "not positive semi-definite" in err
    assert np.isfinite(np.load(out.split()[0])).all()


def test_audio_wav_or_corrupt_file_among_inputs_is_named(latents, tmp_path, capsys):
    folder, _ = latents
    sf.write(str(folder / "song.wav"), np.zeros((4410, 1), np.float32), 44100)
    code, _, err = run_cli(capsys, generator, "--input", folder, "--output", tmp_path / "o")
    assert code == 1 and "song.wav" in err and "encoder.py" in err
    (folder / "song.wav").unlink()
    (folder / "junk.npy").write_bytes(b"not a numpy file at all")
    code, _, err = run_cli(capsys, generator, "--input", folder, "--output", tmp_path / "o")
    assert code == 1 and "junk.npy" in err and "Traceback" not in err


# --- distributions ----------------------------------------------------------------------------

def test_each_distribution_matches_the_fitted_moments(latents):
    folder, allz = latents
    st = compute_stats(sorted(folder.glob("*.npy")), quartiles=True)
    rng = np.random.default_rng(0)
    n = 100_000
    x = allz.astype(np.float64)
    tol_mean = 0.03 * st.std

    g = sample(st, "normal", n, rng).astype(np.float64)
    assert np.all(np.abs(g.mean(0) - x.mean(1)) < tol_mean)
    np.testing.assert_allclose(g.std(0), x.std(1, ddof=1), rtol=0.02)

    g = sample(st, "normal", n, rng, iqr=True).astype(np.float64)
    np.testing.assert_allclose(np.median(g, 0), np.median(x, 1), atol=0.03 * st.robust_std.max())
    q1, q3 = np.quantile(x, [0.25, 0.75], axis=1)
    np.testing.assert_allclose(g.std(0), (q3 - q1) / 1.349, rtol=0.02)

    g = sample(st, "uniform", n, rng).astype(np.float64)
    lo, hi = x.mean(1) - 3 * x.std(1, ddof=1), x.mean(1) + 3 * x.std(1, ddof=1)
    assert np.all(g.min(0) >= lo - 1e-5) and np.all(g.max(0) <= hi + 1e-5)
    np.testing.assert_allclose(g.std(0), (hi - lo) / np.sqrt(12), rtol=0.02)

    for dist, iqr in (("iqr-uniform", False), ("uniform", True)):
        g = sample(st, dist, n, rng, iqr=iqr).astype(np.float64)
        lo, hi = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
        assert np.all(g.min(0) >= lo - 1e-5) and np.all(g.max(0) <= hi + 1e-5)
        np.testing.assert_allclose(g.mean(0), (lo + hi) / 2, atol=0.02 * (hi - lo).max())

    g = sample(st, "correlation-based", n, rng).astype(np.float64)
    np.testing.assert_allclose(np.corrcoef(g.T), np.corrcoef(x), atol=0.02)
    np.testing.assert_allclose(g.std(0), x.std(1, ddof=1), rtol=0.02)
    assert np.all(np.abs(g.mean(0) - x.mean(1)) < tol_mean)

    g = sample(st, "correlation-based", n, rng, iqr=True).astype(np.float64)
    np.testing.assert_allclose(np.corrcoef(g.T), np.corrcoef(x), atol=0.02)
    np.testing.assert_allclose(g.std(0), (q3 - q1) / 1.349, rtol=0.02)
    np.testing.assert_allclose(np.median(g, 0), np.median(x, 1), atol=0.03 * st.robust_std.max())


# --- malformed sidecars and statistics: one line naming the file and the field, exit 1 ---------

_SIDE = {"format": "ravekit.latents", "format_version": 1, "sr": 44100, "ratio": 2048, "latent_dims": 4,
         "frames": 50}


@pytest.mark.parametrize("text, needle", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"a": ' * 100_000 + "1" + "}" * 100_000, "nested too deeply"),
    ("[1, 2]", "expected a JSON object"),
    (json.dumps({**_SIDE, "sr": "44100"}), "'sr' should be a whole number of Hz above 0, not \"44100\""),
    (json.dumps({**_SIDE, "sr": 44100.5}), "'sr' should be a whole number"),
    (json.dumps({**_SIDE, "ratio": -2048}), "'ratio' should be a whole number"),
    (json.dumps({**_SIDE, "latent_dims": True}), "'latent_dims' should be a whole number"),
    (json.dumps({**_SIDE, "model": ["v2.ts"]}), "'model' should be an object"),
    (json.dumps({**_SIDE, "discrete": "yes"}), "'discrete' should be true or false"),
    (json.dumps({**_SIDE, "format_version": "1"}), "'format_version' should be a whole number"),
])
def test_malformed_sidecar_is_one_line_naming_it(tmp_path, capsys, text, needle):
    (tmp_path / "lat").mkdir()
    np.save(tmp_path / "lat" / "x.npy", np.random.default_rng(0).standard_normal((1, 4, 50)).astype(np.float32))
    (tmp_path / "lat" / "x.json").write_text(text)
    code, out, err = run_cli(capsys, generator, "--input", tmp_path / "lat", "--output", tmp_path / "o")
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1, err
    assert f"{tmp_path / 'lat' / 'x.json'}: " in err and needle in err and "unexpected" not in err
    assert not (tmp_path / "o" / "stats.json").exists()


def _stats_with(tmp_path, capsys, latents, change) -> tuple[int, str]:
    folder, _ = latents
    code, _, err = run_cli(capsys, generator, "--input", folder, "--output", tmp_path / "first", "--iqr")
    assert code == 0, err
    data = json.loads((tmp_path / "first" / "stats.json").read_text())
    change(data)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    code, out, err = run_cli(capsys, generator, "--stats", bad, "--output", tmp_path / "o")
    assert out == "" and len(err.strip().splitlines()) == 1 and str(bad) in err and "unexpected" not in err, err
    return code, err


@pytest.mark.parametrize("change, needle", [
    (lambda d: d["std"].__setitem__(0, -1.0), "'std' holds a negative value"),
    (lambda d: d.update(min=d["max"][::-1] if d["max"][0] < d["max"][-1] else [x + 99 for x in d["max"]]),
     "'min' is above 'max'"),
    (lambda d: d.update(sr="44100"), "'sr' should be a whole number"),
    (lambda d: d.update(ratio=[2048]), "'ratio' should be a whole number"),
    (lambda d: d.update(format_version=[1]), "'format_version' should be a whole number"),
    (lambda d: d.update(frames=True), "'frames' should be a whole number"),
    (lambda d: d.update(sources="a.npy"), "'sources' should be a list of file names"),
    (lambda d: d.update(discrete="no"), "'discrete' should be true or false"),
    (lambda d: d.update(mean={"a": 1}), "'mean' is not a list of numbers"),
    (lambda d: d.update(cov=[[1.0]]), "'cov' should be (6, 6) finite numbers"),
    (lambda d: d.update(q1=d["upper_fence"]), "'q1' is above 'q3'"),
])
def test_malformed_stats_is_one_line_naming_the_field(latents, tmp_path, capsys, change, needle):  # noqa: F811
    code, err = _stats_with(tmp_path, capsys, latents, change)
    assert code == 1 and needle in err and "write it again with generator.py" in err
