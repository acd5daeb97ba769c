"""Per-latent-frame audio cross-attention with AdaLN, applied after selected DiT blocks (``audio_injector``)."""

from __future__ import annotations

import torch
import torch.nn as nn
from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.normalization import AdaLayerNorm


class AudioCrossAttention(nn.Module):
    """Cross-attention from video tokens to a frame's audio tokens; q/k RMS-normed over all heads, no v-scale."""

    def __init__(self, dim: int, num_heads: int, eps: float = 1e-6):
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)
        self.norm_q = nn.RMSNorm(dim, eps=eps)
        self.norm_k = nn.RMSNorm(dim, eps=eps)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """x [N, Lq, D], context [N, Lk, D] -> [N, Lq, D]."""
        q = self.norm_q(self.q(x)).unflatten(2, (self.num_heads, -1))
        k = self.norm_k(self.k(context)).unflatten(2, (self.num_heads, -1))
        v = self.v(context).unflatten(2, (self.num_heads, -1))
        out = dispatch_attention_fn(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False)
        return self.o(out.flatten(2, 3).type_as(x))


class AudioInjector(nn.Module):
    """The injectors (``injector.{j}``) and their AdaLN layers (``injector_adain_layers.{j}``).

    ``block_to_injector`` maps a block index to its injector index explicitly (never by substring matching).
    """

    def __init__(self, dim: int, num_heads: int, inject_layers: list[int], eps: float = 1e-6, adaln_eps: float = 1e-5):
        super().__init__()
        self.block_to_injector = {int(b): j for j, b in enumerate(inject_layers)}
        self.injector = nn.ModuleList([AudioCrossAttention(dim, num_heads, eps) for _ in inject_layers])
        # diffusers AdaLayerNorm with chunk_dim=1 gives (shift, scale) order; LN eps 1e-5, no affine.
        self.injector_adain_layers = nn.ModuleList(
            [AdaLayerNorm(embedding_dim=dim, output_dim=2 * dim, norm_eps=adaln_eps, chunk_dim=1) for _ in inject_layers]
        )

    def forward(
        self, index: int, hidden_states: torch.Tensor, num_noisy: int, audio_local: torch.Tensor, audio_global: torch.Tensor
    ) -> torch.Tensor:
        """Add injector ``index``'s output to the noisy tokens.

        hidden_states [B, L, D]; audio_local [B, F, 5, D]; audio_global [B, F, 1, D]. The noisy tokens are
        regrouped frame-major to [B*F, L_v/F, D], so each frame attends only to its own 5 audio tokens.
        """
        b, f = audio_local.shape[:2]
        noisy = hidden_states[:, :num_noisy]
        per_frame = noisy.reshape(b * f, num_noisy // f, noisy.shape[-1])
        dtype = per_frame.dtype
        q_in = self.injector_adain_layers[index](per_frame, temb=audio_global.reshape(b * f, -1).to(dtype))
        out = self.injector[index](q_in, audio_local.reshape(b * f, audio_local.shape[2], -1).to(dtype))
        noisy = noisy + out.reshape(b, num_noisy, -1)
        return torch.cat([noisy, hidden_states[:, num_noisy:]], dim=1)
