"""Writers of tiny checkpoints in the real layouts (original Wan dir, Diffusers, TalkVerse file) for loader tests."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from talkverse.configs import model_config
from talkverse.convert.talkverse_ckpt import LORA_TARGETS_ORIGINAL
from talkverse.convert.wan_keys import diffusers_to_original, is_new_module_key
from talkverse.models.transformer_talkverse import TalkVerseTransformer3DModel
from talkverse.testing.tiny import tiny_transformer

TIME_HEAD = ("time_embedding.", "time_projection.", "head.")


def tiny_config() -> dict:
    return model_config("s2v_tiny")


def random_model(seed: int = 0) -> TalkVerseTransformer3DModel:
    """Tiny model with every tensor random and non-zero (no zero-init head or padding token)."""
    return tiny_transformer(seed)


def original_state(model) -> dict[str, torch.Tensor]:
    return {diffusers_to_original(k): v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def write_original_base(model, folder: Path, shards: int = 3) -> Path:
    """Wan2.2-TI2V-5B layout: sharded ``diffusion_pytorch_model-0000k-of-0000n.safetensors`` + index + config.json."""
    folder.mkdir(parents=True, exist_ok=True)
    sd = {k: v for k, v in original_state(model).items() if not is_new_module_key(k)}
    keys = list(sd)
    per = -(-len(keys) // shards)
    weight_map = {}
    for s in range(shards):
        name = f"diffusion_pytorch_model-{s + 1:05d}-of-{shards:05d}.safetensors"
        chunk = {k: sd[k] for k in keys[s * per:(s + 1) * per]}
        save_file(chunk, folder / name, metadata={"format": "pt"})
        weight_map.update({k: name for k in chunk})
    (folder / "diffusion_pytorch_model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}))
    c = model.config
    (folder / "config.json").write_text(json.dumps({
        "_class_name": "WanModel", "dim": c.num_attention_heads * c.attention_head_dim, "eps": c.eps,
        "ffn_dim": c.ffn_dim, "freq_dim": c.freq_dim, "in_dim": c.in_channels, "model_type": "ti2v",
        "num_heads": c.num_attention_heads, "num_layers": c.num_layers, "out_dim": c.out_channels,
        "text_len": c.text_len}))
    return folder


def write_diffusers_base(model, root: Path, max_shard_size: str | None = None) -> Path:
    """Diffusers layout: ``root/transformer/`` saved by ``WanTransformer3DModel.save_pretrained``."""
    from diffusers import WanTransformer3DModel

    c = model.config
    wan = WanTransformer3DModel(
        patch_size=tuple(c.patch_size), num_attention_heads=c.num_attention_heads,
        attention_head_dim=c.attention_head_dim, in_channels=c.in_channels, out_channels=c.out_channels,
        text_dim=c.text_dim, freq_dim=c.freq_dim, ffn_dim=c.ffn_dim, num_layers=c.num_layers,
        cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=c.eps, rope_max_seq_len=c.rope_max_seq_len)
    base = {k: v for k, v in model.state_dict().items() if not is_new_module_key(k)}
    wan.load_state_dict(base, strict=True)
    kw = {"max_shard_size": max_shard_size} if max_shard_size else {}
    wan.save_pretrained(root / "transformer", **kw)
    (root / "model_index.json").write_text(json.dumps({"_class_name": "WanPipeline"}))
    return root


def make_lora(model, rank: int = 4, seed: int = 1, dtype=torch.float32) -> dict[str, torch.Tensor]:
    """Random LoRA pairs in TalkVerse naming for every target Linear (never v)."""
    g = torch.Generator().manual_seed(seed)
    sd = original_state(model)
    out = {}
    for i in range(model.config.num_layers):
        for t in LORA_TARGETS_ORIGINAL:
            out_f, in_f = sd[f"blocks.{i}.{t}.weight"].shape
            out[f"blocks.{i}.{t}.lora_A.weight"] = (torch.randn(rank, in_f, generator=g) * 0.1).to(dtype)
            out[f"blocks.{i}.{t}.lora_B.weight"] = (torch.randn(out_f, rank, generator=g) * 0.1).to(dtype)
    return out


def write_talkverse(trained, path: Path, lora: dict | None = None, prefix: str = "", dtype=torch.float32,
                    drop: tuple[str, ...] = (), metadata: dict | None = None) -> Path:
    """TalkVerse file: S2V modules + time/head of ``trained`` (original names) + LoRA pairs."""
    sd = original_state(trained)
    out = {k: v.to(dtype) for k, v in sd.items() if is_new_module_key(k) or k.startswith(TIME_HEAD)}
    out.update(lora or {})
    out = {prefix + k: v.contiguous() for k, v in out.items() if k not in drop}
    save_file(out, path, metadata=metadata)
    return path


def expected_merged(base_model, trained, lora: dict, alpha: float) -> TalkVerseTransformer3DModel:
    """Independent construction of the merged model: base + TalkVerse overrides + W += (alpha/r) B @ A in fp32."""
    merged = TalkVerseTransformer3DModel(**tiny_config()).eval()
    sd = original_state(base_model)
    for k, v in original_state(trained).items():
        if is_new_module_key(k) or k.startswith(TIME_HEAD):
            sd[k] = v
    for k in [k for k in lora if k.endswith("lora_A.weight")]:
        module = k[: -len(".lora_A.weight")]
        a, b = lora[k].float(), lora[module + ".lora_B.weight"].float()
        sd[module + ".weight"] = sd[module + ".weight"] + (alpha / a.shape[0]) * (b @ a)
    from talkverse.convert.wan_keys import original_to_diffusers
    merged.load_state_dict({original_to_diffusers(k): v for k, v in sd.items()}, strict=True)
    return merged


def tiny_inputs(model, batch: int = 1, with_motion: bool = True, seed: int = 3) -> dict:
    g = torch.Generator().manual_seed(seed)
    c = model.config
    f, h, w = 2, 8, 8
    return dict(
        hidden_states=torch.randn(batch, c.in_channels, f, h, w, generator=g),
        timestep=torch.full((batch,), 500.0),
        encoder_hidden_states=torch.randn(batch, 5, c.text_dim, generator=g),
        ref_latents=torch.randn(batch, c.in_channels, 1, h, w, generator=g),
        audio_features=torch.randn(batch, c.audio_num_layers, c.audio_dim, 4 * f, generator=g),
        motion_latents=torch.randn(batch, c.in_channels, c.motion_latents, h, w, generator=g) if with_motion else None,
    )
