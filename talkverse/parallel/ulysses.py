"""Ulysses sequence parallelism for TalkVerseTransformer3DModel on torch.distributed (all_to_all).

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
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F


@dataclass(frozen=True)
class SequenceShard:
    """Where this rank's tokens sit in the padded sequence."""

    rank: int
    world: int
    length: int  # L (real tokens)

    @property
    def padded(self) -> int:
        return self.world * math.ceil(self.length / self.world)

    @property
    def local(self) -> int:
        return self.padded // self.world

    @property
    def start(self) -> int:
        return self.rank * self.local

    @property
    def stop(self) -> int:
        return self.start + self.local

    def clamp(self, index: int) -> int:
        """A global token index -> the local index (clamped to [0, local])."""
        return min(max(index - self.start, 0), self.local)


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
    """Self-attention processor for ``attn1`` under Ulysses SP (module docstring)."""

    def __init__(self, shard: SequenceShard, group):
        self.shard, self.group = shard, group

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, rotary_emb=None):
        if encoder_hidden_states is not None:
            raise ValueError("UlyssesAttnProcessor is for self-attention only")
        q = attn.norm_q(attn.to_q(hidden_states))
        k = attn.norm_k(attn.to_k(hidden_states))
        v = attn.to_v(hidden_states)
        q, k, v = (t.unflatten(2, (attn.heads, -1)) for t in (q, k, v))
        if rotary_emb is not None:
            q = _apply_rotary(q, *rotary_emb)
            k = _apply_rotary(k, *rotary_emb)
        q, k, v = (seq_to_head(t, self.group) for t in (q, k, v))  # [B, Lp, H/p, d]
        mask = None
        if self.shard.padded != self.shard.length:
            mask = torch.zeros(1, 1, 1, self.shard.padded, dtype=torch.bool, device=q.device)
            mask[..., : self.shard.length] = True
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                             attn_mask=mask, dropout_p=0.0, is_causal=False).transpose(1, 2)
        out = head_to_seq(out.contiguous(), self.group).flatten(2, 3).type_as(hidden_states)
        out = attn.to_out[0](out)
        return attn.to_out[1](out)


def inject_local(injector, index: int, x: torch.Tensor, shard: SequenceShard, num_noisy: int,
                 audio_local: torch.Tensor, audio_global: torch.Tensor) -> torch.Tensor:
    """Audio injection ``index`` on this rank's tokens ``x`` [B, n, D], frame by frame (module docstring)."""
    b, f = audio_local.shape[:2]
    tpf = num_noisy // f  # tokens per latent frame
    lo, hi = shard.start, min(shard.stop, num_noisy)  # global noisy range held here
    if lo >= hi:
        return x
    pieces, cur = [], lo
    while cur < hi:  # runs of equal tokens-per-frame: a leading partial frame, whole frames, a trailing partial one
        frame = cur // tpf
        if cur % tpf == 0 and cur + tpf <= hi:
            last = frame + (hi - cur) // tpf  # whole frames [frame, last)
            end = last * tpf
        else:
            last, end = frame + 1, min(hi, (frame + 1) * tpf)
        pieces.append((cur, end, frame, last))
        cur = end
    dtype = x.dtype
    out = x.clone()
    for s, e, f0, f1 in pieces:
        nf = f1 - f0
        tok = x[:, s - shard.start:e - shard.start].reshape(b * nf, (e - s) // nf, x.shape[-1])
        q_in = injector.injector_adain_layers[index](tok, temb=audio_global[:, f0:f1].reshape(b * nf, -1).to(dtype))
        delta = injector.injector[index](q_in, audio_local[:, f0:f1].reshape(b * nf, audio_local.shape[2], -1)
                                         .to(dtype))
        out[:, s - shard.start:e - shard.start] = x[:, s - shard.start:e - shard.start] + delta.reshape(b, e - s, -1)
    return out


def _gather_seq(x: torch.Tensor, group) -> torch.Tensor:
    p = dist.get_world_size(group)
    parts = [torch.empty_like(x) for _ in range(p)]
    dist.all_gather(parts, x.contiguous(), group=group)
    return torch.cat(parts, dim=1)


@torch.no_grad()
def sp_forward(model, group, hidden_states: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor,
               ref_latents: torch.Tensor, audio_features: torch.Tensor | None = None,
               motion_latents: torch.Tensor | None = None,
               audio_embeds: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """``model(...)`` computed with Ulysses SP over ``group``; returns the full velocity [B, C, F, h, w] (fp32) on every
    rank of the group. Inputs are the full tensors on every rank (they are small next to the activations)."""
    cfg = model.config
    p, rank = dist.get_world_size(group), dist.get_rank(group)
    heads = cfg.num_attention_heads
    if heads % p:
        raise ValueError(f"ulysses size {p} must divide the number of attention heads ({heads})")
    b, _, f, h, w = hidden_states.shape
    if audio_embeds is None:
        audio_embeds = model.encode_audio(audio_features)
    audio_local, audio_global = audio_embeds
    timestep = timestep.reshape(-1).expand(b) if timestep.numel() == 1 else timestep.reshape(-1)

    x = model.embed_tokens(hidden_states, ref_latents, motion_latents)  # [B, L, D]
    split = f * (h // 2) * (w // 2)
    cos, sin = model.rotary_emb(f, h, w, motion_latents is not None, x.device)
    e, e0 = model.embed_time(timestep)
    context = model.embed_text(encoder_hidden_states)

    shard = SequenceShard(rank, p, x.shape[1])
    pad = shard.padded - shard.length
    if pad:
        x = F.pad(x, (0, 0, 0, pad))
        cos = torch.cat([cos, cos.new_ones(1, pad, *cos.shape[2:])], dim=1)
        sin = torch.cat([sin, sin.new_zeros(1, pad, *sin.shape[2:])], dim=1)
    x = x[:, shard.start:shard.stop]
    rot = (cos[:, shard.start:shard.stop], sin[:, shard.start:shard.stop])
    local_split = shard.clamp(split)

    saved = [blk.attn1.processor for blk in model.blocks]
    try:
        for blk in model.blocks:
            blk.attn1.set_processor(UlyssesAttnProcessor(shard, group))
        for i, blk in enumerate(model.blocks):
            x = blk(x, context, e0, rot, local_split)
            j = model.audio_injector.block_to_injector.get(i)
            if j is not None:
                x = inject_local(model.audio_injector, j, x, shard, split, audio_local, audio_global)
    finally:
        for blk, proc in zip(model.blocks, saved):
            blk.attn1.set_processor(proc)

    # Head on the local noisy tokens, then one gather of [B, n, patch*C] per rank.
    shift, scale = (model.scale_shift_table.float() + e[:, 0:1]).chunk(2, dim=1)
    out = model.norm_out(x.float()) * (1 + scale) + shift
    out = model.proj_out(out.to(model.proj_out.weight.dtype)).float()
    out = _gather_seq(out, group)[:, :split]
    p_t, p_h, p_w = cfg.patch_size
    out = out.reshape(b, f, h // p_h, w // p_w, p_t, p_h, p_w, -1).permute(0, 7, 1, 4, 2, 5, 3, 6)
    return out.reshape(b, -1, f * p_t, h, w)


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
