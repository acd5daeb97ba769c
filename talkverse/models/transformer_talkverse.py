"""``TalkVerseTransformer3DModel``: the S2V DiT of TalkVerse-5B and of Wan2.2-S2V-14B, chosen by config.

One class for both (architecture.md §3-§4; s2v14b.md §1-§3): widths, latent channels, the audio-injection layer list
and the reference RoPE slot ``ref_rope_t`` are config fields, and ``cond_dim`` adds the 14B's pose branch
(``cond_encoder``, a patch conv of the pose latents summed into the noisy tokens; absent from the 5B).

Token sequence: [noisy L_v | reference | FramePack motion]. Noisy tokens are modulated with the embedding of t,
reference and motion tokens with the embedding of t = 0 ("two-segment modulation", split at L_v). Audio is
injected into the noisy tokens after the blocks listed in ``audio_inject_layers``: the block calls its injector at the
end of its own forward, so a block is the one unit that diffusers' step caches (``CacheMixin.enable_cache``; docs/
performance.md "Step caching") skip or reuse, and a cached residual includes the audio. The head sees noisy tokens only.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.hooks import FasterCacheConfig, PyramidAttentionBroadcastConfig
from diffusers.hooks._helpers import TransformerBlockMetadata, TransformerBlockRegistry
from diffusers.loaders import PeftAdapterMixin
from diffusers.models.attention import AttentionMixin
from diffusers.models.cache_utils import CacheMixin
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.normalization import FP32LayerNorm
from diffusers.models.transformers.transformer_wan import WanTimeTextImageEmbedding, WanTransformerBlock

from .audio_encoder import CausalAudioEncoder
from .audio_injector import AudioInjector
from .frame_packer import FramePackMotioner
from .rope import rope_tables, token_positions
from .sequence import WholeSequence

ROLE_NOISY, ROLE_REF, ROLE_MOTION = 0, 1, 2


def timestep_sinusoid(timestep: torch.Tensor, dim: int) -> torch.Tensor:
    """[cos(t w_k) | sin(t w_k)], w_k = 10000^(-k/(dim/2)), computed in float64 and returned as fp32.

    Equals diffusers ``Timesteps(dim, flip_sin_to_cos=True, downscale_freq_shift=0)`` up to its fp32 rounding.
    """
    half = dim // 2
    freqs = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64, device=timestep.device) / half)
    arg = timestep.to(torch.float64)[..., None] * freqs
    return torch.cat([torch.cos(arg), torch.sin(arg)], dim=-1).float()


class TalkVerseTransformerBlock(WanTransformerBlock):
    """diffusers ``WanTransformerBlock`` (same parameters) with two-segment modulation.

    ``temb`` is [B, 2, 6, D]: row 0 modulates tokens [0, split), row 1 tokens [split, L). ``split`` is a Python int.
    ``inject``: this block's audio injector (``hidden_states -> hidden_states``), or None; it runs inside the block so
    that a step cache treats block + injector as one unit.
    """

    # Both helpers work in place on a fresh fp32 tensor (a norm output, a projection output), one slice per segment:
    # the same arithmetic as diffusers' single-row modulation (x * (1 + scale) + shift, y * gate) and no concat copy.
    # Autograd supports these in-place updates (the inputs are never leaves or saved for backward).
    @staticmethod
    def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, split: int) -> torch.Tensor:
        # x [B, L, D] fp32, fresh; shift/scale [B, 2, D]
        x[:, :split].mul_(1 + scale[:, 0:1]).add_(shift[:, 0:1])
        x[:, split:].mul_(1 + scale[:, 1:2]).add_(shift[:, 1:2])
        return x

    @staticmethod
    def _gate(y: torch.Tensor, gate: torch.Tensor, split: int) -> torch.Tensor:
        # y [B, L, D] fp32, fresh (a projection output, or its fp32 copy)
        y[:, :split].mul_(gate[:, 0:1])
        y[:, split:].mul_(gate[:, 1:2])
        return y

    def forward(  # type: ignore[override]
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        temb: torch.Tensor,
        rotary_emb: tuple[torch.Tensor, torch.Tensor],
        split: int,
        inject: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> torch.Tensor:
        mod = self.scale_shift_table.float()[:, None] + temb.float()  # [B, 2, 6, D]
        shift1, scale1, gate1, shift2, scale2, gate2 = mod.unbind(dim=2)

        # 1. Self-attention over all tokens.
        norm = self._modulate(self.norm1(hidden_states.float()), shift1, scale1, split).type_as(hidden_states)
        attn = self.attn1(norm, None, None, rotary_emb)
        hidden_states = (hidden_states.float() + self._gate(attn.float(), gate1, split)).type_as(hidden_states)

        # 2. Text cross-attention: no modulation, no gate, no mask.
        norm = self.norm2(hidden_states.float()).type_as(hidden_states)
        hidden_states = hidden_states + self.attn2(norm, encoder_hidden_states, None, None)

        # 3. Feed-forward.
        norm = self._modulate(self.norm3(hidden_states.float()), shift2, scale2, split).type_as(hidden_states)
        ff = self.ffn(norm)
        hidden_states = (hidden_states.float() + self._gate(ff.float(), gate2, split)).type_as(hidden_states)
        return hidden_states if inject is None else inject(hidden_states)


# diffusers' block caches (FirstBlockCache, MagCache) look a block class up here: ours takes ``hidden_states`` first and
# returns the new hidden states as one tensor (no encoder states out), as WanTransformerBlock does.
TransformerBlockRegistry.register(TalkVerseTransformerBlock, TransformerBlockMetadata(
    return_hidden_states_index=0, return_encoder_hidden_states_index=None))
# Caches whose state is one per layer for every call (not per ``cache_context``): they would carry the conditional
# branch's attention into the unconditional pass (and FasterCache expects an [uncond, cond] batch).
UNSUPPORTED_CACHES = (FasterCacheConfig, PyramidAttentionBroadcastConfig)


class TalkVerseTransformer3DModel(ModelMixin, ConfigMixin, PeftAdapterMixin, AttentionMixin, CacheMixin):
    r"""The TalkVerse S2V-5B diffusion transformer.

    Base modules use diffusers ``WanTransformer3DModel`` names; the S2V modules keep the reference names
    (``casual_audio_encoder``, ``audio_injector``, ``frame_packer``, ``trainable_cond_mask``) so TalkVerse
    checkpoints load without renaming.

    Step caching: ``enable_cache(FirstBlockCacheConfig | MagCacheConfig | TaylorSeerCacheConfig)`` (diffusers'
    ``CacheMixin``); the pipeline keeps one cache state per CFG branch and resets it every clip.
    """

    _supports_gradient_checkpointing = True
    _no_split_modules = ["TalkVerseTransformerBlock"]
    _keep_in_fp32_modules = [
        "time_embedder", "time_proj", "scale_shift_table", "norm1", "norm2", "norm3", "norm_out", "proj_out",
        "casual_audio_encoder",
    ]
    _skip_layerwise_casting_patterns = ["patch_embedding", "cond_encoder", "condition_embedder", "norm", "casual_audio_encoder",
                                        "proj_out", "frame_packer", "trainable_cond_mask"]
    _repeated_blocks = ["TalkVerseTransformerBlock"]

    @register_to_config
    def __init__(
        self,
        patch_size: tuple[int, int, int] = (1, 2, 2),
        num_attention_heads: int = 24,
        attention_head_dim: int = 128,
        in_channels: int = 48,
        out_channels: int = 48,
        text_dim: int = 4096,
        text_len: int = 512,
        freq_dim: int = 256,
        ffn_dim: int = 14336,
        num_layers: int = 30,
        cross_attn_norm: bool = True,
        qk_norm: str = "rms_norm_across_heads",
        eps: float = 1e-6,
        rope_max_seq_len: int = 1024,
        rope_theta: float = 10000.0,
        audio_dim: int = 1024,
        audio_num_layers: int = 25,
        audio_tokens_per_frame: int = 4,
        audio_inject_layers: tuple[int, ...] = (0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 29),
        adaln_eps: float = 1e-5,
        framepack_buckets: tuple[int, int, int] = (1, 2, 16),
        motion_frames: int = 73,
        motion_latents: int = 19,
        ref_rope_t: int = 40,
        num_cond_roles: int = 3,
        cond_dim: int | None = None,
    ) -> None:
        super().__init__()
        if tuple(patch_size) != (1, 2, 2):
            raise ValueError(f"patch_size must be (1, 2, 2) for the S2V token layout, got {patch_size}")
        dim = num_attention_heads * attention_head_dim
        if sum(framepack_buckets) != motion_latents or (motion_frames + 3) // 4 != motion_latents:
            raise ValueError("framepack_buckets must sum to motion_latents = (motion_frames + 3) // 4")
        if any(not 0 <= i < num_layers for i in audio_inject_layers):
            raise ValueError(f"audio_inject_layers {audio_inject_layers} must lie in [0, {num_layers})")

        self.patch_embedding = nn.Conv3d(in_channels, dim, kernel_size=patch_size, stride=patch_size)
        self.condition_embedder = WanTimeTextImageEmbedding(
            dim=dim, time_freq_dim=freq_dim, time_proj_dim=dim * 6, text_embed_dim=text_dim
        )
        self.blocks = nn.ModuleList(
            [TalkVerseTransformerBlock(dim, ffn_dim, num_attention_heads, qk_norm, cross_attn_norm, eps)
             for _ in range(num_layers)]
        )
        self.norm_out = FP32LayerNorm(dim, eps, elementwise_affine=False)
        self.proj_out = nn.Linear(dim, out_channels * math.prod(patch_size))
        self.scale_shift_table = nn.Parameter(torch.randn(1, 2, dim) / dim**0.5)

        # S2V modules (reference names).
        self.casual_audio_encoder = CausalAudioEncoder(audio_dim, audio_num_layers, dim, audio_tokens_per_frame, eps)
        self.audio_injector = AudioInjector(dim, num_attention_heads, list(audio_inject_layers), eps, adaln_eps)
        self.trainable_cond_mask = nn.Embedding(num_cond_roles, dim)
        self.frame_packer = FramePackMotioner(in_channels, dim, tuple(framepack_buckets))
        # Pose branch (S2V-14B, reference name): patch conv of the pose-video latents, added to the noisy tokens.
        self.cond_encoder = nn.Conv3d(cond_dim, dim, kernel_size=patch_size, stride=patch_size) if cond_dim else None

        self.gradient_checkpointing = False
        self._rope_cache: dict[Any, tuple[torch.Tensor, torch.Tensor]] = {}
        # Which tokens this process holds: all of them, unless talkverse.parallel installs another plan.
        self.sequence_plan = WholeSequence()

    @torch.no_grad()
    def init_s2v_module(self, name: str) -> None:
        """Spec initialisation of one S2V module (architecture.md §7): PyTorch defaults for Linear/Conv/AdaLN,
        RMSNorm weight 1, ``trainable_cond_mask`` N(0, 1), ``padding_tokens`` 0, layer-mix ``weights`` 0.01."""
        module = getattr(self, name)
        for m in module.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        if name == "casual_audio_encoder":
            module.weights.fill_(0.01)
            module.encoder.padding_tokens.zero_()

    # ------------------------------------------------------------------ geometry helpers (no tensors involved)
    def token_counts(self, num_latent_frames: int, height: int, width: int, with_motion: bool) -> tuple[int, int, int]:
        """(noisy, reference, motion) token counts for a latent clip of F x h x w."""
        per_frame = (height // 2) * (width // 2)
        motion = FramePackMotioner.num_tokens(height, width, tuple(self.config.framepack_buckets)) if with_motion else 0
        return num_latent_frames * per_frame, per_frame, motion

    def token_roles(self, num_latent_frames: int, height: int, width: int, with_motion: bool) -> torch.Tensor:
        """int64 [L]: 0 noisy, 1 reference, 2 motion (the ``trainable_cond_mask`` row of each token)."""
        n, r, m = self.token_counts(num_latent_frames, height, width, with_motion)
        return torch.cat([torch.full((n,), ROLE_NOISY), torch.full((r,), ROLE_REF), torch.full((m,), ROLE_MOTION)])

    def rotary_emb(
        self, num_latent_frames: int, height: int, width: int, with_motion: bool, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """fp32 (cos, sin) [1, L, 1, head_dim], built once per geometry and device, then cached."""
        key = (num_latent_frames, height, width, with_motion, str(device))
        if key not in self._rope_cache:
            pos = token_positions(num_latent_frames, height, width, with_motion, self.config.ref_rope_t,
                                  tuple(self.config.framepack_buckets))
            self._rope_cache[key] = rope_tables(pos, self.config.attention_head_dim, self.config.rope_theta, device)
        return self._rope_cache[key]

    # ------------------------------------------------------------------ conditioning (constant across sampling steps)
    def encode_audio(self, audio_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Clip audio [B, 25, C, F] -> (local [B, F/4, 5, D], global [B, F/4, 1, D]), fp32.

        The clip is prefixed with ``motion_frames`` copies of its first column (the motion timeline) and the
        first ``motion_latents`` output positions are dropped again. Constant within a clip: cache it.
        """
        m = self.config.motion_frames
        prefix = audio_features[..., :1].expand(*audio_features.shape[:-1], m)
        local, glob = self.casual_audio_encoder(torch.cat([prefix, audio_features], dim=-1))
        k = self.config.motion_latents
        return local[:, k:], glob[:, k:]

    def embed_text(self, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        """umT5 context [B, L_text <= text_len, text_dim] -> zero-padded to text_len -> [B, text_len, D]."""
        n = self.config.text_len
        if encoder_hidden_states.shape[1] > n:
            raise ValueError(f"text context has {encoder_hidden_states.shape[1]} rows, more than text_len={n}")
        if encoder_hidden_states.shape[1] < n:
            pad = encoder_hidden_states.new_zeros(
                encoder_hidden_states.shape[0], n - encoder_hidden_states.shape[1], encoder_hidden_states.shape[2])
            encoder_hidden_states = torch.cat([encoder_hidden_states, pad], dim=1)
        emb = self.condition_embedder.text_embedder
        return emb(encoder_hidden_states.to(emb.linear_1.weight.dtype))

    def embed_time(self, timestep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """timestep [B] (float, 0..1000) -> (e [B, 2, D], e0 [B, 2, 6, D]) for (t, 0), fp32."""
        ce = self.condition_embedder
        t2 = torch.stack([timestep.reshape(-1), torch.zeros_like(timestep.reshape(-1))], dim=1)  # [B, 2]
        sin = timestep_sinusoid(t2, self.config.freq_dim).to(ce.time_embedder.linear_1.weight.dtype)
        e = ce.time_embedder(sin).float()
        e0 = ce.time_proj(ce.act_fn(e).to(ce.time_proj.weight.dtype)).float().unflatten(2, (6, -1))
        return e, e0

    # ------------------------------------------------------------------ forward
    def embed_tokens(
        self, latents: torch.Tensor, ref_latents: torch.Tensor, motion_latents: torch.Tensor | None,
        cond_states: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """[patch(noisy) (+ cond) | patch(ref) | FramePack(motion)] + role embedding -> [B, L, D].

        With a ``cond_encoder`` the noisy patches get ``cond_encoder(cond_states)`` added before flattening (the
        reference order); ``cond_states`` None means zeros, whose conv is the bias alone (s2v14b.md §3.1)."""
        dtype = self.patch_embedding.weight.dtype
        role = self.trainable_cond_mask.weight.to(dtype)  # [3, D]: rows noisy, reference, motion
        noisy = self.patch_embedding(latents.to(dtype))
        if self.cond_encoder is not None:
            if cond_states is None:
                noisy = noisy + self.cond_encoder.bias.to(dtype)[:, None, None, None]
            else:
                if cond_states.shape[2:] != latents.shape[2:]:
                    raise ValueError(f"cond_states {tuple(cond_states.shape)} must match the latents' frames and "
                                     f"size {tuple(latents.shape[2:])}")
                noisy = noisy + self.cond_encoder(cond_states.to(dtype))
        elif cond_states is not None:
            raise ValueError("cond_states (a pose video) given, but this model has no cond_encoder")
        parts = [noisy.flatten(2).transpose(1, 2) + role[ROLE_NOISY],
                 self.patch_embedding(ref_latents.to(dtype)).flatten(2).transpose(1, 2) + role[ROLE_REF]]
        if motion_latents is not None:
            parts.append(self.frame_packer(motion_latents).to(dtype) + role[ROLE_MOTION])
        return torch.cat(parts, dim=1)

    def enable_cache(self, config) -> None:
        """diffusers ``CacheMixin.enable_cache``, refusing the caches that cannot keep the CFG branches apart."""
        if isinstance(config, UNSUPPORTED_CACHES):
            raise ValueError(f"{type(config).__name__}: not supported by TalkVerseTransformer3DModel (its state is "
                             "shared by the CFG branches); use FirstBlockCacheConfig, MagCacheConfig or "
                             "TaylorSeerCacheConfig")
        super().enable_cache(config)

    def _run_block(self, i: int, hidden_states, context, temb, rotary_emb, shard, split, audio_local, audio_global):
        """Block i with its audio injector, if any (one unit for activation checkpointing and for step caches).

        ``hidden_states`` are this process's tokens (``shard``); ``split`` = L_v is the global noisy length."""
        j = self.audio_injector.block_to_injector.get(i)
        inject = None if j is None else functools.partial(
            self.audio_injector, j, shard=shard, num_noisy=split, audio_local=audio_local, audio_global=audio_global)
        return self.blocks[i](hidden_states, context, temb, rotary_emb, shard.clamp(split), inject)

    def head(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """Output head on tokens x [B, n, D], modulated by e(t) [B, 2, D] -> [B, n, p_t p_h p_w C] fp32."""
        shift, scale = (self.scale_shift_table.float() + e[:, 0:1]).chunk(2, dim=1)
        out = self.norm_out(x.float()) * (1 + scale) + shift
        return self.proj_out(out.to(self.proj_out.weight.dtype)).float()

    def unpatchify(self, out: torch.Tensor, f: int, h: int, w: int) -> torch.Tensor:
        """[B, F h' w', p_t p_h p_w C] -> [B, C, F p_t, h, w]."""
        p_t, p_h, p_w = self.config.patch_size
        b = out.shape[0]
        out = out.reshape(b, f, h // p_h, w // p_w, p_t, p_h, p_w, -1).permute(0, 7, 1, 4, 2, 5, 3, 6)
        return out.reshape(b, -1, f * p_t, h, w)

    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        ref_latents: torch.Tensor,
        audio_features: torch.Tensor | None = None,
        motion_latents: torch.Tensor | None = None,
        audio_embeds: tuple[torch.Tensor, torch.Tensor] | None = None,
        cond_states: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> Transformer2DModelOutput | tuple[torch.Tensor]:
        """Predict the flow velocity of a clip.

        Args:
            hidden_states: noisy latents [B, C, F_lat, h, w].
            timestep: [B] float in [0, 1000).
            encoder_hidden_states: text context [B, L_text, text_dim], zero-padded here to ``text_len``.
            ref_latents: reference-image latent [B, C, 1, h, w].
            audio_features: wav2vec2 states of the clip [B, 25, C_a, 4*F_lat] (ignored if ``audio_embeds`` given).
            motion_latents: [B, C, 19, h, w] (oldest first), or None to *remove* the motion tokens (first clip).
            audio_embeds: precomputed ``encode_audio`` output, to skip the audio encoder across sampling steps.
            cond_states: pose latents [B, cond_dim, F_lat, h, w] for a model with ``cond_encoder`` (S2V-14B); None
                = no pose (zeros: the branch still adds its bias). Must be None for a model without one.

        Returns:
            velocity [B, C_out, F_lat, h, w] in fp32.
        """
        b, _, f, h, w = hidden_states.shape
        if f > self.config.ref_rope_t:
            raise ValueError(f"{f} latent frames collide with the reference RoPE slot {self.config.ref_rope_t}; "
                             f"use at most {4 * self.config.ref_rope_t} frames per clip")
        if audio_embeds is None:
            if audio_features is None:
                raise ValueError("pass audio_features or audio_embeds")
            if audio_features.shape[-1] != 4 * f:
                raise ValueError(f"audio has {audio_features.shape[-1]} frame columns; {f} latent frames need {4 * f}")
            audio_embeds = self.encode_audio(audio_features)
        audio_local, audio_global = audio_embeds
        timestep = timestep.reshape(-1).expand(b) if timestep.numel() == 1 else timestep.reshape(-1)

        x = self.embed_tokens(hidden_states, ref_latents, motion_latents, cond_states)
        split = f * (h // 2) * (w // 2)  # L_v: a Python int derived from shapes
        rotary_emb = self.rotary_emb(f, h, w, motion_latents is not None, x.device)
        e, e0 = self.embed_time(timestep)
        context = self.embed_text(encoder_hidden_states)

        plan = self.sequence_plan
        x, rotary_emb, shard = plan.shard(x, rotary_emb)
        for i in range(len(self.blocks)):
            args = (i, x, context, e0, rotary_emb, shard, split, audio_local, audio_global)
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                x = self._gradient_checkpointing_func(self._run_block, *args)
            else:
                x = self._run_block(*args)

        # Head on the noisy tokens only, modulated by e(t).
        out = plan.gather_head(self.head(plan.head_tokens(x, split, shard), e), split)
        out = self.unpatchify(out, f, h, w)
        if not return_dict:
            return (out,)
        return Transformer2DModelOutput(sample=out)
