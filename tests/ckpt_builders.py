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


def write_shards(sd: dict, folder: Path, shards: int) -> None:
    """``sd`` split into ``diffusion_pytorch_model-0000k-of-0000n.safetensors`` files + their index, as the original
    Wan2.2 folders ship."""
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


def write_original_base(model, folder: Path, shards: int = 3) -> Path:
    """Wan2.2-TI2V-5B layout: sharded ``diffusion_pytorch_model-0000k-of-0000n.safetensors`` + index + config.json."""
    folder.mkdir(parents=True, exist_ok=True)
    write_shards({k: v for k, v in original_state(model).items() if not is_new_module_key(k)}, folder, shards)
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


# ------------------------------------------------------------------------------------------- Wan2.2-S2V-14B layouts
_WAN21_LEAVES = ("residual.0.gamma", "residual.2.weight", "residual.2.bias", "residual.3.gamma", "residual.6.weight",
                 "residual.6.bias", "shortcut.weight", "shortcut.bias", "resample.1.weight", "resample.1.bias",
                 "time_conv.weight", "time_conv.bias")


def wan21_vae_original_state(vae) -> dict[str, torch.Tensor]:
    """A diffusers Wan2.1 ``AutoencoderKLWan``'s state dict in the original flat ``Wan2.1_VAE.pth`` names: every
    candidate original name is sent through the loader's map (diffusers' converter) and kept where it lands."""
    from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

    sd = vae.state_dict()
    names = [f"{side}.{kind}.{k}.{leaf}" for side, kind in (("encoder", "downsamples"), ("decoder", "upsamples"))
             for k in range(24) for leaf in _WAN21_LEAVES]
    names += [f"{side}.{mid}" for side in ("encoder", "decoder") for mid in (
        "middle.0.residual.0.gamma", "middle.0.residual.2.weight", "middle.0.residual.2.bias", "middle.0.residual.3.gamma",
        "middle.0.residual.6.weight", "middle.0.residual.6.bias", "middle.2.residual.0.gamma",
        "middle.2.residual.2.weight", "middle.2.residual.2.bias", "middle.2.residual.3.gamma",
        "middle.2.residual.6.weight", "middle.2.residual.6.bias", "middle.1.norm.gamma", "middle.1.to_qkv.weight",
        "middle.1.to_qkv.bias", "middle.1.proj.weight", "middle.1.proj.bias", "head.0.gamma", "head.2.weight",
        "head.2.bias", "conv1.weight", "conv1.bias")]
    names += ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"]
    out = {}
    for name in names:
        mapped = convert_wan_vae_to_diffusers({name: name})
        for new, orig in mapped.items():
            if new in sd:
                out.setdefault(orig, sd[new].detach().clone())
    assert len(out) == len(sd), (len(out), len(sd))
    return out


def write_original_s2v14b(pipe, root: Path, shards: int = 3) -> Path:
    """The original Wan2.2-S2V-14B folder of a tiny S2V-14B pipeline: the whole DiT sharded (S2V modules included) +
    index + config.json, ``Wan2.1_VAE.pth``, the umT5 ``.pth``, ``google/umt5-xxl/`` and the wav2vec2 folder."""
    from talkverse.convert.t5_keys import TIED_KEY, transformers_to_original
    from talkverse.testing.tiny import tiny_tokenizer

    root.mkdir(parents=True, exist_ok=True)
    write_shards(original_state(pipe.transformer), root, shards)
    c = pipe.transformer.config
    (root / "config.json").write_text(json.dumps({
        "_class_name": "WanModel_S2V", "dim": c.num_attention_heads * c.attention_head_dim, "ffn_dim": c.ffn_dim,
        "in_dim": c.in_channels, "out_dim": c.out_channels, "num_heads": c.num_attention_heads,
        "num_layers": c.num_layers, "model_type": "s2v", "cond_dim": c.cond_dim}))
    torch.save(wan21_vae_original_state(pipe.vae), root / "Wan2.1_VAE.pth")
    torch.save({transformers_to_original(k): v.to(torch.bfloat16) for k, v in pipe.text_encoder.state_dict().items()
                if k != TIED_KEY}, root / "models_t5_umt5-xxl-enc-bf16.pth")
    tiny_tokenizer(root / "google" / "umt5-xxl")
    w2v = root / "wav2vec2-large-xlsr-53-english"
    pipe.audio_encoder.save_pretrained(w2v)
    pipe.feature_extractor.save_pretrained(w2v)
    return root


def write_diffusers_s2v14b(pipe, root: Path) -> Path:
    """The Diffusers layout of the same weights: ``transformer/`` (this class, diffusers key names), ``vae/``
    (AutoencoderKLWan, Wan2.1 config), ``text_encoder/``, ``tokenizer/`` and the wav2vec2 folder."""
    pipe.transformer.save_pretrained(root / "transformer", max_shard_size="200KB")
    pipe.vae.save_pretrained(root / "vae")
    pipe.text_encoder.save_pretrained(root / "text_encoder")
    pipe.tokenizer.save_pretrained(root / "tokenizer")
    w2v = root / "wav2vec2-large-xlsr-53-english"
    pipe.audio_encoder.save_pretrained(w2v)
    pipe.feature_extractor.save_pretrained(w2v)
    (root / "model_index.json").write_text(json.dumps({"_class_name": "WanSpeechToVideoPipeline"}))
    return root
