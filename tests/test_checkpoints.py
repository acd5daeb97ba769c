"""Every checkpoint layout: written tiny in its real layout, loaded, and compared through the forward."""

from __future__ import annotations

import logging

import pytest
import torch
from safetensors.torch import load_file, save_file

from ckpt_builders import (
    expected_merged,
    make_lora,
    original_state,
    random_model,
    tiny_config,
    tiny_inputs,
    write_diffusers_base,
    write_original_base,
    write_talkverse,
)
from talkverse import TalkVerseTransformer3DModel
from talkverse.convert.errors import CheckpointError
from talkverse.loaders.transformer import load_transformer

RANK = 4


def _fwd(model, inputs):
    with torch.no_grad():
        return model(**inputs).sample


def _rel(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.fixture(scope="module")
def models():
    return random_model(0), random_model(1)  # (TI2V-like base, "trained" TalkVerse weights)


@pytest.fixture
def original_base(tmp_path, models):
    return write_original_base(models[0], tmp_path / "Wan2.2-TI2V-5B-tiny", shards=3)


def test_original_sharded_layout_with_talkverse_merge(tmp_path, models, original_base):
    base, trained = models
    lora = make_lora(base, RANK)
    tv = write_talkverse(trained, tmp_path / "talkverse.safetensors", lora)
    model = load_transformer(original_base, tv, config=tiny_config(), lora_alpha=8)
    ref = expected_merged(base, trained, lora, alpha=8)
    inp = tiny_inputs(model)
    assert _rel(_fwd(model, inp), _fwd(ref, inp)) < 1e-5
    # LoRA really changed something: without it the output differs.
    assert _rel(_fwd(expected_merged(base, trained, {}, 8), inp), _fwd(ref, inp)) > 1e-3


def test_diffusers_layout_sharded(tmp_path, models):
    base, trained = models
    root = write_diffusers_base(base, tmp_path / "Wan2.2-TI2V-5B-Diffusers", max_shard_size="100KB")
    assert list((root / "transformer").glob("*.index.json")), "expected a sharded Diffusers checkpoint"
    lora = make_lora(base, RANK)
    tv = write_talkverse(trained, tmp_path / "tv.safetensors", lora)
    model = load_transformer(root, tv, config=tiny_config(), lora_alpha=4)
    ref = expected_merged(base, trained, lora, alpha=4)
    inp = tiny_inputs(model)
    assert _rel(_fwd(model, inp), _fwd(ref, inp)) < 1e-5


def test_base_only_gives_initialised_s2v_modules(original_base, models, caplog):
    with caplog.at_level(logging.WARNING):
        model = load_transformer(original_base, None, config=tiny_config())
    assert "S2V modules start from their initialisation" in caplog.text
    sd_base = original_state(models[0])
    ours = original_state(model)
    assert all(torch.equal(ours[k], sd_base[k]) for k in sd_base if not k.startswith(
        ("casual_audio_encoder", "audio_injector", "frame_packer", "trainable_cond_mask")))
    assert torch.all(model.casual_audio_encoder.weights == 0.01)
    assert torch.all(model.casual_audio_encoder.encoder.padding_tokens == 0)
    assert torch.isfinite(_fwd(model, tiny_inputs(model))).all()


def test_model_prefix_and_bf16_file(tmp_path, models, original_base):
    base, trained = models
    lora = make_lora(base, RANK, dtype=torch.bfloat16)
    plain = write_talkverse(trained, tmp_path / "a.safetensors", lora, dtype=torch.bfloat16)
    prefixed = write_talkverse(trained, tmp_path / "b.safetensors", lora, prefix="model.", dtype=torch.bfloat16)
    m1 = load_transformer(original_base, plain, config=tiny_config())
    m2 = load_transformer(original_base, prefixed, config=tiny_config())
    for (k, v), (k2, v2) in zip(m1.state_dict().items(), m2.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    # bf16 merge rule: W = W_base + fp32(bf16(bf16(B @ A) * alpha/r)); default alpha 128 -> scale 32.
    a = lora["blocks.1.ffn.2.lora_A.weight"]
    b = lora["blocks.1.ffn.2.lora_B.weight"]
    delta = ((b.float() @ a.float()).bfloat16() * (128 / RANK)).bfloat16().float()
    w = original_state(base)["blocks.1.ffn.2.weight"] + delta
    assert torch.equal(m1.blocks[1].ffn.net[2].weight, w)


def test_lora_adapter_mode_matches_merge(tmp_path, models, original_base):
    base, trained = models
    lora = make_lora(base, RANK)
    tv = write_talkverse(trained, tmp_path / "tv.safetensors", lora)
    merged = load_transformer(original_base, tv, config=tiny_config(), lora_alpha=8)
    adapter = load_transformer(original_base, tv, config=tiny_config(), lora_alpha=8, merge_lora=False)
    lora_layers = [n for n, _ in adapter.named_modules() if n.endswith("lora_A.talkverse")]
    assert len(lora_layers) == 8 * tiny_config()["num_layers"]
    assert not any(".to_v." in n for n in lora_layers)
    inp = tiny_inputs(merged)
    assert _rel(_fwd(adapter, inp), _fwd(merged, inp)) < 1e-5
    # the base weights were not touched in adapter mode
    assert torch.equal(adapter.blocks[0].attn1.to_q.base_layer.weight,
                       original_state(base)["blocks.0.self_attn.q.weight"])


def test_top_level_loader_and_dtype_islands(tmp_path, models, original_base):
    import talkverse

    base, trained = models
    tv = write_talkverse(trained, tmp_path / "tv.safetensors", make_lora(base, RANK))
    model = talkverse.load_transformer(original_base, tv, config=tiny_config(), torch_dtype=torch.bfloat16)
    assert model.blocks[0].attn1.to_q.weight.dtype == torch.bfloat16
    assert model.frame_packer.proj_4x.weight.dtype == torch.bfloat16
    for p in (model.condition_embedder.time_embedder.linear_1.weight, model.condition_embedder.time_proj.weight,
              model.scale_shift_table, model.proj_out.weight, model.blocks[0].scale_shift_table,
              model.casual_audio_encoder.encoder.conv3.conv.weight):
        assert p.dtype == torch.float32
    out = _fwd(model, tiny_inputs(model))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_save_pretrained_round_trip_is_bit_exact(tmp_path, models, original_base):
    base, trained = models
    tv = write_talkverse(trained, tmp_path / "tv.safetensors", make_lora(base, RANK))
    for dtype in (torch.float32, torch.bfloat16):
        model = load_transformer(original_base, tv, config=tiny_config(), torch_dtype=dtype)
        out_dir = tmp_path / f"saved_{dtype}".replace("torch.", "")
        model.save_pretrained(out_dir)
        again = TalkVerseTransformer3DModel.from_pretrained(out_dir, torch_dtype=dtype)
        sd1, sd2 = model.state_dict(), again.state_dict()
        assert list(sd1) == list(sd2)
        for k in sd1:
            assert sd1[k].dtype == sd2[k].dtype and torch.equal(sd1[k], sd2[k]), k
        inp = tiny_inputs(model)
        assert torch.equal(_fwd(model, inp), _fwd(again.eval(), inp))


# ----------------------------------------------------------------------------------------------- wrong checkpoints
def test_ti2v_file_given_as_talkverse(tmp_path, original_base):
    with pytest.raises(CheckpointError) as e:
        load_transformer(original_base, original_base / "diffusion_pytorch_model-00001-of-00003.safetensors",
                         config=tiny_config())
    msg = str(e.value)
    assert "not TalkVerse S2V keys" in msg or "base (Wan2.2-TI2V-5B) checkpoint" in msg


def test_whole_ti2v_checkpoint_given_as_talkverse(tmp_path, models):
    sd = {k: v for k, v in original_state(models[0]).items()
          if not k.startswith(("casual_audio_encoder", "audio_injector", "frame_packer", "trainable_cond_mask"))}
    save_file(sd, tmp_path / "ti2v.safetensors")
    base = write_original_base(models[0], tmp_path / "base")
    with pytest.raises(CheckpointError, match=r"missing .* S2V module keys.*base \(Wan2.2-TI2V-5B\) checkpoint"):
        load_transformer(base, tmp_path / "ti2v.safetensors", config=tiny_config())


def test_truncated_shard(original_base, tmp_path, models):
    shard = original_base / "diffusion_pytorch_model-00002-of-00003.safetensors"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    tv = write_talkverse(models[1], tmp_path / "tv.safetensors")
    with pytest.raises(CheckpointError, match="diffusion_pytorch_model-00002-of-00003.safetensors.*truncated"):
        load_transformer(original_base, tv, config=tiny_config())


def test_missing_shard(original_base, tmp_path, models):
    (original_base / "diffusion_pytorch_model-00003-of-00003.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing.*00003-of-00003"):
        load_transformer(original_base, None, config=tiny_config())


def test_base_shape_mismatch_and_missing_key(tmp_path, models):
    base = write_original_base(models[0], tmp_path / "base", shards=1)
    shard = base / "diffusion_pytorch_model-00001-of-00001.safetensors"
    sd = load_file(shard)
    sd["blocks.1.self_attn.q.weight"] = torch.zeros(3, 3)
    del sd["blocks.2.ffn.0.bias"]
    save_file(sd, shard)
    index = base / "diffusion_pytorch_model.safetensors.index.json"
    index.unlink()
    with pytest.raises(CheckpointError) as e:
        load_transformer(base, None, config=tiny_config())
    msg = str(e.value)
    assert "blocks.1.attn1.to_q.weight: checkpoint (3, 3)" in msg
    assert "missing keys (1): blocks.2.ffn.net.0.proj.bias" in msg


def test_talkverse_missing_and_unknown_keys(tmp_path, models, original_base):
    base, trained = models
    lora = make_lora(base, RANK)
    p = write_talkverse(trained, tmp_path / "a.safetensors", lora, drop=("audio_injector.injector.1.q.weight",))
    with pytest.raises(CheckpointError, match=r"missing 1 of the .* S2V module keys: audio_injector.injector.1.q.weight"):
        load_transformer(original_base, p, config=tiny_config())
    p = write_talkverse(trained, tmp_path / "b.safetensors", lora, drop=("head.head.weight",))
    with pytest.raises(CheckpointError, match="proj_out.weight"):
        load_transformer(original_base, p, config=tiny_config())
    half = {k: v for k, v in lora.items() if k != "blocks.0.ffn.2.lora_B.weight"}
    p = write_talkverse(trained, tmp_path / "c.safetensors", half)
    with pytest.raises(CheckpointError, match="without their A or B half: blocks.0.ffn.2"):
        load_transformer(original_base, p, config=tiny_config())
    partial = {k: v for k, v in lora.items() if not k.startswith("blocks.3.")}
    p = write_talkverse(trained, tmp_path / "d.safetensors", partial)
    with pytest.raises(CheckpointError, match="incomplete LoRA: 8 of 32"):
        load_transformer(original_base, p, config=tiny_config())
    extra = dict(lora, **{"blocks.0.self_attn.v.lora_A.weight": torch.zeros(RANK, 32), "foo.bar": torch.zeros(1)})
    p = write_talkverse(trained, tmp_path / "e.safetensors", extra)
    with pytest.raises(CheckpointError, match=r"not TalkVerse S2V keys.*blocks.0.self_attn.v.lora_A.weight, foo.bar"):
        load_transformer(original_base, p, config=tiny_config())
    bad = dict(lora, **{"blocks.0.self_attn.q.lora_A.weight": torch.zeros(RANK, 7)})
    p = write_talkverse(trained, tmp_path / "f.safetensors", bad)
    with pytest.raises(CheckpointError, match="blocks.0.attn1.to_q.lora_A/B"):
        load_transformer(original_base, p, config=tiny_config())


def test_missing_files_and_non_dit_checkpoint(tmp_path, original_base):
    with pytest.raises(CheckpointError, match="not found"):
        load_transformer(tmp_path / "nope", None, config=tiny_config())
    with pytest.raises(CheckpointError, match="not found"):
        load_transformer(original_base, tmp_path / "nope.safetensors", config=tiny_config())
    save_file({"encoder.conv1.weight": torch.zeros(2)}, tmp_path / "vae.safetensors")
    with pytest.raises(CheckpointError, match="not a Wan2.2 DiT checkpoint"):
        load_transformer(tmp_path / "vae.safetensors", None, config=tiny_config())


def test_base_config_mismatch(original_base):
    import json
    cfg = json.loads((original_base / "config.json").read_text())
    cfg["num_layers"] = 40
    (original_base / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="num_layers=40"):
        load_transformer(original_base, None, config=tiny_config())


def test_pth_read_with_weights_only(tmp_path, models):
    """A .pth base is read with torch.load(weights_only=True): a pickle with code in it is refused."""
    sd = {k: v for k, v in original_state(models[0]).items()
          if not k.startswith(("casual_audio_encoder", "audio_injector", "frame_packer", "trainable_cond_mask"))}
    torch.save(sd, tmp_path / "base.pth")
    model = load_transformer(tmp_path / "base.pth", None, config=tiny_config())
    assert torch.equal(model.patch_embedding.weight, sd["patch_embedding.weight"])

    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    torch.save({"patch_embedding.weight": Evil()}, tmp_path / "evil.pth", _use_new_zipfile_serialization=True)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load_transformer(tmp_path / "evil.pth", None, config=tiny_config())


def test_cond_mask_without_framepack_row_is_expanded(tmp_path, models, original_base, caplog):
    base, trained = models
    p = write_talkverse(trained, tmp_path / "tv.safetensors")
    sd = load_file(p)
    sd["trainable_cond_mask.weight"] = sd["trainable_cond_mask.weight"][:2].contiguous()
    save_file(sd, p)
    with caplog.at_level(logging.WARNING):
        model = load_transformer(original_base, p, config=tiny_config())
    w = model.trainable_cond_mask.weight
    assert torch.equal(w[2], w[1]) and "duplicating the last" in caplog.text


@pytest.mark.slow
def test_inspect_ckpt_script(tmp_path, models, original_base):
    import subprocess
    import sys

    from helpers import REPO

    base, trained = models
    tv = write_talkverse(trained, tmp_path / "tv.safetensors", make_lora(base, RANK), prefix="model.")
    script = [sys.executable, str(REPO / "scripts" / "inspect_ckpt.py"), "--config", "s2v_tiny"]
    ok = subprocess.run(script + [str(tv)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "LoRA: 32 pairs, rank(s) {4: 32}" in ok.stdout and "key prefix: 'model.'" in ok.stdout
    bad = subprocess.run(script + [str(original_base / "diffusion_pytorch_model-00001-of-00003.safetensors")],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "NOT a complete TalkVerse checkpoint" in bad.stdout
