"""Ulysses sequence parallelism for TalkVerseTransformer3DModel on torch.distributed (all_to_all): the model's own
forward with a sequence plan that shards its tokens (:func:`apply_sequence_parallel`).

Layout. The token sequence [noisy | ref | motion] of length L is zero-padded to Lp = p * ceil(L / p) and rank r holds
tokens [r n, (r+1) n), n = Lp / p. Everything in a block is token-local except self-attention:
  * self-attention: q/k/v projections, the across-heads RMS norms and RoPE run on the local tokens; an all_to_all
    turns [B, n, H, d] (all heads, local tokens) into [B, Lp, H/p, d] (all tokens, local heads); attention runs with a
    key mask that hides the padding; a second all_to_all brings the output back. The heads (24 at full size) must be
    divisible by p.
  * two-segment modulation: the local split is the global split L_v clamped to the shard.
  * text cross-attention and the FFN: local queries, the full (replicated) text context.
  * audio injection: each noisy token attends only to its own latent frame's 5 audio tokens, after an AdaLN that
    depends only on the token and its frame. So a shard injects its tokens frame by frame (a partial frame at each
    shard edge, whole frames in between) with no communication and no gather.
  * the head is per token: each rank applies it to its noisy tokens; one all_gather assembles the output.
Padding tokens never reach attention as keys, never receive injection and are dropped from the output.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..models.sequence import SequenceShard


def _all_to_all(x: torch.Tensor, scatter_dim: int, gather_dim: int, group) -> torch.Tensor:
    """Split ``x`` into p chunks along ``scatter_dim``, send chunk i to rank i, concatenate what arrives along
    ``gather_dim``."""
    p = dist.get_world_size(group)
    inputs = [c.contiguous() for c in x.chunk(p, dim=scatter_dim)]
    outputs = [torch.empty_like(inputs[0]) for _ in range(p)]
    dist.all_to_all(outputs, inputs, group=group)
    return torch.cat(outputs, dim=gather_dim)


def seq_to_head(x: torch.Tensor, group) -> torch.Tensor:
    """[B, n, H, d] (local tokens, all heads) -> [B, p n, H/p, d] (all tokens, local heads)."""
    return _all_to_all(x, scatter_dim=2, gather_dim=1, group=group)


def head_to_seq(x: torch.Tensor, group) -> torch.Tensor:
    """[B, p n, H/p, d] -> [B, n, H, d]."""
    return _all_to_all(x, scatter_dim=1, gather_dim=2, group=group)


def _apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # The same interleaved-pair rotation as diffusers' WanAttnProcessor.
    x1, x2 = x.unflatten(-1, (-1, 2)).unbind(-1)
    c, s = cos[..., 0::2], sin[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x1 * c - x2 * s
    out[..., 1::2] = x1 * s + x2 * c
    return out.type_as(x)


class UlyssesAttnProcessor:
    """Self-attention processor for ``attn1`` under Ulysses SP (module docstring); the shard of the running forward
    comes from its :class:`UlyssesSequence`."""

    def __init__(self, plan: "UlyssesSequence"):
        self.plan = plan

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, rotary_emb=None):
        if encoder_hidden_states is not None:
            raise ValueError("UlyssesAttnProcessor is for self-attention only")
        group, shard = self.plan.group, self.plan.current
        q = attn.norm_q(attn.to_q(hidden_states))
        k = attn.norm_k(attn.to_k(hidden_states))
        v = attn.to_v(hidden_states)
        q, k, v = (t.unflatten(2, (attn.heads, -1)) for t in (q, k, v))
        if rotary_emb is not None:
            q = _apply_rotary(q, *rotary_emb)
            k = _apply_rotary(k, *rotary_emb)
        q, k, v = (seq_to_head(t, group) for t in (q, k, v))  # [B, Lp, H/p, d]
        mask = None
        if shard.padded != shard.length:
            mask = torch.zeros(1, 1, 1, shard.padded, dtype=torch.bool, device=q.device)
            mask[..., : shard.length] = True
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                             attn_mask=mask, dropout_p=0.0, is_causal=False).transpose(1, 2)
        out = head_to_seq(out.contiguous(), group).flatten(2, 3).type_as(hidden_states)
        out = attn.to_out[0](out)
        return attn.to_out[1](out)


class UlyssesSequence:
    """The model's ``sequence_plan`` under Ulysses SP over ``group`` (talkverse.models.sequence)."""

    def __init__(self, group):
        self.group = group
        self.current: SequenceShard | None = None

    def shard(self, x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor]):
        """Zero-pad x [B, L, D] to p * ceil(L / p) tokens (RoPE of the padding: cos 1, sin 0), keep this rank's."""
        shard = SequenceShard(dist.get_rank(self.group), dist.get_world_size(self.group), x.shape[1])
        cos, sin = rotary
        pad = shard.padded - shard.length
        if pad:
            x = F.pad(x, (0, 0, 0, pad))
            cos = torch.cat([cos, cos.new_ones(1, pad, *cos.shape[2:])], dim=1)
            sin = torch.cat([sin, sin.new_zeros(1, pad, *sin.shape[2:])], dim=1)
        self.current = shard
        local = slice(shard.start, shard.stop)
        return x[:, local], (cos[:, local], sin[:, local]), shard

    def head_tokens(self, x: torch.Tensor, num_noisy: int, shard: SequenceShard) -> torch.Tensor:
        return x  # every local token: the gather needs equal sizes; the padding and conditioning rows are cut after

    def gather_head(self, out: torch.Tensor, num_noisy: int) -> torch.Tensor:
        p = dist.get_world_size(self.group)
        parts = [torch.empty_like(out) for _ in range(p)]
        dist.all_gather(parts, out.contiguous(), group=self.group)
        return torch.cat(parts, dim=1)[:, :num_noisy]


def apply_sequence_parallel(model, group) -> None:
    """Split every forward of ``model`` (a TalkVerseTransformer3DModel) over the ranks of ``group``: install the
    Ulysses sequence plan and the all_to_all self-attention processor in every block."""
    heads, p = model.config.num_attention_heads, dist.get_world_size(group)
    if heads % p:
        raise ValueError(f"ulysses size {p} must divide the number of attention heads ({heads})")
    plan = UlyssesSequence(group)
    model.sequence_plan = plan
    for blk in model.blocks:
        blk.attn1.set_processor(UlyssesAttnProcessor(plan))


def communication_bytes_per_step(tokens: int, dim: int, layers: int, world: int, bytes_per_elem: int = 2,
                                 cfg_batch: int = 2, head_out: int = 192, noisy: int | None = None) -> dict:
    """Analytic bytes each rank sends per denoising step (one DiT forward per CFG branch): 4 all_to_alls per block
    (q, k, v in, attention out back), each moving (p-1)/p of the local [n, D] slice, plus the final all_gather of the
    head output."""
    n = math.ceil(tokens / world)
    a2a = 4 * layers * n * dim * (world - 1) / world * bytes_per_elem
    gather = n * head_out * (world - 1) * 4  # fp32 head output, received from p-1 ranks
    per_forward = a2a + gather
    return {"all_to_all_bytes": a2a * cfg_batch, "gather_bytes": gather * cfg_batch,
            "total_bytes": per_forward * cfg_batch}
