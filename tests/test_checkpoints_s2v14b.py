"""Loading Wan2.2-S2V-14B (docs/s2v14b.md): the original folder (sharded DiT with its S2V modules, Wan2.1_VAE.pth,
umT5 .pth, wav2vec2) and the Diffusers layout, as tiny real-layout checkpoints; the wrong-checkpoint errors."""

from __future__ import annotations

import shutil

import pytest
import torch

from ckpt_builders import write_diffusers_s2v14b, write_original_base, write_original_s2v14b
from talkverse.convert.errors import CheckpointError
from talkverse.pipelines.loading import load_pipeline
from talkverse.testing.tiny import tiny_pipeline, tiny_transformer


@pytest.fixture(scope="module")
def pipe14():
    return tiny_pipeline(0, model="s2v-14B")


@pytest.fixture(scope="module")
def original14(pipe14, tmp_path_factory):
    return write_original_s2v14b(pipe14, tmp_path_factory.mktemp("ckpt") / "Wan2.2-S2V-14B")


def _load(root, **kw):
    return load_pipeline(root, config="s2v_14b_tiny", vae_config={**tiny_pipeline_vae_config()},
                         t5_config=kw.pop("t5_config", None), **kw)


def tiny_pipeline_vae_config():
    from talkverse.loaders.vae import vae_config
    from talkverse.testing.tiny import TINY_VAE21

    full = vae_config("vae_wan21")
    return {**TINY_VAE21, "latents_mean": full["latents_mean"], "latents_std": full["latents_std"]}


def _same(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_original_folder_loads_every_component(pipe14, original14):
    loaded = _load(original14, t5_config=pipe14.text_encoder.config.to_dict())
    assert loaded.family.name == "s2v-14B" and loaded.transformer.cond_encoder is not None
    for name in ("transformer", "vae", "audio_encoder"):
        assert _same(getattr(pipe14, name), getattr(loaded, name)), name


def test_diffusers_layout_loads(pipe14, tmp_path):
    root = write_diffusers_s2v14b(pipe14, tmp_path / "diffusers")
    loaded = load_pipeline(root, config="s2v_14b_tiny", wav2vec_dir=root / "wav2vec2-large-xlsr-53-english")
    for name in ("transformer", "vae"):
        assert _same(getattr(pipe14, name), getattr(loaded, name)), name


def _one_line(exc) -> str:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    return msg


def test_5b_checkpoint_given_as_14b(tmp_path):
    root = write_original_base(tiny_transformer(0), tmp_path / "Wan2.2-TI2V-5B", shards=2)
    with pytest.raises(CheckpointError) as e:
        load_pipeline(root, config="s2v_14b_tiny", dit_only=True)
    assert "TI2V-5B" in _one_line(e) and "needs Wan2.2-S2V-14B" in str(e.value)


def test_14b_checkpoint_given_as_5b(original14):
    with pytest.raises(CheckpointError) as e:
        load_pipeline(original14, config="s2v_tiny", dit_only=True)
    assert "a Wan2.2-S2V-14B checkpoint" in _one_line(e)


def test_missing_shard(original14, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(original14, root)
    (root / "diffusion_pytorch_model-00002-of-00003.safetensors").unlink()
    with pytest.raises(CheckpointError) as e:
        load_pipeline(root, config="s2v_14b_tiny", dit_only=True)
    assert "missing" in _one_line(e) and "00002-of-00003" in str(e.value)


def test_wrong_vae(pipe14, original14, tmp_path):
    """The Wan2.2 VAE under the Wan2.1 name, and no Wan2.1 VAE at all: one line each, naming the file."""
    from talkverse.convert.vae_keys import diffusers_to_original
    from talkverse.testing.tiny import TINY_VAE, tiny_vae

    root = tmp_path / "copy"
    shutil.copytree(original14, root)
    v22 = tiny_vae()
    torch.save({diffusers_to_original(k, TINY_VAE["num_res_blocks"]): v for k, v in v22.state_dict().items()},
               root / "Wan2.1_VAE.pth")
    with pytest.raises(CheckpointError) as e:
        _load(root, t5_config=pipe14.text_encoder.config.to_dict())
    assert "a Wan2.2 VAE, but this model needs the Wan2.1 VAE" in _one_line(e)
    (root / "Wan2.1_VAE.pth").rename(root / "Wan2.2_VAE.pth")
    with pytest.raises(CheckpointError) as e:
        _load(root, t5_config=pipe14.text_encoder.config.to_dict())
    assert "missing Wan2.1_VAE.pth" in _one_line(e)
