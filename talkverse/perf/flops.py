"""Analytic FLOP model of one S2V DiT forward (../shared/docs/performance.md §1).

A multiply-add counts 2 FLOPs. Terms (n = layers, d = model width, L = all tokens, L_v = noisy tokens):

* block linears (self q,k,v,o; cross q,o; FFN): 2 L (6 d^2 + 2 d ffn) n
* self-attention core (QK^T + PV, full, no mask savings): 4 L^2 d n
* cross-attention core against the text_len text tokens: 4 L text_len d n
* text k/v projections: 2 text_len 2 d^2 n
* audio injection (q, o on the noisy tokens; the 5-token k/v and per-frame attention are negligible):
  n_inject 2 L_v 2 d^2
* head: 2 L_v d out_per_token (48 channels x 1x2x2 patch = 192)

At 704x1280 with motion (L = 28,580, L_v = 26,400) this is 566.2 TFLOP per forward (B = 1), the spec's figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class DiTShape:
    """What the FLOP model needs: the architecture and the token counts of one sample."""

    num_tokens: int  # L
    num_noisy: int  # L_v
    dim: int = 3072
    ffn_dim: int = 14336
    num_layers: int = 30
    text_len: int = 512
    num_inject: int = 11
    out_per_token: int = 192


def dit_forward_flops(shape: DiTShape, batch: int = 1) -> dict[str, float]:
    """FLOPs of one forward, per term and ``total`` (all scaled by ``batch``)."""
    s = shape
    L, Lv, d, n = s.num_tokens, s.num_noisy, s.dim, s.num_layers
    terms = {
        "linear": 2 * L * (6 * d * d + 2 * d * s.ffn_dim) * n,
        "self_attn": 4 * L * L * d * n,
        "cross_attn": 4 * L * s.text_len * d * n,
        "text_kv": 2 * s.text_len * 2 * d * d * n,
        "audio_inject": s.num_inject * 2 * Lv * 2 * d * d,
        "head": 2 * Lv * d * s.out_per_token,
    }
    terms = {k: float(v) * batch for k, v in terms.items()}
    terms["total"] = sum(terms.values())
    return terms


def dit_shape_from_config(config, num_latent_frames: int, height: int, width: int, with_motion: bool) -> DiTShape:
    """Token counts of a clip of ``num_latent_frames`` x ``height`` x ``width`` latents (pixels / 16) for a
    TalkVerseTransformer3DModel config (a dict or the model's ``config``)."""
    from ..models.frame_packer import FramePackMotioner

    get = config.get if isinstance(config, dict) else lambda k, default=None: getattr(config, k, default)
    per_frame = (height // 2) * (width // 2)
    motion = FramePackMotioner.num_tokens(height, width, tuple(get("framepack_buckets"))) if with_motion else 0
    noisy = num_latent_frames * per_frame
    dim = get("num_attention_heads") * get("attention_head_dim")
    return DiTShape(num_tokens=noisy + per_frame + motion, num_noisy=noisy, dim=dim, ffn_dim=get("ffn_dim"),
                    num_layers=get("num_layers"), text_len=get("text_len"),
                    num_inject=len(get("audio_inject_layers")),
                    out_per_token=get("out_channels") * math.prod(get("patch_size")))


def mfu(flops: float, seconds: float, peak_flops: float) -> float:
    """Model FLOP utilisation: analytic FLOPs / time / peak rate."""
    return flops / seconds / peak_flops
