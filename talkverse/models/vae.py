"""Wan2.2 VAE wrapper around ``diffusers.AutoencoderKLWan``: latent normalisation and streaming (loading:
``talkverse.loaders.vae``).

Conventions (docs/checkpoints.md §4, inference.md):

* ``encode(video)``: video [B, 3, T, H, W] in [-1, 1] -> normalised latents ``z = (mu - mean) * (1/std)`` [B, 48,
  1 + (T-1)//4, H/16, W/16], fp32. Only the posterior mean is used. Frames after ``1 + 4*(T_lat-1)`` are dropped
  (as the reference does).
* ``decode(z)``: ``mu = z / (1/std) + mean`` (exactly this form, 1/std computed in fp32 first), pixels clamped to
  [-1, 1], [B, 3, 1 + 4*(T_lat-1), H, W].
* Streaming: :class:`StreamingDecoder` / :class:`StreamingEncoder` keep the causal conv caches of diffusers' decoder /
  encoder across calls, so chunked results equal the one-shot ones while memory stays flat in the sequence length.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from diffusers import AutoencoderKLWan
from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d, patchify, unpatchify


def _count_convs(module: torch.nn.Module) -> int:
    return sum(isinstance(m, WanCausalConv3d) for m in module.modules())


class TalkVerseVAE(torch.nn.Module):
    """Wan2.2 VAE with the reference's latent normalisation. ``self.vae`` is the diffusers model."""

    def __init__(self, vae: AutoencoderKLWan):
        super().__init__()
        self.vae = vae
        cfg = vae.config
        if cfg.latents_mean is None or cfg.latents_std is None or len(cfg.latents_mean) != cfg.z_dim:
            raise ValueError("the VAE config needs latents_mean / latents_std with z_dim values each")
        shape = (1, cfg.z_dim, 1, 1, 1)
        std = torch.tensor(cfg.latents_std, dtype=torch.float32)
        # fp32 constants as plain attributes (not buffers), so module.to(dtype) never rounds them.
        self.latents_mean = torch.tensor(cfg.latents_mean, dtype=torch.float32).view(shape)
        self.latents_inv_std = (1.0 / std).view(shape)

    # ------------------------------------------------------------------ properties
    @property
    def z_dim(self) -> int:
        return self.vae.config.z_dim

    @property
    def dtype(self) -> torch.dtype:
        return next(self.vae.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.vae.parameters()).device

    # ------------------------------------------------------------------ normalisation
    def normalize(self, mu: torch.Tensor) -> torch.Tensor:
        """z = (mu - mean) * (1/std), fp32."""
        return (mu.float() - self.latents_mean.to(mu.device)) * self.latents_inv_std.to(mu.device)

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        """mu = z / (1/std) + mean, fp32 (the form that is bit-exact with the reference)."""
        return z.float() / self.latents_inv_std.to(z.device) + self.latents_mean.to(z.device)

    # ------------------------------------------------------------------ one-shot
    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """[B, 3, T, H, W] in [-1, 1] -> normalised latents [B, z_dim, 1 + (T-1)//4, H/16, W/16] (fp32)."""
        if video.dim() != 5:
            raise ValueError(f"video must be [B, 3, T, H, W], got {tuple(video.shape)}")
        h = self.vae._encode(video.to(device=self.device, dtype=self.dtype))
        return self.normalize(h[:, : self.z_dim])

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Normalised latents [B, z_dim, T, h, w] -> pixels [B, 3, 1 + 4(T-1), 16h, 16w] clamped to [-1, 1]."""
        if z.dim() != 5:
            raise ValueError(f"latents must be [B, C, T, H, W], got {tuple(z.shape)}")
        mu = self.denormalize(z).to(device=self.device, dtype=self.dtype)
        return self.vae._decode(mu).sample

    # ------------------------------------------------------------------ streaming
    def streaming_decoder(self) -> StreamingDecoder:
        return StreamingDecoder(self)

    def streaming_encoder(self) -> StreamingEncoder:
        return StreamingEncoder(self)

    def decode_stream(self, latent_chunks: Iterable[torch.Tensor]) -> Iterator[torch.Tensor]:
        """Decode consecutive latent chunks of one sequence; yields the pixels of each latent frame as it is ready
        (1 frame for the very first latent frame, then 4 per latent frame)."""
        dec = StreamingDecoder(self)
        for chunk in latent_chunks:
            yield from dec.iter_frames(chunk)

    def encode_stream(self, frame_chunks: Iterable[torch.Tensor]) -> Iterator[torch.Tensor]:
        """Encode consecutive pixel chunks of one sequence (any sizes); yields latents [B, z_dim, 1, h, w] as soon as
        their frames are complete (frame 0 alone, then groups of 4). Trailing incomplete groups are dropped."""
        enc = StreamingEncoder(self)
        for chunk in frame_chunks:
            out = enc.push(chunk)
            for i in range(out.shape[2]):
                yield out[:, :, i : i + 1]


class _Streaming:
    """A causal conv stack run chunk by chunk: one cache slot per ``WanCausalConv3d`` of ``module``, kept between
    calls (the last 2 frames of each causal conv's input), so memory is constant in the sequence length."""

    def __init__(self, vae: TalkVerseVAE, module: torch.nn.Module):
        self.vae = vae
        self._n_convs = _count_convs(module)
        self.reset()

    def reset(self) -> None:
        self._cache: list = [None] * self._n_convs


class StreamingDecoder(_Streaming):
    """Decodes latent frames chunk by chunk, keeping the decoder's causal feature cache between calls.

    Concatenating the outputs of ``decode(chunk)`` over consecutive chunks equals ``TalkVerseVAE.decode`` of the whole
    sequence.
    """

    def __init__(self, vae: TalkVerseVAE):
        super().__init__(vae, vae.vae.decoder)

    def reset(self) -> None:
        super().reset()
        self._first = True
        self.latent_frames_in = 0
        self.frames_out = 0

    def cache_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self._cache if isinstance(t, torch.Tensor))

    @torch.no_grad()
    def iter_frames(self, z: torch.Tensor) -> Iterator[torch.Tensor]:
        """Pixels of each latent frame of ``z`` ([B, z_dim, t, h, w], normalised), one latent frame at a time."""
        if z.dim() != 5:
            raise ValueError(f"latents must be [B, C, T, H, W], got {tuple(z.shape)}")
        m = self.vae.vae
        mu = self.vae.denormalize(z).to(device=self.vae.device, dtype=self.vae.dtype)
        x = m.post_quant_conv(mu)  # kernel 1: no temporal context needed
        for i in range(x.shape[2]):
            out = m.decoder(x[:, :, i : i + 1], feat_cache=self._cache, feat_idx=[0], first_chunk=self._first)
            self._first = False
            if m.config.patch_size is not None:
                out = unpatchify(out, patch_size=m.config.patch_size)
            out = torch.clamp(out, min=-1.0, max=1.0)
            self.latent_frames_in += 1
            self.frames_out += out.shape[2]
            yield out

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Pixels of the whole chunk [B, 3, n, H, W] (n = 4 per latent frame; the sequence's first gives 1)."""
        return torch.cat(list(self.iter_frames(z)), dim=2)

    __call__ = decode


class StreamingEncoder(_Streaming):
    """Encodes pixel frames chunk by chunk with a persistent encoder cache: frame 0 alone, then groups of 4.

    ``push(frames)`` accepts any number of frames and returns the normalised latents of every group completed so far
    ([B, z_dim, k, h, w], k possibly 0). Frames of an incomplete trailing group wait for the next push; ``pending``
    says how many are waiting (they are dropped if the sequence ends there, as in the reference).
    """

    def __init__(self, vae: TalkVerseVAE):
        super().__init__(vae, vae.vae.encoder)

    def reset(self) -> None:
        super().reset()
        self._buf: torch.Tensor | None = None
        self.frames_in = 0
        self.latent_frames_out = 0

    @property
    def pending(self) -> int:
        return 0 if self._buf is None else self._buf.shape[2]

    @torch.no_grad()
    def push(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.dim() != 5:
            raise ValueError(f"frames must be [B, 3, T, H, W], got {tuple(frames.shape)}")
        m = self.vae.vae
        x = frames.to(device=self.vae.device, dtype=self.vae.dtype)
        self._buf = x if self._buf is None else torch.cat([self._buf, x], dim=2)
        self.frames_in += x.shape[2]
        outs = []
        while True:
            need = 1 if self.latent_frames_out == 0 else 4
            if self._buf.shape[2] < need:
                break
            chunk, self._buf = self._buf[:, :, :need], self._buf[:, :, need:]
            if m.config.patch_size is not None:
                chunk = patchify(chunk, patch_size=m.config.patch_size)
            h = m.encoder(chunk, feat_cache=self._cache, feat_idx=[0])
            h = m.quant_conv(h)  # kernel 1
            outs.append(self.vae.normalize(h[:, : self.vae.z_dim]))
            self.latent_frames_out += 1
        if outs:
            return torch.cat(outs, dim=2)
        b, _, _, hh, ww = frames.shape
        s = m.config.scale_factor_spatial
        return torch.zeros(b, self.vae.z_dim, 0, hh // s, ww // s, device=self.vae.device)

    __call__ = push
