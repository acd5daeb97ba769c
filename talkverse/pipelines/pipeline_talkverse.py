"""TalkVersePipeline: portrait + speech + prompt -> lip-synced mp4, clip by clip (inference.md §3-§12).

Components (diffusers conventions, passed in, never built inside): ``transformer`` (TalkVerseTransformer3DModel),
``vae`` (diffusers AutoencoderKLWan), ``scheduler`` (UniPCMultistepScheduler; rebuilt per call with the explicit-sigma
recipe, its stored config is never trusted), and the optional encoders ``text_encoder`` + ``tokenizer`` (umT5) and
``audio_encoder`` + ``feature_extractor`` (wav2vec2). Without encoders, pass ``prompt_embeds`` / ``audio_features``.

Shapes at the real size (704x1280, F = 120 frames per clip): latents [1, 48, 30, 44, 80], motion latents
[1, 48, 19, 44, 80], ref latent [1, 48, 1, 44, 80], audio features [1, 25, 1024, R F], one clip's kept frames
[3, 120, 704, 1280] in [-1, 1].
"""

from __future__ import annotations

import contextlib
import gc
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput
from tqdm.auto import tqdm

from ..audio.bucketing import bucket_columns
from ..models.text_encoder import TextEncoder, pad_context
from ..models.vae import TalkVerseVAE
from .scheduling import dub_schedule, make_scheduler, set_schedule
from .timeline import (MOTION_FRAMES, MOTION_LATENTS, SAMPLES_PER_FRAME, ClipPlan, audio_frames, check_infer_frames,
                       clip_output_range, plan_clips, video_lead_frames)

DEFAULT_PROMPT = "A person is speaking to the camera."
# The s2v-5B config's negative prompt, verbatim (inference.md §5).
DEFAULT_NEGATIVE_PROMPT = (
    "画面模糊，最差质量，画面模糊，细节模糊不清，情绪激动剧烈，手快速抖动，字幕，丑陋的，残缺的，多余的手指，画得不好的手部，"
    "画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)
START_FROM_REF_COPIES = 6  # start_from_ref motion pixels: 67 zero frames + 6 copies of the reference image


@dataclass
class TalkVersePipelineOutput(BaseOutput):
    """``video_path`` when written to a file; ``frames`` ([T, H, W, 3] uint8) when ``output_type="np"``."""

    video_path: Path | None
    frames: np.ndarray | None
    seed: int
    plan: ClipPlan | None
    size: tuple[int, int]
    timings: dict = field(default_factory=dict)


@dataclass
class ClipInputs:
    """Everything the clip loop needs that is computed once per video."""

    ref_latents: torch.Tensor  # [1, 48, 1, h, w]
    context: torch.Tensor  # [L, text_dim] (trimmed prompt)
    context_null: torch.Tensor  # [L', text_dim] (trimmed negative prompt)
    audio: torch.Tensor  # [1, 25, C_a, R F] conditioning features (columns of clip r: [rF, (r+1)F))
    num_clips: int
    frames_per_clip: int
    height: int
    width: int


# The frame packer's coarsest kernel is 8x8 latent cells (16 px each): a smaller video cannot carry motion tokens.
MIN_MOTION_SIZE = 128


def _check_motion_size(height: int, width: int, uses_motion: bool) -> None:
    if uses_motion and min(height, width) < MIN_MOTION_SIZE:
        raise ValueError(f"{height}x{width} is too small for motion tokens (more than one clip, or first_clip_motion "
                         f"'zeros'): the frame packer's 4x kernel needs at least {MIN_MOTION_SIZE}x{MIN_MOTION_SIZE}")


def resolve_bucket(height: int, width: int, bucket: str) -> tuple[int, int]:
    """A bucket table name (nearest aspect ratio) or a fixed ``HxW`` (multiples of 32; for small models)."""
    import re

    from ..video.buckets import BUCKETS, choose_bucket

    if bucket in BUCKETS:
        return choose_bucket(height, width, bucket)
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", bucket)
    if m is None or int(m.group(1)) % 32 or int(m.group(2)) % 32 or not int(m.group(1)) or not int(m.group(2)):
        raise ValueError(f"size bucket {bucket!r}: use {', '.join(BUCKETS)} or a fixed HxW with multiples of 32")
    return int(m.group(1)), int(m.group(2))


class _RemoteDub:
    """What a non-host rank needs to know about dubbing (the host computes and broadcasts the latents)."""

    def __init__(self, strength: float, ref_mode: str):
        self.strength, self.ref_mode = strength, ref_mode


def _check_first_clip_motion(value: str) -> None:
    if value not in ("drop", "zeros"):
        raise ValueError(f"first_clip_motion must be 'drop' or 'zeros', got {value!r}")


class TalkVersePipeline(DiffusionPipeline):
    model_cpu_offload_seq = "text_encoder->audio_encoder->transformer->vae"
    # Optional: ranks other than the host in a multi-rank run hold only the transformer.
    _optional_components = ["vae", "text_encoder", "tokenizer", "audio_encoder", "feature_extractor"]

    def __init__(self, transformer, vae, scheduler, text_encoder=None, tokenizer=None, audio_encoder=None,
                 feature_extractor=None, first_clip_motion: str = "drop"):
        super().__init__()
        self.register_modules(transformer=transformer, vae=vae, scheduler=scheduler, text_encoder=text_encoder,
                              tokenizer=tokenizer, audio_encoder=audio_encoder, feature_extractor=feature_extractor)
        # The model's default for the first clip's motion tokens (model_index.json): "drop" (the reference, s2v-5B) or
        # "zeros" (19 zero latents, as in training; the demo model, whose first clip barely moves with "drop").
        _check_first_clip_motion(first_clip_motion)
        self.register_to_config(first_clip_motion=first_clip_motion)
        self.offload_encoders = False  # move T5 / wav2vec2 to the device only while they run
        self.t5_cpu = False  # run umT5 on the CPU (--t5_cpu)

    # ------------------------------------------------------------------ component wrappers
    @property
    def vae_wrapper(self) -> TalkVerseVAE:
        if getattr(self, "_vae_wrapper", None) is None or self._vae_wrapper.vae is not self.vae:
            self._vae_wrapper = TalkVerseVAE(self.vae)
        return self._vae_wrapper

    @property
    def exec_device(self) -> torch.device:
        from ..perf.optimize import onload_device

        return onload_device(self.transformer)  # the group-offload onload device when the DiT is offloaded

    def enable_optimizations(self, profile: str | None = None, device: torch.device | str | None = None, **options):
        """Apply a performance profile ("default", "fast", "low_vram") and/or single options (``dtype``,
        ``attention_backend``, ``compile``, ``fp8``, ``group_offload``, ``offload_encoders``, ``t5_cpu``); see
        :mod:`talkverse.perf.optimize`."""
        from ..perf.optimize import apply_optimizations, resolve_profile

        return apply_optimizations(self, resolve_profile(profile, **options), device)

    @contextlib.contextmanager
    def _on(self, module: torch.nn.Module | None, device: torch.device):
        """Run ``module`` on ``device``; with ``offload_encoders`` move it back to the CPU afterwards."""
        if module is None:
            yield
            return
        prev = next(module.parameters()).device
        module.to(device)
        try:
            yield
        finally:
            if self.offload_encoders and prev.type == "cpu" and device.type != "cpu":
                module.to("cpu")
                if device.type == "cuda":
                    torch.cuda.empty_cache()

    def free_text_encoder(self) -> None:
        """Drop umT5 after the prompts are encoded (11.4 GB in bf16 at full size)."""
        self.text_encoder = None
        self.register_to_config(text_encoder=(None, None))
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # ------------------------------------------------------------------ once-per-video encodings
    @torch.no_grad()
    def encode_prompt(self, prompt: str, negative_prompt: str | None = None,
                      device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(context [L, D], context_null [L', D]) in fp32, each trimmed to its real token length."""
        if self.text_encoder is None or self.tokenizer is None:
            raise ValueError("this pipeline has no text encoder/tokenizer: pass prompt_embeds and "
                             "negative_prompt_embeds")
        neg = DEFAULT_NEGATIVE_PROMPT if negative_prompt is None else negative_prompt
        run_on = torch.device("cpu") if self.t5_cpu else (device or self.exec_device)
        text_len = self.transformer.config.text_len
        enc = TextEncoder(self.text_encoder, self.tokenizer, text_len=max(text_len, 1))
        with self._on(self.text_encoder, run_on):
            ctx, ctx_null = enc.encode([prompt, neg], output_device="cpu")
        return ctx.float(), ctx_null.float()

    @torch.no_grad()
    def encode_audio_waveform(self, waveform: np.ndarray, plan: ClipPlan,
                              device: torch.device | None = None) -> torch.Tensor:
        """16 kHz mono audio -> conditioning features [1, 25, C, R F] (fp32, CPU).

        ``plan.sync_shift_frames`` * 640 samples of silence are prepended and silence is appended up to R F frames
        (inference.md §4, §9), so every clip sees real wav2vec2 features of silence rather than zero vectors."""
        if self.audio_encoder is None or self.feature_extractor is None:
            raise ValueError("this pipeline has no audio encoder: pass audio_features")
        from ..audio.wav2vec import Wav2Vec2Features

        shift = plan.sync_shift_frames * SAMPLES_PER_FRAME
        cond = np.zeros(plan.conditioning_samples, dtype=np.float32)
        n = min(len(waveform), plan.conditioning_samples - shift)
        cond[shift:shift + n] = waveform[:n]
        with self._on(self.audio_encoder, device or self.exec_device):
            fx = Wav2Vec2Features.__new__(Wav2Vec2Features)  # wrap without moving/casting the shared module
            fx.model, fx.feature_extractor, fx.device = self.audio_encoder, self.feature_extractor, \
                next(self.audio_encoder.parameters()).device
            feats = fx.features_25fps(cond)  # [25, A, C], A = R F
        return bucket_columns(feats, plan.audio_columns)

    @torch.no_grad()
    def encode_video(self, frames: torch.Tensor) -> torch.Tensor:
        """[1, 3, T, H, W] in [-1, 1] -> normalised latents [1, 48, 1 + (T-1)//4, H/16, W/16] fp32."""
        return self.vae_wrapper.encode(frames.to(self.vae.device, torch.float32))

    # ------------------------------------------------------------------ sampling
    def _noise(self, clip: int, seed: int, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        gen = torch.Generator(device=device).manual_seed(seed + clip)
        return torch.randn(shape, generator=gen, device=device, dtype=torch.float32)

    @torch.no_grad()
    def denoise_clip(self, latents: torch.Tensor, inputs: ClipInputs, clip: int, motion_latents: torch.Tensor | None,
                     num_inference_steps: int, shift: float, guidance_scale: float, cfg_batch: bool = True,
                     dub_strength: float | None = None, solver: str = "unipc", step_callback: Callable[[int, dict], None] | None = None,
                     progress: bool = True) -> torch.Tensor:
        """Sample one clip from ``latents`` [1, 48, F_lat, h, w] (noise, or the dubbing init). Returns fp32 latents.

        CFG: cond = (prompt, audio), uncond = (negative prompt, zero audio through the encoder), the same ref/motion/t;
        v = v_u + g (v_c - v_u); only the cond pass when g <= 1. Both branches run as one batch of 2 (``cfg_batch``)."""
        tr = self.transformer
        dev, dtype = self.exec_device, next(tr.parameters()).dtype
        f = inputs.frames_per_clip
        audio = inputs.audio[..., clip * f:(clip + 1) * f].to(dev, dtype)
        ctx = pad_context([inputs.context], tr.config.text_len).to(dev, dtype)
        ctx_null = pad_context([inputs.context_null], tr.config.text_len).to(dev, dtype)
        ref = inputs.ref_latents.to(dev, dtype)
        motion = None if motion_latents is None else motion_latents.to(dev, dtype)
        use_cfg = guidance_scale > 1.0
        # Audio tokens are constant within a clip: encode both branches once.
        if use_cfg:
            emb = tr.encode_audio(torch.cat([audio, torch.zeros_like(audio)]))
            emb_c = tuple(e[:1] for e in emb)
            emb_u = tuple(e[1:] for e in emb)
        else:
            emb_c = tr.encode_audio(audio)

        scheduler = make_scheduler(shift, solver)
        if dub_strength is None:
            timesteps = set_schedule(scheduler, num_inference_steps, device=dev)
        else:  # truncated table, started at its first kept index (set_begin_index inside)
            timesteps = dub_schedule(scheduler, num_inference_steps, dub_strength, device=dev).timesteps
        x = latents.to(dev, torch.float32)
        bar = self.progress_bar(total=len(timesteps)) if progress else contextlib.nullcontext()
        with bar as pbar:
            for i, t in enumerate(timesteps):
                xin = x.to(dtype)
                tt = t.reshape(1).to(dev, torch.float32)
                v_c, v_u = self._velocities(xin, tt, ctx, ctx_null, ref, motion, emb_c, emb_u if use_cfg else None,
                                            cfg_batch)
                v = v_u + guidance_scale * (v_c - v_u) if use_cfg else v_c
                if step_callback is not None:
                    step_callback(i, {"x": x, "t": t, "v_cond": v_c, "v_uncond": v_u, "v": v})
                x = scheduler.step(v, t, x, return_dict=False)[0]
                if pbar is not None:
                    pbar.update()
        return x

    def _forward(self, **kw) -> torch.Tensor:
        """One DiT forward: plain, or Ulysses SP over this rank's SP group."""
        par = getattr(self, "parallel", None)
        if par is not None and par.sp_size > 1:
            from ..parallel.ulysses import sp_forward

            return sp_forward(self.transformer, par.sp_group, **kw)
        return self.transformer(**kw).sample

    def _velocities(self, x, t, ctx, ctx_null, ref, motion, emb_c, emb_u, cfg_batch: bool):
        """(v_cond, v_uncond or None). CFG as one batch of 2, two passes, or (cfg_parallel) one branch per rank
        group followed by an all_gather of the two velocities."""
        par = getattr(self, "parallel", None)
        one = lambda c, e: self._forward(hidden_states=x, timestep=t, encoder_hidden_states=c,  # noqa: E731
                                         ref_latents=ref, motion_latents=motion, audio_embeds=e)
        if emb_u is None:
            return one(ctx, emb_c), None
        if par is not None and par.cfg_parallel:
            import torch.distributed as dist

            mine = one(ctx, emb_c) if par.cfg_rank == 0 else one(ctx_null, emb_u)
            both = [torch.empty_like(mine) for _ in range(2)]
            dist.all_gather(both, mine.contiguous(), group=par.cfg_group)
            return both[0], both[1]
        if cfg_batch:
            two = lambda z: z.expand(2, *z.shape[1:])  # noqa: E731
            v = self._forward(hidden_states=two(x), timestep=t.expand(2), encoder_hidden_states=torch.cat([ctx, ctx_null]),
                              ref_latents=two(ref), motion_latents=None if motion is None else two(motion),
                              audio_embeds=tuple(torch.cat([c, u]) for c, u in zip(emb_c, emb_u)))
            return v[:1], v[1:]
        return one(ctx, emb_c), one(ctx_null, emb_u)

    @torch.no_grad()
    def decode_clip(self, latents: torch.Tensor, motion_latents: torch.Tensor | None, keep: int) -> Iterator[torch.Tensor]:
        """Decode a clip with a fresh causal cache, streaming: yields kept frames [3, n, H, W] (fp32, [-1, 1]) in order.

        First clip: only its own latents (F/4 -> F-3 frames). Continuation: concat(19 motion, F/4 new) -> 193 frames,
        of which the last ``keep`` (= F) are kept; the earlier ones only warm the cache."""
        z = latents if motion_latents is None else torch.cat([motion_latents.to(latents), latents], dim=2)
        total = 1 + 4 * (z.shape[2] - 1)
        skip = total - keep
        seen = 0
        dec = self.vae_wrapper.streaming_decoder()
        for out in dec.iter_frames(z.to(self.vae.device)):
            n = out.shape[2]
            lo = max(0, skip - seen)
            if lo < n:
                yield out[0, :, lo:].float()
            seen += n

    # ------------------------------------------------------------------ the clip loop
    def iter_clips(self, inputs: ClipInputs, seed: int, num_inference_steps: int = 50, shift: float = 5.0,
                   guidance_scale: float = 6.5, start_from_ref: bool = False, first_clip_motion: str | None = None,
                   cfg_batch: bool = True, noise: list[torch.Tensor] | None = None, dub=None,
                   trace: Callable[[str, int, dict], None] | None = None, progress: bool = True,
                   solver: str = "unipc", step_callback: Callable[[int, int, int], None] | None = None
                   ) -> Iterator[torch.Tensor]:
        """Run the clip loop; yields each clip's kept frames [3, n, H, W] as soon as it is decoded.

        The motion context is a 73-frame float pixel buffer (zeros = mid-grey at first), re-encoded into 19 latents
        before every continuation clip: never an mp4 round trip. ``noise`` overrides the seeded noise per clip
        (parity tests); ``trace(name, clip, tensors)`` observes intermediate tensors. ``first_clip_motion`` None: the
        pipeline's config value."""
        first_clip_motion = first_clip_motion or self.config.first_clip_motion
        _check_first_clip_motion(first_clip_motion)
        _check_motion_size(inputs.height, inputs.width, inputs.num_clips > 1 or start_from_ref
                           or first_clip_motion == "zeros")
        f, h, w = inputs.frames_per_clip, inputs.height // 16, inputs.width // 16
        f_lat = f // 4
        dev = self.exec_device
        c = self.transformer.config.in_channels
        par = getattr(self, "parallel", None)
        host = par is None or par.is_host  # only the host holds the VAE, decodes and keeps the motion buffer
        buffer = None
        if host:
            buffer = torch.zeros(1, 3, MOTION_FRAMES, inputs.height, inputs.width, device=self.vae.device)
            if start_from_ref:
                buffer[:, :, -START_FROM_REF_COPIES:] = self._ref_pixels.to(buffer)[:, :, :1]
        clips = range(inputs.num_clips)
        bar = tqdm(clips, desc="clips", unit="clip", disable=not (progress and host), leave=True)
        for r in bar:
            continuation = r > 0 or start_from_ref
            if continuation:
                motion = self.encode_video(buffer) if host else None  # [1, 48, 19, h, w]
                if par is not None:
                    motion = par.broadcast_tensor(motion, (1, c, MOTION_LATENTS, h, w))
                assert motion.shape[2] == MOTION_LATENTS, motion.shape
            else:
                motion = torch.zeros(1, c, MOTION_LATENTS, h, w, device=dev) if first_clip_motion == "zeros" else None
            eps = noise[r].reshape(1, c, f_lat, h, w).to(dev) if noise is not None \
                else self._noise(r, seed, (1, c, f_lat, h, w), dev)
            x = eps
            if dub is not None:
                if host:
                    x0 = dub.source_latents(self, r, buffer if continuation else None, inputs, start_from_ref)
                    x = dub.init(x0, eps)
                    if dub.ref_mode == "segment-random":
                        inputs.ref_latents = dub.segment_ref(self, r, seed, inputs)
                if par is not None:
                    x = par.broadcast_tensor(x if host else None, tuple(eps.shape))
                    inputs.ref_latents = par.broadcast_tensor(inputs.ref_latents if host else None,
                                                              tuple(inputs.ref_latents.shape))
            if trace is not None:
                trace("clip_inputs", r, {"noise": eps, "motion_latents": motion,
                                         "audio": inputs.audio[..., r * f:(r + 1) * f]})
            def step_cb(i: int, d: dict, r: int = r) -> None:
                if trace is not None:
                    trace("step", r, {"i": i, **d})
                if step_callback is not None:
                    step_callback(r, inputs.num_clips, i)
            latents = self.denoise_clip(x, inputs, r, motion, num_inference_steps, shift, guidance_scale,
                                        cfg_batch=cfg_batch, dub_strength=None if dub is None else dub.strength,
                                        solver=solver, step_callback=step_cb,
                                        progress=progress and host)
            if trace is not None:
                trace("latents", r, {"latents": latents})
            if not host:
                continue
            start, end = clip_output_range(r, f, start_from_ref)
            keep = end - start
            decode_motion = motion if continuation else None
            kept = []
            for frames in self.decode_clip(latents, decode_motion, keep):
                kept.append(frames)
                yield frames
            kept = torch.cat(kept, dim=1)  # [3, keep, H, W]
            assert kept.shape[1] == keep, (kept.shape, keep)
            # Motion buffer = last 73 frames of (buffer ++ kept), as float pixels.
            buffer = torch.cat([buffer, kept[None].to(buffer)], dim=2)[:, :, -MOTION_FRAMES:]
            del kept

    # ------------------------------------------------------------------ the user-facing call
    def prepare_inputs(self, image, audio_path=None, waveform: np.ndarray | None = None, prompt: str = DEFAULT_PROMPT,
                       negative_prompt: str | None = None, size_bucket: str = "fasttalk-720",
                       size: tuple[int, int] | str | None = None, infer_frames: int = 120, num_clips: int | None = None,
                       sync_shift_frames: int | str = "auto", image_fit: str = "cover", start_from_ref: bool = False,
                       prompt_embeds: torch.Tensor | None = None, negative_prompt_embeds: torch.Tensor | None = None,
                       free_text_encoder: bool = False) -> tuple[ClipInputs, ClipPlan, torch.Tensor]:
        """Image + audio + prompt -> (ClipInputs, ClipPlan, the reference pixels [1, 3, 1, H, W])."""
        from ..audio.io import load_audio
        from ..video.buckets import parse_size
        from ..video.image import fit_image, load_image, to_rgb

        check_infer_frames(infer_frames)
        img = load_image(image) if isinstance(image, (str, Path)) else to_rgb(image)
        if size is None:
            height, width = resolve_bucket(img.height, img.width, size_bucket)
        elif isinstance(size, str):
            height, width = parse_size(size)
        else:
            height, width = size
        if waveform is None:
            if audio_path is None:
                raise ValueError("pass an audio file or a 16 kHz waveform")
            waveform = load_audio(audio_path)
        shift = video_lead_frames(start_from_ref) if sync_shift_frames == "auto" else int(sync_shift_frames)
        plan = plan_clips(len(waveform), infer_frames, num_clips, shift, start_from_ref)
        ref_px = fit_image(img, height, width, mode=image_fit)[None, :, None]  # [1, 3, 1, H, W]
        ref_latents = self.encode_video(ref_px)
        if prompt_embeds is None:
            ctx, ctx_null = self.encode_prompt(prompt, negative_prompt)
            if free_text_encoder:
                self.free_text_encoder()
        else:
            ctx, ctx_null = prompt_embeds, negative_prompt_embeds
            if ctx_null is None:
                raise ValueError("prompt_embeds needs negative_prompt_embeds")
        audio = self.encode_audio_waveform(waveform, plan)
        inputs = ClipInputs(ref_latents=ref_latents, context=ctx, context_null=ctx_null, audio=audio,
                            num_clips=plan.num_clips, frames_per_clip=infer_frames, height=height, width=width)
        return inputs, plan, ref_px

    def __call__(self, image, audio, prompt: str = DEFAULT_PROMPT, negative_prompt: str | None = None, *,
                 output_path: str | Path | None = None, output_type: str = "mp4", size_bucket: str = "fasttalk-720",
                 size: tuple[int, int] | str | None = None, infer_frames: int = 120, num_clips: int | None = None,
                 num_inference_steps: int = 50, shift: float = 5.0, guidance_scale: float = 6.5,
                 solver: str = "unipc", seed: int | None = None, sync_shift_frames: int | str = "auto", image_fit: str = "cover",
                 start_from_ref: bool = False, first_clip_motion: str | None = None, cfg_batch: bool = True,
                 dub_video: str | Path | None = None, dub_strength: float = 0.95, dub_ref: str = "first",
                 crf: int = 10, audio_bitrate: str = "192k", rounding: str = "nearest",
                 prompt_embeds: torch.Tensor | None = None, negative_prompt_embeds: torch.Tensor | None = None,
                 free_text_encoder: bool = False, progress: bool = True,
                 frame_callback: Callable[[torch.Tensor], None] | None = None,
                 step_callback: Callable[[int, int, int], None] | None = None) -> TalkVersePipelineOutput:
        """Generate a talking video for the whole ``audio`` (a path; ``num_clips`` caps the clip count).

        Writes an mp4 (H.264 25 fps + the input audio as AAC) to ``output_path``, streaming clip by clip, trimmed to the
        audio's length; or returns uint8 frames with ``output_type="np"``. ``seed`` None draws a random 63-bit seed.
        ``frame_callback`` receives the float frames [3, n, H, W] in [-1, 1] that are written, chunk by chunk.
        ``step_callback(clip, num_clips, step)`` is called after every denoising step. ``first_clip_motion`` None:
        the model's default (``config.first_clip_motion``)."""
        import time

        from ..video.writer import VideoWriter

        if seed is None or seed < 0:
            seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> np.uint64(1))
        t0 = time.perf_counter()
        dub = None
        if dub_video is not None:
            from ..video.reader import first_frame
            from .dubbing import DubSource

            if image is None:
                image = first_frame(dub_video)
        par = getattr(self, "parallel", None)
        host = par is None or par.is_host
        inputs = plan = None
        if host:  # encoders and the VAE live on the host only
            inputs, plan, ref_px = self.prepare_inputs(
                image, audio_path=audio, prompt=prompt, negative_prompt=negative_prompt, size_bucket=size_bucket,
                size=size, infer_frames=infer_frames, num_clips=num_clips, sync_shift_frames=sync_shift_frames,
                image_fit=image_fit, start_from_ref=start_from_ref, prompt_embeds=prompt_embeds,
                negative_prompt_embeds=negative_prompt_embeds, free_text_encoder=free_text_encoder)
            self._ref_pixels = ref_px
            if dub_video is not None:
                dub = DubSource(dub_video, inputs.height, inputs.width, num_inference_steps, shift, dub_strength,
                                ref_mode=dub_ref, image_fit=image_fit)
                if dub_ref == "first":
                    inputs.ref_latents = self.encode_video(dub.frame_tensor(0))
        if par is not None:  # every rank runs the DiT on the same encoded inputs
            inputs, plan, seed = par.broadcast_object((inputs, plan, seed) if host else None)
            if dub_video is not None and not host:
                dub = _RemoteDub(dub_strength, dub_ref)
        t_prep = time.perf_counter() - t0
        frames_iter = self.iter_clips(inputs, seed, num_inference_steps, shift, guidance_scale, start_from_ref,
                                      first_clip_motion, cfg_batch, dub=dub, progress=progress, solver=solver,
                                      step_callback=step_callback)
        out_frames = None
        path = None
        if not host:  # drive the clip loop (DiT shards) without decoding or writing
            for _ in frames_iter:
                pass
        elif output_type == "mp4":
            if output_path is None:
                raise ValueError("output_path is required for output_type='mp4'")
            meta = {"comment": f"talkverse seed={seed} steps={num_inference_steps} shift={shift} "
                               f"guide={guidance_scale} frames={infer_frames}"}
            # A capped clip count ends the video before the audio: cut the audio there too.
            capped = plan.output_frames < audio_frames(plan.audio_samples)
            with VideoWriter(output_path, fps=25, crf=crf, audio=audio, audio_bitrate=audio_bitrate,
                             max_frames=plan.output_frames, rounding=rounding, metadata=meta,
                             max_audio_seconds=plan.output_frames / 25.0 if capped else None) as writer:
                written = 0
                for frames in frames_iter:
                    writer.write(frames)
                    if frame_callback is not None and written < plan.output_frames:
                        frame_callback(frames[:, :plan.output_frames - written])
                    written += frames.shape[1]
            path = Path(output_path)
        elif output_type == "np":
            from ..video.writer import frames_to_uint8

            chunks, n = [], 0
            for frames in frames_iter:
                take = min(frames.shape[1], plan.output_frames - n)
                if take > 0:
                    chunks.append(frames_to_uint8(frames[:, :take].permute(1, 2, 3, 0), rounding).numpy())
                    n += take
            out_frames = np.concatenate(chunks, axis=0)
        else:
            raise ValueError(f"output_type must be 'mp4' or 'np', got {output_type!r}")
        timings = {"prepare_s": t_prep, "total_s": time.perf_counter() - t0}
        return TalkVersePipelineOutput(video_path=path, frames=out_frames, seed=seed, plan=plan,
                                       size=(inputs.height, inputs.width), timings=timings)
