"""Model loading: facts read from the model, clear errors for what is not one."""

from __future__ import annotations

import pytest
import torch

import encoder
from conftest import DOCUMENTED_EXPORTS, FIXTURE_SPECS, export_facts, real_models, write_audio
from ravekit.engine.model import load_model, quiet_jit
from ravekit.errors import RavekitError


@pytest.mark.parametrize("name", sorted(FIXTURE_SPECS))
def test_facts_come_from_the_model(fixture_models, name):
    spec = FIXTURE_SPECS[name]
    info = load_model(fixture_models[name], "cpu").info
    assert info.ratio == spec.get("ratio", 2048) and info.sr == spec.get("sr", 44100)
    assert info.latent_size == spec.get("latent_size", 8) and info.n_channels == spec.get("channels", 1)
    assert info.streaming == spec.get("streaming", False)
    assert info.discrete == spec.get("discrete", False) and info.codebook_size == spec.get("codebook_size")
    assert info.latent_rate == info.sr / info.ratio and len(info.sha256) == 64


@real_models
def test_real_export_facts(real_model):
    """Every kind: the facts the toolkit reads are the model's own, and what docs/rave-exports.md documents."""
    m = load_model(real_model, "cpu")
    own = export_facts(real_model)
    for key in ("sr", "ratio", "latent_size", "n_channels", "target_channels", "full_latent_size", "decode_dims",
                "original_name"):
        assert getattr(m.info, key) == own[key], key
    assert m.info.methods[:3] == ["encode", "decode", "forward"]
    documented = DOCUMENTED_EXPORTS.get(real_model.stem)
    if documented:
        for key in ("ratio", "latent_size", "full_latent_size", "decode_dims", "n_channels", "streaming",
                    "original_name"):
            assert getattr(m.info, key) == documented[key], key
    if not m.info.discrete:
        # decode_dims is what the export's own decode takes: that many dims decode, one more is refused.
        z = torch.zeros(1, m.info.decode_dims + 1, 1)
        with torch.inference_mode():
            assert m.module.decode(z[:, :-1]).shape[-1] == m.info.ratio
            with pytest.raises(RuntimeError):
                m.module.decode(z)


class OnlyForward(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def test_a_model_without_encode_is_named_in_the_error(tmp_path, capsys):
    path = tmp_path / "forward_only.ts"
    with quiet_jit():
        torch.jit.script(OnlyForward()).save(str(path))
    with pytest.raises(RavekitError, match=r"forward_only\.ts: the model has no encode\(\) method"):
        load_model(path, "cpu")
    src = write_audio(tmp_path / "a.wav", seconds=0.1)
    code = encoder.main(["-m", str(path), "-i", str(src), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "encode()" in err


def test_truncated_model_and_checkpoint_hints(tmp_path, demo_model):
    cut = tmp_path / "cut.ts"
    cut.write_bytes(demo_model.read_bytes()[:5000])
    with pytest.raises(RavekitError, match="cut.ts: cannot load the model .*truncated"):
        load_model(cut, "cpu")
    ckpt = tmp_path / "run.ckpt"
    ckpt.write_bytes(b"not a zip")
    with pytest.raises(RavekitError, match="rave export"):
        load_model(ckpt, "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_a_missing_device_is_a_usage_error(tmp_path, capsys, demo_model):
    src = write_audio(tmp_path / "a.wav", seconds=0.1)
    code = encoder.main(["-m", str(demo_model), "-i", str(src), "--device", "cuda", "-o", str(tmp_path / "o")])
    assert code == 2 and "no CUDA device" in capsys.readouterr().err
