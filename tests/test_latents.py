"""The latents artifact (ravekit.io.latents.Latents): saved and loaded whole, refused when newer,
compared with a model and a run by one rule; and the encoder and decoder built on it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

import decoder
import encoder
from conftest import run_cli, write_audio
from ravekit.engine.model import ModelInfo
from ravekit.errors import RavekitError
from ravekit.io.latents import Latents, Sidecar, make_sidecar
from ravekit.io.records import Mismatch


def artifact(dims: int = 6, frames: int = 9, **sidecar) -> Latents:
    """Latents of seeded noise with a full sidecar, plus a section no reader knows."""
    z = np.random.default_rng(3).normal(size=(1, dims, frames)).astype(np.float32)
    fields = {"sr": 44100, "ratio": 2048, "model": {"file": "a.ts", "sha256": "a" * 64}, "seed": 4,
              "source": {"file": "x.wav", "samples": frames * 2048 - 100}, "created_by": "test",
              "processing": {"channel_mode": "mix", "chunk_frames": 64}, "someone_elses": {"kept": [1, 2]}}
    fields.update(sidecar)
    return Latents(z, Sidecar(make_sidecar(latent_dims=dims, frames=frames, **fields)))


@pytest.mark.parametrize("name", ["a.npy", "a.wav"])
def test_save_then_load_keeps_the_array_and_every_sidecar_key(tmp_path, name):
    made = artifact()
    path = made.save(tmp_path / name)
    back = Latents.load(path)
    assert np.array_equal(back.z, made.z) and back.z.dtype == np.float32 and back.z.shape == (1, 6, 9)
    assert back.sidecar.raw == made.sidecar.raw and back.sidecar.raw["someone_elses"] == {"kept": [1, 2]}
    assert (back.sidecar.sr, back.sidecar.ratio, back.sidecar.seed) == (44100, 2048, 4)
    assert back.sidecar.source_samples == 9 * 2048 - 100 and back.sidecar.processing["channel_mode"] == "mix"
    # Written again, the same bytes: nothing is added or reordered on the way.
    again = back.save(tmp_path / "again" / name)
    assert again.read_bytes() == path.read_bytes()
    assert again.with_suffix(".json").read_bytes() == path.with_suffix(".json").read_bytes()
    if name.endswith(".wav"):  # the header carries the rounded latent rate, the sidecar the exact one
        assert back.header_rate == sf.info(str(path)).samplerate == round(44100 / 2048)
        assert json.loads(path.with_suffix(".json").read_text())["latent_rate"] == 44100 / 2048
    else:
        assert back.header_rate is None and np.load(path, allow_pickle=False).shape == (1, 6, 9)


def test_latents_without_a_sidecar_stay_without_one(tmp_path):
    z = np.ones((4, 5), np.float32)  # (dims, frames), as other tools write
    np.save(tmp_path / "bare.npy", z)
    back = Latents.load(tmp_path / "bare.npy")
    assert back.z.shape == (1, 4, 5) and back.sidecar.raw == {} and back.sidecar.sr is None
    back.save(tmp_path / "out" / "bare.npy")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["bare.npy"]


def test_a_sidecar_of_a_newer_format_is_refused(tmp_path, capsys, demo_model):
    path = artifact(dims=8, format_version=2).save(tmp_path / "lat" / "new.npy")
    side = path.with_suffix(".json")
    with pytest.raises(RavekitError, match=r"written by a newer ravekit \(format 2\); upgrade ravekit"):
        Latents.load(path)
    code, out, err = run_cli(capsys, decoder, "-m", demo_model, "-i", path, "-o", tmp_path / "o", lines=True)
    assert code == 1 and not out
    assert f"{side}: written by a newer ravekit (format 2); upgrade ravekit" in err
    assert not (tmp_path / "o" / "new.wav").exists()


def model_info(**facts) -> ModelInfo:
    base = {"path": "/models/b.ts", "sr": 44100, "n_channels": 1, "target_channels": 1, "latent_size": 6,
            "full_latent_size": 6, "ratio": 2048, "sha256": "b" * 64}
    return ModelInfo(**{**base, **facts})


def test_mismatches_lists_what_differs_in_the_order_asked():
    side = artifact().sidecar
    compare = ("ratio", "model", "seed", "channel_mode", "chunk_frames", "channels")
    found = side.mismatches(model_info(ratio=1024), compare, seed=0, processing={"channel_mode": "mix",
                                                                                  "chunk_frames": 32})
    assert found == [Mismatch("ratio", 2048), Mismatch("model", "a.ts"), Mismatch("seed", 4),
                     Mismatch("chunk_frames", 64)]
    assert [str(f) for f in found] == ["ratio 2048", "model a.ts", "seed 4", "chunk_frames 64"]
    # The same model and settings: nothing; a key the sidecar lacks ("channels") is not a difference.
    same = model_info(sha256="a" * 64)
    assert side.mismatches(same, compare, seed=4, processing={"channel_mode": "mix", "chunk_frames": 64}) == []
    # Only what is asked is compared; a model without a known sha256 is not taken for another.
    assert side.mismatches(model_info(ratio=1024), ("model",)) == [Mismatch("model", "a.ts")]
    assert side.mismatches(model_info(sha256=""), ("model", "ratio")) == []
    assert Sidecar().mismatches(model_info(), ("model", "ratio", "chunk_frames"), processing={}) == []


def test_sidecar_of_another_ratio_and_model_warns_both(tmp_path, capsys, demo_model):
    """decoder.py names what differs from its model, ratio then model, and decodes anyway."""
    path = artifact(dims=8, ratio=1024).save(tmp_path / "lat" / "z.npy")
    code, out, err = run_cli(capsys, decoder, "-m", demo_model, "-i", path, "-o", tmp_path / "o", lines=True)
    assert code == 0 and out == [str(tmp_path / "o" / "z.wav")]
    ratio = err.index(f"{path}: made for compression ratio 1024, the model's is 2048; timing will differ")
    assert ratio < err.index(f"{path}: encoded with a.ts, decoding with demo.ts")


def test_encoder_yields_latents_and_decoder_yields_the_audio_it_writes(tmp_path, capsys, demo_model):
    from ravekit.engine.decode import Decoder
    from ravekit.engine.encode import Encoder
    from ravekit.engine.model import load_model

    src = write_audio(tmp_path / "in" / "a.wav", seconds=0.7)
    model = load_model(demo_model, "cpu")
    (encoded,) = Encoder(model, seed=2).encode_file(src)
    assert isinstance(encoded, Latents) and encoded.sidecar.source_samples == round(0.7 * 44100)
    saved = encoded.save(tmp_path / "api" / "a.npy")
    run_cli(capsys, encoder, "-m", demo_model, "-i", src, "-o", tmp_path / "cli", "--seed", 2, lines=True)
    assert saved.read_bytes() == (tmp_path / "cli" / "a.npy").read_bytes()  # the command saves the same artifact

    dec = Decoder(model, seed=2)
    audio = np.concatenate(list(dec.decode(Latents.load(saved))), axis=1)
    assert audio.shape == (1, round(0.7 * 44100))  # trimmed to the source, from the sidecar
    written = dec.decode_to_file(Latents.load(saved), tmp_path / "out.wav")
    assert np.array_equal(sf.read(str(written), dtype="float32", always_2d=True)[0].T, audio)
