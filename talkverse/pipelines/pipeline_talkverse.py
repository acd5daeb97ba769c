"""TalkVersePipeline: portrait + speech waveform + prompt -> lip-synced frames, clip by clip (inference.md §3-§12).

The pipeline computes; it reads and writes no files (``talkverse.runner`` decodes inputs and writes mp4s). Components
(diffusers conventions, built once and passed in): ``transformer`` (TalkVerseTransformer3DModel), ``vae`` (diffusers
AutoencoderKLWan), ``scheduler`` (a flow UniPC from ``make_scheduler(shift)``; its table is set per clip), and the
optional encoders ``text_encoder`` + ``tokenizer`` (umT5) and ``audio_encoder`` + ``feature_extractor`` (wav2vec2).
Without encoders pass ``prompt_embeds`` / ``audio_features``.

Shapes at the real size (704x1280, F = 120 frames per clip): latents [1, 48, 30, 44, 80], motion latents
[1, 48, 19, 44, 80], ref latent [1, 48, 1, 44, 80], audio features [1, 25, 1024, R F], one clip's kept frames
[3, 120, 704, 1280] in [-1, 1].
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterable, Iterator

import torch
from diffusers import DiffusionPipeline
from tqdm.auto import tqdm

from ..models.text_encoder import pad_context
from ..models.transformer_talkverse import TalkVerseTransformer3DModel
from ..parallel.state import SingleProcess
from .caching import cache_enabled, cache_scope, reset_step_cache
from .checks import check_call, check_dub_mask, check_motion_size, check_output_type, signature_of_call
from .components import ComponentsMixin
from .conditioning import SamplingSettings, VideoConditioning, clip_generator, clip_noise
from .dubbing import DubSource
from .encoding import EncodingMixin
from .family import ModelFamily, family, family_of
from .guidance import branch_velocities, guide, uses_uncond
from .inpainting import RepaintBlend, latent_mask
from .output import TalkVersePipelineOutput, postprocess_video
from .scheduling import dub_schedule, set_schedule
from .timeline import ClipGeometry, ClipPlan, plan_clips, plan_from_features, video_lead_frames

FIRST_CLIP_MOTION = ("drop", "zeros", "reference")
START_FROM_REF_COPIES = 6  # start_from_ref motion pixels: 67 zero frames + 6 copies of the reference image
CALLBACK_TENSOR_INPUTS = ["latents", "noise_pred", "noise_pred_cond", "noise_pred_uncond", "motion_latents",
                          "ref_latents", "prompt_embeds", "negative_prompt_embeds"]


class TalkVersePipeline(ComponentsMixin, EncodingMixin, DiffusionPipeline):
    model_cpu_offload_seq = "text_encoder->audio_encoder->transformer->vae"
    # Optional: ranks other than the host in a multi-rank run hold only the transformer.
    _optional_components = ["vae", "text_encoder", "tokenizer", "audio_encoder", "feature_extractor"]
    _callback_tensor_inputs = CALLBACK_TENSOR_INPUTS

    def __init__(self, transformer: TalkVerseTransformer3DModel, vae, scheduler, text_encoder=None, tokenizer=None, audio_encoder=None,
                 feature_extractor=None, first_clip_motion: str = "drop", model_family: str | None = None):
        super().__init__()
        self.register_modules(transformer=transformer, vae=vae, scheduler=scheduler, text_encoder=text_encoder,
                              tokenizer=tokenizer, audio_encoder=audio_encoder, feature_extractor=feature_extractor)
        # The model's default for the first clip's motion tokens (model_index.json): "drop" (the reference, s2v-5B),
        # "zeros" (19 zero latents, as in training) or "reference" (the motion history is the still portrait;
        # docs/demo.md).
        if first_clip_motion not in FIRST_CLIP_MOTION:
            raise ValueError(f"first_clip_motion must be one of {FIRST_CLIP_MOTION}, got {first_clip_motion!r}")
        # "s2v-5B" or "s2v-14B" (talkverse.pipelines.family): fps, audio rate, clip-0 decode, sampling defaults.
        # None: the transformer's (a pose branch means S2V-14B).
        fam = family(model_family) if model_family is not None else family_of(transformer.config)
        self.register_to_config(first_clip_motion=first_clip_motion, model_family=fam.name)
        self.offload_encoders = False  # move T5 / wav2vec2 to the device only while they run
        self.t5_cpu = False  # run umT5 on the CPU (--t5_cpu)
        self.parallel = SingleProcess()  # enable_parallel() installs a multi-rank layout
        self._codecs: dict[str, tuple] = {}
        self._current_clip = self._num_clips = 0
        self.clip_seconds: list[dict] = []

    @property
    def current_clip(self) -> int:
        """The clip being generated (for ``callback_on_step_end``)."""
        return self._current_clip

    @property
    def num_clips(self) -> int:
        """The clip count of the running call."""
        return self._num_clips

    # ``clip_seconds``: per decoded clip of the last call, wall seconds of {"motion" (encoding the motion frames and
    # drawing the noise), "denoise", "decode"}; talkverse-generate -v prints them.

    @property
    def family(self) -> ModelFamily:
        return family(self.config.model_family)

    def geometry(self, frames_per_clip: int) -> ClipGeometry:
        return ClipGeometry.from_configs(frames_per_clip, self.transformer.config,
                                         None if self.vae is None else self.vae.config, fps=self.family.fps)

    def plan_video(self, num_samples: int | None = None, *, audio_columns: int | None = None,
                   frames_per_clip: int = 120, num_clips: int | None = None, sync_shift_frames: int | None = None,
                   start_from_ref: bool = False) -> ClipPlan:
        """The clips and frames of a video for ``num_samples`` of 16 kHz audio, or for conditioning features with
        ``audio_columns`` columns (arguments as in ``__call__``)."""
        geometry = self.geometry(frames_per_clip)
        if audio_columns is not None:
            if num_clips is not None:
                audio_columns = min(audio_columns, num_clips * geometry.frames_per_clip)
            return plan_from_features(audio_columns, geometry, start_from_ref)
        shift = video_lead_frames(geometry, start_from_ref) if sync_shift_frames is None else sync_shift_frames
        return plan_clips(num_samples, geometry, num_clips, shift, start_from_ref)

    def enable_parallel(self, state) -> "TalkVersePipeline":
        """Generate every video on the ranks of ``state`` (a ``talkverse.parallel.state.ParallelState``): Ulysses
        sequence parallelism over ``state.sp_group``, with ``state.cfg_parallel`` one CFG branch per rank group, and
        with ``state.weight_mesh`` the DiT's weights sharded over every rank (FSDP2). The one place parallelism is
        installed; call it on every rank (the host holds the encoders and the VAE)."""
        from ..parallel.fsdp import apply_weight_sharding
        from ..parallel.ulysses import apply_sequence_parallel

        self.parallel = state
        if state.sp_size > 1:
            apply_sequence_parallel(self.transformer, state.sp_group)
        if getattr(state, "weight_mesh", None) is not None:
            apply_weight_sharding(self.transformer, state.weight_mesh)
        return self

    # ------------------------------------------------------------------ sampling
    def set_timesteps(self, num_inference_steps: int, dub_strength: float | None, device: torch.device):
        """Set the scheduler's table for one clip (resetting its state): (timesteps, the dubbing schedule or None)."""
        if dub_strength is None:
            return set_schedule(self.scheduler, num_inference_steps, device=device), None
        dub = dub_schedule(self.scheduler, num_inference_steps, dub_strength, device=device)
        return dub.timesteps, dub

    @torch.no_grad()
    def denoise_clip(self, latents: torch.Tensor, cond: VideoConditioning, clip: int, motion_latents, timesteps,
                     guidance_scale: float, cfg_batch: bool = True, callback_on_step_end=None,
                     callback_on_step_end_tensor_inputs=("latents",), progress: bool = True,
                     blend=None, cfg_truncation: float = 1.0) -> torch.Tensor:
        """Sample clip ``clip`` from ``latents`` [1, 48, F_lat, h, w] (noise, or the dubbing init) over ``timesteps``
        (the scheduler already set by :meth:`set_timesteps`). Returns fp32 latents. CFG: talkverse.pipelines.guidance.
        ``blend(x, sigma)``: masked dubbing (talkverse.pipelines.inpainting), applied after every step.
        ``cfg_truncation``: the unconditional pass runs in the first ``cfg_truncation`` fraction of the steps only.
        With a step cache on the transformer (talkverse.pipelines.caching) each CFG branch runs as its own pass with
        its own cache state, and every state is reset before and after the clip.
        """
        tr = self.transformer
        dev, dtype = self.exec_device, next(tr.parameters()).dtype
        audio = cond.clip_audio(clip).to(dev, dtype)
        ctx = pad_context([cond.context], tr.config.text_len).to(dev, dtype)
        ctx_null = pad_context([cond.context_null], tr.config.text_len).to(dev, dtype)
        ref = cond.ref_latents.to(dev, dtype)
        motion = None if motion_latents is None else motion_latents.to(dev, dtype)
        pose = None if cond.clip_pose(clip) is None else cond.clip_pose(clip).to(dev, dtype)
        uncond = None
        if guidance_scale > 1.0:  # audio tokens are constant within a clip: encode both branches once
            emb = tr.encode_audio(torch.cat([audio, torch.zeros_like(audio)]))
            branch = {"encoder_hidden_states": ctx, "audio_embeds": tuple(e[:1] for e in emb)}
            uncond = {"encoder_hidden_states": ctx_null, "audio_embeds": tuple(e[1:] for e in emb)}
        else:
            branch = {"encoder_hidden_states": ctx, "audio_embeds": tr.encode_audio(audio)}
        cfg_batch = cfg_batch and not cache_enabled(tr)  # a cache keeps one state per branch: one pass per branch
        step = 0

        def forward(name: str, **kw) -> torch.Tensor:
            with cache_scope(tr, name, step, len(timesteps), kw["timestep"]):
                return tr(**kw).sample

        x = latents.to(dev, torch.float32)
        bar = self.progress_bar(total=len(timesteps)) if progress else contextlib.nullcontext()
        reset_step_cache(tr)
        with bar as pbar, contextlib.ExitStack() as done:
            done.callback(reset_step_cache, tr)
            for i, t in enumerate(timesteps):
                step = i
                shared = {"hidden_states": x.to(dtype), "timestep": t.reshape(1).to(dev, torch.float32),
                          "ref_latents": ref, "motion_latents": motion}
                if pose is not None:
                    shared["cond_states"] = pose
                u = uncond if uses_uncond(i, len(timesteps), guidance_scale, cfg_truncation) else None
                v_c, v_u = branch_velocities(forward, shared, branch, u, cfg_batch, self.parallel)
                v = guide(v_c, v_u, guidance_scale)
                x = self.scheduler.step(v, t, x, return_dict=False)[0]
                if blend is not None:
                    x = blend(x, float(self.scheduler.sigmas[self.scheduler.step_index]))
                if callback_on_step_end is not None:
                    named = {"latents": x, "noise_pred": v, "noise_pred_cond": v_c, "noise_pred_uncond": v_u,
                             "motion_latents": motion_latents, "ref_latents": cond.ref_latents,
                             "prompt_embeds": cond.context, "negative_prompt_embeds": cond.context_null}
                    out = callback_on_step_end(self, i, t, {k: named[k] for k in callback_on_step_end_tensor_inputs})
                    x = (out or {}).get("latents", x)
                if pbar is not None:
                    pbar.update()
        return x

    @torch.no_grad()
    def decode_clip(self, latents: torch.Tensor, motion_latents: torch.Tensor | None, keep: int) -> torch.Tensor:
        """Decode a clip with a fresh causal cache: its kept frames [3, keep, H, W] (fp32, [-1, 1]).

        First clip: its own latents (F/4 -> F-3 frames), or for S2V-14B concat(ref latent, F/4) passed as
        ``motion_latents`` (1 + F frames, the last F-3 kept). Continuation: concat(19 motion, F/4 new) -> 73 + F frames,
        of which the last ``keep`` (= F) are kept; the earlier ones only warm the cache (streamed, never stored)."""
        z = latents if motion_latents is None else torch.cat([motion_latents.to(latents), latents], dim=2)
        skip, seen, kept = 1 + 4 * (z.shape[2] - 1) - keep, 0, []
        for out in self.vae_codec.streaming_decoder().iter_frames(z.to(self.vae.device)):
            n = out.shape[2]
            lo = max(0, skip - seen)
            if lo < n:
                kept.append(out[0, :, lo:].float())
            seen += n
        return torch.cat(kept, dim=1)

    # ------------------------------------------------------------------ the clip loop
    @torch.no_grad()
    def iter_clips(self, image=None, audio=None, prompt: str | None = None, negative_prompt: str | None = None, *,
                   height: int | None = None, width: int | None = None, size_bucket: str = "fasttalk-720",
                   image_fit: str = "cover", frames_per_clip: int = 120, num_clips: int | None = None,
                   num_inference_steps: int = 50, guidance_scale: float = 6.5, generator=None, latents=None,
                   prompt_embeds: torch.Tensor | None = None, negative_prompt_embeds: torch.Tensor | None = None,
                   audio_features: torch.Tensor | None = None, sync_shift_frames: int | None = None,
                   start_from_ref: bool = False, first_clip_motion: str | None = None, cfg_batch: bool = True,
                   cfg_truncation: float = 1.0, dub_video: Iterable | None = None, dub_strength: float = 0.95,
                   dub_ref: str = "first", dub_mask=None, pose_video: Iterable | None = None,
                   callback_on_step_end=None, callback_on_step_end_tensor_inputs=("latents",),
                   progress: bool = True) -> Iterator[torch.Tensor]:
        """The iterator form of ``__call__`` (same arguments): yields each clip's output frames [3, n, H, W]
        (fp32 in [-1, 1]) as soon as the clip is decoded, trimmed to the audio. On ranks other than the host it
        yields nothing (they run the DiT only)."""
        host = self.parallel.is_host
        cond = ref_px = dub = None
        if host:
            check_call(self, dict(locals()))
            frames_in = None
            if dub_video is not None:
                frames_in = iter(dub_video)
                first = next(frames_in, None)
                if first is None:
                    raise ValueError("dub_video: the video has no frames")
                image = first if image is None else image
                frames_in = itertools.chain([first], frames_in)
            cond, ref_px = self.prepare_conditioning(
                image, audio, prompt, negative_prompt, height, width, size_bucket, image_fit, frames_per_clip, num_clips,
                sync_shift_frames, start_from_ref, prompt_embeds, negative_prompt_embeds, audio_features, pose_video)
            settings = SamplingSettings(num_inference_steps, guidance_scale, cfg_batch,
                                        first_clip_motion or self.config.first_clip_motion, start_from_ref,
                                        dub_strength if frames_in is not None else None,
                                        frames_in is not None and dub_mask is not None, cfg_truncation)
            check_motion_size(cond.height, cond.width, cond.plan.num_clips > 1 or start_from_ref
                              or settings.first_clip_motion != "drop", self.vae.config.scale_factor_spatial)
            if frames_in is not None:
                dub = DubSource(frames_in, cond.height, cond.width, None, dub_ref, image_fit)
                dub.masks = check_dub_mask(dub_mask, cond.height, cond.width, cond.plan.num_clips)
                if dub_ref == "first":
                    cond.ref_latents = self.encode_video(dub.frame_tensor(0))
        # Every rank runs the DiT on the host's encodings and settings; the other ranks' arguments are not used.
        cond, settings = self.parallel.share((cond, settings) if host else None)
        yield from self._clip_loop(cond, settings, ref_px, dub, generator, latents, callback_on_step_end,
                                   callback_on_step_end_tensor_inputs, progress)

    def _clip_loop(self, cond: VideoConditioning, settings: SamplingSettings, ref_px, dub: DubSource | None,
                   generator, latents, callback, callback_inputs, progress) -> Iterator[torch.Tensor]:
        """The motion context is a 73-frame float pixel buffer (zeros = mid-grey at first; 73 copies of the portrait with
        first_clip_motion "reference"), re-encoded into 19 latents before every continuation clip: never an mp4 round
        trip. The host draws each clip's noise (from its
        generator) and shares it, so every rank starts from the same latents."""
        par, host, plan, st = self.parallel, self.parallel.is_host, cond.plan, settings
        geo, dev = plan.geometry, self.exec_device
        shape = (1, self.transformer.config.in_channels, geo.latent_frames, *cond.ref_latents.shape[-2:])
        motion_shape = (*shape[:2], geo.motion_latents, *shape[3:])
        buffer = None
        if host:  # the host alone decodes and keeps the motion buffer
            buffer = torch.zeros(1, 3, geo.motion_frames, cond.height, cond.width, device=self.vae.device)
            if st.start_from_ref:
                buffer[:, :, -START_FROM_REF_COPIES:] = ref_px.to(buffer)[:, :, :1]
            elif st.first_clip_motion == "reference":
                buffer[:] = ref_px.to(buffer)[:, :, :1]
        self._num_clips, self.clip_seconds = plan.num_clips, []
        for r in tqdm(range(plan.num_clips), desc="clips", unit="clip", disable=not (progress and host)):
            self._current_clip = r
            continuation = r > 0 or st.start_from_ref
            t0 = time.perf_counter()
            if continuation or st.first_clip_motion == "reference":
                motion = par.share_tensor(self.encode_video(buffer) if host else None, motion_shape)
            else:
                motion = torch.zeros(motion_shape, device=dev) if st.first_clip_motion == "zeros" else None
            timesteps, dub_sched = self.set_timesteps(st.num_inference_steps, st.dub_strength, dev)
            x = None
            if host:
                g = clip_generator(generator, r)
                x = latents[r].reshape(shape).to(dev) if latents is not None else clip_noise(g, shape, dev)
                eps = x
                if dub is not None:
                    dub.schedule = dub_sched
                    x = dub.init_latents(self.encode_video, r, buffer if continuation else None, geo, x,
                                         st.start_from_ref)
                    if dub.ref_mode == "segment-random":
                        k = dub.reference_index(r, None if g is None else g.initial_seed(), geo, st.start_from_ref)
                        cond.ref_latents = self.encode_video(dub.frame_tensor(k))
            blend = None
            if st.masked:  # RePaint: every rank blends with the host's source latents, noise and mask
                eps = par.share_tensor(eps if host else None, shape)
                x0 = par.share_tensor(dub.x0 if host else None, shape)
                m = par.share_tensor(latent_mask(dub.masks[r], shape[-2:]).to(dev) if host else None,
                                     (1, 1, 1, *shape[-2:]))
                blend = RepaintBlend(x0, eps, m)
            x = par.share_tensor(x, shape)
            if st.dub_strength is not None:
                cond.ref_latents = par.share_tensor(cond.ref_latents if host else None, tuple(cond.ref_latents.shape))
            t1 = time.perf_counter()
            out = self.denoise_clip(x, cond, r, motion, timesteps, st.guidance_scale, st.cfg_batch, callback,
                                    callback_inputs, progress=progress and host, blend=blend,
                                    cfg_truncation=st.cfg_truncation)
            t2 = time.perf_counter()
            if not host:
                continue
            start, end = plan.output_range(r)
            prefix = motion if continuation else (cond.ref_latents if self.family.first_clip_decode_ref else None)
            kept = self.decode_clip(out, prefix, end - start)  # [3, keep, H, W]
            # wall seconds per stage (no device sync: on CUDA the decode's copy to the host absorbs the queue)
            self.clip_seconds.append({"motion": t1 - t0, "denoise": t2 - t1, "decode": time.perf_counter() - t2})
            buffer = torch.cat([buffer, kept[None].to(buffer)], dim=2)[:, :, -geo.motion_frames:]
            take = min(kept.shape[1], plan.output_frames - start)
            if take > 0:
                yield kept[:, :take]

    # ------------------------------------------------------------------ the user-facing call
    def __call__(self, image=None, audio=None, prompt: str | None = None, negative_prompt: str | None = None, *,
                 output_type: str = "np", return_dict: bool = True, **kwargs):
        r"""Generate a talking video for the whole ``audio``.

        Args:
            image: the reference portrait: a PIL image, a uint8 HxWx3 array or a float [3, H, W] tensor in [0, 1].
                None with ``dub_video``: the source's first frame.
            audio: the speech, a mono float32 waveform at 16 kHz (numpy or 1-D tensor). The video covers all of it.
            prompt: the text prompt (default "A person is speaking to the camera.").
            negative_prompt: the CFG negative prompt (default: the s2v-5B config's Chinese negative prompt).
            height, width: the output size in pixels (multiples of 32); default: the ``size_bucket`` table entry
                nearest the image's aspect ratio.
            size_bucket: "fasttalk-720" or "fasttalk-480".
            image_fit: "cover" (resize to cover, centre crop; as in training) or "pad-compat" (the reference's
                letterboxing).
            frames_per_clip: frames per clip, a multiple of 4 in [4, 160] (120 for the 5B).
            num_clips: cap on the clip count (default: enough clips for the whole audio).
            num_inference_steps: denoising steps per clip (UniPC, the scheduler's flow shift).
            guidance_scale: CFG scale for text and audio together; <= 1 runs the conditional pass only.
            generator: a ``torch.Generator`` (clip r uses its initial seed + r) or a list with one per clip.
            latents: pre-generated initial noise, one [1, 48, F/4, h, w] tensor per clip.
            prompt_embeds, negative_prompt_embeds: trimmed umT5 outputs [L, 4096] instead of the prompts.
            audio_features: conditioning features [1, 25, 1024, R F] (``encode_audio``) instead of ``audio``; the
                video then has every produced frame.
            sync_shift_frames: silence (in 25 fps frames) prepended to the conditioning audio to cancel the video's
                3-frame lead; None = 3 (0 with ``start_from_ref``); 0 = the reference.
            start_from_ref: clip 0 continues from the reference image (motion = 6 reference copies).
            first_clip_motion: "drop" (the reference), "zeros" (19 zero latents, as in training) or "reference"
                (the motion history before the video is the still portrait, encoded); None: the model's
                ``config.first_clip_motion``.
            cfg_batch: run both CFG branches as one batch of 2 (else two passes, less memory). Ignored while a step
                cache is enabled (``pipe.transformer.enable_cache``; talkverse.pipelines.caching): each branch then
                runs as its own pass with its own cache state.
            cfg_truncation: CFG truncation: the fraction of each clip's steps, from the first, that run the
                unconditional pass (1.0, the default: every step; 0.5: the first half, then the conditional
                velocity alone; 0: none). Saves (1 - cfg_truncation) of the unconditional DiT passes.
            dub_video: dubbing: the source frames at 25 fps (an iterable of HxWx3 uint8 arrays or PIL images,
                consumed lazily) to regenerate talking ``audio``.
            dub_strength: dubbing noise strength in (0, 1].
            dub_ref: dubbing reference: "first" source frame, or "segment-random" (a seeded frame per clip).
            dub_mask: masked dubbing: the region to regenerate, float [H, W] at the output size (1 = regenerate),
                or a list with one per clip; after every step the latents outside it are the source's noised to
                the current sigma (RePaint). None: the whole frame.
            pose_video: S2V-14B only: the pose (DWPose skeleton) frames at the model's 16 fps from the video's start
                (HxWx3 uint8 arrays or PIL images, consumed lazily); None = no pose (zero pose latents).
            output_type: "np", "pt" or "pil" (see :class:`TalkVersePipelineOutput`).
            return_dict: return a :class:`TalkVersePipelineOutput` (else a tuple).
            callback_on_step_end: ``fn(pipe, step, timestep, callback_kwargs) -> dict`` after every denoising step of
                every clip (``pipe.current_clip`` / ``pipe.num_clips`` say which); returning "latents" replaces them.
            callback_on_step_end_tensor_inputs: the tensors passed in ``callback_kwargs``, from
                ``pipe._callback_tensor_inputs``.
            progress: show the clip and step progress bars.
        """
        check_output_type(output_type)
        chunks = list(self.iter_clips(image, audio, prompt, negative_prompt, **kwargs))
        if not self.parallel.is_host:
            return None
        frames = postprocess_video(torch.cat(chunks, dim=1), output_type)
        return TalkVersePipelineOutput(frames=frames) if return_dict else (frames,)

    __call__.__signature__ = signature_of_call(iter_clips)
