"""Analytic GPU-memory peak of one generation, per profile (docs/performance.md, "Memory plan"). No GPU needed: the
weights are counted from the model config on the meta device, the activations from the token count and the DiT
block's own tensors (talkverse.models.transformer_talkverse), so the plan follows the code.

Model of the DiT phase (inference, no grad), per batch element and token, D = width, ffn = FFN width, b = bytes of
the compute dtype (2 for bf16):
* self-attention stage: x, q, k, v, the two rotated copies and the output: 7 D b;
* feed-forward stage (the peak): x and its normed copy (2 D b) + the FFN's projection and GELU outputs (2 ffn b);
* the fp32 modulation/residual copies (x.float(), branch.float(): 8 D) are below that.
Resident weights: everything on the GPU, or with block-level group offloading the two largest groups in flight (the
current and the prefetched one, ``blocks.i`` or the whole ``audio_injector``) plus the modules outside every group.
fp8 stores the Linear weights of blocks and injectors in 1 byte (the layerwise-casting skip list keeps the rest).
"""

from __future__ import annotations

from dataclasses import dataclass

GB = 1e9
CUDA_OVERHEAD_GB = 1.0  # context, cuBLAS/cuDNN workspaces, allocator slack (a round estimate)


@dataclass(frozen=True)
class MemoryPlan:
    profile: str
    tokens: int
    weights_gb: float  # resident DiT weights during a forward
    activations_gb: float  # DiT activation peak (CFG batch included)
    vae_gb: float  # VAE weights + streaming-decode activations (decode phase; the DiT's activations are freed)
    encoders_gb: float  # umT5 / wav2vec2 left on the GPU during the DiT phase
    host_gb: float  # DiT weights kept in (pinned) CPU memory by group offloading
    overhead_gb: float = CUDA_OVERHEAD_GB

    @property
    def peak_gb(self) -> float:
        dit_phase = self.weights_gb + self.activations_gb + self.encoders_gb
        vae_phase = self.weights_gb + self.vae_gb + self.encoders_gb
        return max(dit_phase, vae_phase) + self.overhead_gb


def token_count(config: dict, height: int, width: int, frames: int, vae_spatial: int, motion: bool = True) -> int:
    """Noisy + reference + FramePack motion tokens of one clip at height x width pixels."""
    from ..models.frame_packer import FramePackMotioner

    h, w = height // vae_spatial, width // vae_spatial
    per_frame = (h // 2) * (w // 2)
    extra = FramePackMotioner.num_tokens(h, w, tuple(config["framepack_buckets"])) if motion else 0
    return (frames // 4) * per_frame + per_frame + extra


def weight_bytes(config: dict, fp8: bool, dtype_bytes: int = 2) -> dict[str, float]:
    """{group: bytes} of the DiT's weights: ``blocks.i`` each, ``audio_injector``, and ``rest`` (fp32 islands at 4)."""
    import torch

    from ..models.transformer_talkverse import TalkVerseTransformer3DModel

    with torch.device("meta"):
        model = TalkVerseTransformer3DModel(**config)
    fp32 = set(model._keep_in_fp32_modules)
    out: dict[str, float] = {}
    for name, module in model.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            full = f"{name}.{pname}"
            parts = full.split(".")
            group = ".".join(parts[:2]) if parts[0] == "blocks" else parts[0] if parts[0] == "audio_injector" else "rest"
            if any(f in parts for f in fp32):
                size = 4
            elif fp8 and isinstance(module, torch.nn.Linear) and pname == "weight" and group != "rest":
                size = 1
            else:
                size = dtype_bytes
            out[group] = out.get(group, 0.0) + p.numel() * size
    return out


def dit_activation_bytes(config: dict, tokens: int, batch: int, dtype_bytes: int = 2) -> float:
    d = config["num_attention_heads"] * config["attention_head_dim"]
    per_token = max(7 * d, 2 * d + 2 * config["ffn_dim"]) * dtype_bytes
    rope = tokens * config["attention_head_dim"] * 4 * 2  # fp32 cos/sin tables
    return batch * tokens * per_token + rope


def vae_decode_bytes(vae_config: dict, height: int, width: int) -> float:
    """Weights (fp32) + the streaming decoder's full-resolution stage: ~4 live [C, 4 + 2 cache, H, W] fp32 tensors."""
    base = vae_config.get("decoder_base_dim") or vae_config["base_dim"]
    patch = vae_config.get("patch_size") or 1
    hh, ww = height // patch, width // patch
    params = 127e6 if not vae_config.get("is_residual") else 705e6  # Wan2.1 / Wan2.2 VAE parameter counts
    return params * 4 + 4 * base * 6 * hh * ww * 4


# The profiles of talkverse.perf.optimize as (weight/compute dtype bytes, fp8, group offload, encoders on the GPU in
# the DiT phase). umT5-XXL's encoder is 5.7 B bf16 parameters, wav2vec2-large 317 M fp32.
PROFILES = {"default": (4, False, False, True), "fast": (2, False, False, True), "low_vram": (2, True, True, False)}
ENCODERS_BYTES = 5.7e9 * 2 + 317e6 * 4


def plan(profile: str, model: str = "s2v_14b", vae: str = "vae_wan21", height: int = 704, width: int = 1024,
         frames: int = 80, cfg_batch: bool = True) -> MemoryPlan:
    """The analytic plan of ``profile`` (see PROFILES) for one clip of ``frames`` at height x width; ``cfg_batch``
    False is ``--no_cfg_batch`` (the two CFG branches one after the other)."""
    from ..configs import load_config, model_config

    cfg, vcfg = model_config(model), load_config(vae)["vae"]
    dtype_bytes, fp8, offload, encoders = PROFILES[profile]
    batch = 2 if cfg_batch else 1
    groups = weight_bytes(cfg, fp8, dtype_bytes)
    if offload:
        moving = sorted((v for k, v in groups.items() if k != "rest"), reverse=True)
        resident = groups["rest"] + sum(moving[:2])
    else:
        resident = sum(groups.values())
    tokens = token_count(cfg, height, width, frames, vcfg["scale_factor_spatial"])
    act = dit_activation_bytes(cfg, tokens, batch, dtype_bytes)
    enc = ENCODERS_BYTES if encoders else 0.0
    host = sum(groups.values()) if offload else 0.0
    return MemoryPlan(profile, tokens, resident / GB, act / GB, vae_decode_bytes(vcfg, height, width) / GB, enc / GB,
                      host / GB)
