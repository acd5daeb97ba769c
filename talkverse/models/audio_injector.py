"""Per-latent-frame audio cross-attention with AdaLN, applied after selected DiT blocks (``audio_injector``)."""

from __future__ import annotations

import torch
import torch.nn as nn
from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.normalization import AdaLayerNorm

from .sequence import SequenceShard


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

    def forward(self, index: int, hidden_states: torch.Tensor, shard: SequenceShard, num_noisy: int,
                audio_local: torch.Tensor, audio_global: torch.Tensor) -> torch.Tensor:
        """Add injector ``index``'s output to the noisy tokens among this process's ``hidden_states``.

        hidden_states [B, n, D] are tokens [shard.start, shard.stop) of the sequence; audio_local [B, F, 5, D];
        audio_global [B, F, 1, D]; the first ``num_noisy`` = F x (tokens per frame) tokens of the sequence are noisy.
        Each latent frame's tokens attend only to its own 5 audio tokens, after an AdaLN on its own global token, so
        the held tokens are regrouped frame-major, [B * frames, tokens, D], in runs of equal tokens per frame: a
        partial frame at each shard edge, whole frames in between (one run when the shard holds the whole sequence).
        """
        b, f = audio_local.shape[:2]
        dim, per_frame = hidden_states.shape[-1], num_noisy // f
        runs = frame_runs(shard.start, min(shard.stop, num_noisy), per_frame)
        # All runs go through each layer in ONE call, as rows [B * frames, tokens, D] padded to the longest run (both
        # layers are token-wise, so a padded row changes no real token); a shard with no noisy token still calls
        # them once, on a dummy row. With sharded weights (FSDP) every rank then gathers each layer exactly once.
        width = max([(e - s) // (f1 - f0) for s, e, f0, f1 in runs], default=1)
        rows, frames = [], []
        for s, e, f0, f1 in runs:
            tok = hidden_states[:, s - shard.start:e - shard.start].reshape(b * (f1 - f0), (e - s) // (f1 - f0), dim)
            rows.append(tok if tok.shape[1] == width else nn.functional.pad(tok, (0, 0, 0, width - tok.shape[1])))
            frames.append((f0, f1))
        if not runs:
            rows, frames = [hidden_states.new_zeros(b, 1, dim)], [(0, 1)]
        tokens = _cat(rows)
        dtype = tokens.dtype
        temb = _cat([audio_global[:, f0:f1].reshape(-1, dim) for f0, f1 in frames]).to(dtype)
        context = _cat([audio_local[:, f0:f1].reshape(-1, audio_local.shape[2], dim) for f0, f1 in frames])
        delta = self.injector[index](self.injector_adain_layers[index](tokens, temb=temb), context.to(dtype))
        out, row = hidden_states.clone(), 0
        for s, e, f0, f1 in runs:
            n = b * (f1 - f0)
            piece = delta[row:row + n, :(e - s) // (f1 - f0)].reshape(b, e - s, dim)
            out[:, s - shard.start:e - shard.start] = hidden_states[:, s - shard.start:e - shard.start] + piece
            row += n
        return out


def _cat(parts: list[torch.Tensor]) -> torch.Tensor:
    """torch.cat without the copy when there is one part (one process holding the whole sequence)."""
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def frame_runs(lo: int, hi: int, tokens_per_frame: int) -> list[tuple[int, int, int, int]]:
    """Cut the noisy tokens [lo, hi) into runs (start, end, first frame, end frame) of equal tokens per frame."""
    runs, cur = [], lo
    while cur < hi:
        frame = cur // tokens_per_frame
        if cur % tokens_per_frame == 0 and cur + tokens_per_frame <= hi:
            last = frame + (hi - cur) // tokens_per_frame  # whole frames [frame, last)
            end = last * tokens_per_frame
        else:
            last, end = frame + 1, min(hi, (frame + 1) * tokens_per_frame)
        runs.append((cur, end, frame, last))
        cur = end
    return runs
