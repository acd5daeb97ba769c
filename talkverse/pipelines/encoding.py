"""The once-per-video encodings of ``TalkVersePipeline`` (inference.md §4-§5; s2v14b.md §4.1, §4.3): prompt, audio,
reference image and pose video, each from its own encoder. Mixed into the pipeline class."""

from __future__ import annotations

import numpy as np
import torch

from ..media.fitting import fit_image
from ..media.image import to_rgb
from ..media.sizes import choose_bucket
from ..models.audio_columns import bucket_fps
from .conditioning import VideoConditioning
from .pose import encode_pose
from .prompts import DEFAULT_PROMPT


class EncodingMixin:
    # ------------------------------------------------------------------ once-per-video encodings
    @torch.no_grad()
    def encode_prompt(self, prompt: str, negative_prompt: str | None = None,
                      device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(prompt_embeds [L, D], negative_prompt_embeds [L', D]) in fp32 on the CPU, each trimmed to its real token
        length. ``negative_prompt`` None: the model family's negative prompt."""
        if self.text_encoder is None or self.tokenizer is None:
            raise ValueError("prompt: this pipeline has no text encoder/tokenizer; pass prompt_embeds and "
                             "negative_prompt_embeds")
        neg = self.family.negative_prompt if negative_prompt is None else negative_prompt
        run_on = torch.device("cpu") if self.t5_cpu else (device or self.exec_device)
        with self._on(self.text_encoder, run_on):
            ctx, ctx_null = self.text_codec.encode([prompt, neg], output_device="cpu")
        return ctx.float(), ctx_null.float()

    @torch.no_grad()
    def encode_audio(self, waveform: np.ndarray, plan, device: torch.device | None = None) -> torch.Tensor:
        """16 kHz mono waveform -> conditioning features [1, 25, C, R F] (fp32, CPU) for ``plan``, one column per
        video frame at the family's fps (5B: 25 fps columns; S2V-14B: 30 fps features bucketed at 16 fps).

        ``plan.sync_shift_frames`` frames of silence are prepended and silence is appended up to R F frames
        (inference.md §4, §9), so every clip sees real wav2vec2 features of silence rather than zero vectors."""
        if self.audio_encoder is None or self.feature_extractor is None:
            raise ValueError("audio: this pipeline has no audio encoder; pass audio_features")
        fam = self.family
        shift = plan.sync_shift_frames * plan.geometry.samples_per_frame
        cond = np.zeros(plan.conditioning_samples, dtype=np.float32)
        n = min(len(waveform), plan.conditioning_samples - shift)
        cond[shift:shift + n] = waveform[:n]
        with self._on(self.audio_encoder, device or self.exec_device):
            feats = self.audio_codec.features(cond, fam.feature_fps)  # [25, A, C]
        return bucket_fps(feats, plan.audio_columns, fam.feature_fps, fam.fps)

    @torch.no_grad()
    def encode_video(self, frames: torch.Tensor) -> torch.Tensor:
        """[1, 3, T, H, W] in [-1, 1] -> normalised latents [1, C, 1 + (T-1)//4, H/s, W/s] fp32 (C, s = 48, 16 for
        the Wan2.2 VAE; 16, 8 for Wan2.1)."""
        return self.vae_codec.encode(frames.to(self.vae.device, torch.float32))

    def prepare_conditioning(self, image, audio, prompt, negative_prompt, height, width, size_bucket, image_fit,
                             frames_per_clip, num_clips, sync_shift_frames, start_from_ref, prompt_embeds,
                             negative_prompt_embeds, audio_features, pose_video=None
                             ) -> tuple[VideoConditioning, torch.Tensor]:
        """The once-per-video encodings (arguments as in ``__call__``) and the reference pixels [1, 3, 1, H, W]."""
        img = to_rgb(image)
        if height is None:
            height, width = choose_bucket(img.height, img.width, size_bucket)
        plan_args = dict(frames_per_clip=frames_per_clip, num_clips=num_clips, sync_shift_frames=sync_shift_frames,
                         start_from_ref=start_from_ref)
        if audio_features is None:
            waveform = np.asarray(audio.cpu() if torch.is_tensor(audio) else audio, dtype=np.float32).reshape(-1)
            plan = self.plan_video(len(waveform), **plan_args)
            feats = self.encode_audio(waveform, plan)
        else:
            plan = self.plan_video(audio_columns=audio_features.shape[-1], **plan_args)
            feats = audio_features[..., :plan.audio_columns].float().cpu()
        ref_px = fit_image(img, height, width, mode=image_fit)[None, :, None]
        if prompt_embeds is None:
            ctx, ctx_null = self.encode_prompt(DEFAULT_PROMPT if prompt is None else prompt, negative_prompt)
        else:
            ctx, ctx_null = prompt_embeds.float(), negative_prompt_embeds.float()
        pose = None if pose_video is None else encode_pose(pose_video, self.encode_video, height, width,
                                                            plan.num_clips, plan.frames_per_clip, image_fit)
        cond = VideoConditioning(self.encode_video(ref_px), ctx, ctx_null, feats, plan, height, width, pose)
        return cond, ref_px
