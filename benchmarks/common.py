"""Shared pieces of the benchmark scripts: repo import path, argument helpers, random-weight model builders.

Every benchmark runs on CUDA when present and on the CPU otherwise (reduced shapes there), prints one JSON line per
measurement and writes a markdown table with ``--table PATH``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

# A reduced DiT for CPU runs: same structure as s2v_5b (all S2V modules, CFG, injectors), small widths.
CPU_DIT = dict(patch_size=[1, 2, 2], num_attention_heads=4, attention_head_dim=64, in_channels=48, out_channels=48,
               text_dim=256, text_len=64, freq_dim=256, ffn_dim=1024, num_layers=2, cross_attn_norm=True,
               qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024, rope_theta=10000.0, audio_dim=128,
               audio_num_layers=25, audio_tokens_per_frame=4, audio_inject_layers=[0, 1], adaln_eps=1e-5,
               framepack_buckets=[1, 2, 16], motion_frames=73, motion_latents=19, ref_rope_t=40, num_cond_roles=3)
# CPU clip geometry: 4 latent frames of 16 x 16 latents (256 noisy tokens; 416 with motion, 320 without).
CPU_CLIP = dict(f=4, h=16, w=16)
# The real clip: 120 frames at 704 x 1280 -> 30 latent frames of 44 x 80 (26,400 noisy tokens; 28,580 with motion).
GPU_CLIP = dict(f=30, h=44, w=80)


def base_parser(doc: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default=None, help="cuda / cpu (default: cuda when available)")
    p.add_argument("--tiny", action="store_true", help="reduced CPU-sized shapes (automatic on the CPU)")
    p.add_argument("--warmup", type=int, default=None, help="untimed iterations per variant (default 3 CUDA, 1 CPU)")
    p.add_argument("--iters", type=int, default=None, help="timed iterations per variant (default 10 CUDA, 5 CPU)")
    p.add_argument("--table", default=None, help="also write the results as a markdown table to this path")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    return p


def setup(args) -> torch.device:
    from talkverse.perf.timing import pick_device

    dev = pick_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.tiny = args.tiny or dev.type != "cuda"
    if args.warmup is None:
        args.warmup = 3 if dev.type == "cuda" else 1
    if args.iters is None:
        args.iters = 10 if dev.type == "cuda" else 5
    return dev


def random_dit(config: dict, device: torch.device, dtype: torch.dtype, seed: int = 0):
    """TalkVerseTransformer3DModel with random (default-init, non-zero head) weights in ``dtype`` (fp32 islands)."""
    from talkverse.models.transformer_talkverse import TalkVerseTransformer3DModel
    from talkverse.perf.optimize import cast_dit

    torch.manual_seed(seed)
    with torch.device(device):
        model = TalkVerseTransformer3DModel(**config)
        with torch.no_grad():
            model.proj_out.weight.normal_(std=0.02)
            model.casual_audio_encoder.encoder.padding_tokens.normal_(std=0.02)
    return cast_dit(model, dtype).eval()


def dit_inputs(config: dict, batch: int, f: int, h: int, w: int, with_motion: bool, device: torch.device,
               dtype: torch.dtype, seed: int = 0) -> dict:
    """Random non-zero inputs of one clip (text context at full ``text_len``)."""
    g = torch.Generator(device=device).manual_seed(seed)
    c = config["in_channels"]

    def rnd(*shape):
        return torch.randn(*shape, generator=g, device=device, dtype=torch.float32).to(dtype)

    return dict(hidden_states=rnd(batch, c, f, h, w), timestep=torch.full((batch,), 700.0, device=device),
                encoder_hidden_states=rnd(batch, config["text_len"], config["text_dim"]),
                ref_latents=rnd(batch, c, 1, h, w),
                audio_features=rnd(batch, config["audio_num_layers"], config["audio_dim"], 4 * f),
                motion_latents=rnd(batch, c, 19, h, w) if with_motion else None)


def xlsr53_wav2vec(device: torch.device):
    """Random wav2vec2 with the wav2vec2-large-xlsr-53 shape (24 layers, width 1024) and its feature extractor."""
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

    from talkverse.testing.tiny import xlsr53_config

    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, do_normalize=True, return_attention_mask=True)
    return Wav2Vec2Model(xlsr53_config()).to(device).eval(), fe


def random_pipeline(tiny: bool, device: torch.device, seed: int = 0, dit_device: torch.device | str | None = None):
    """(pipeline, prompt kwargs). CPU/tiny: ``talkverse.testing.tiny`` (all real component classes, tiny umT5).
    Full size: the 5B DiT in bf16 and the Wan2.2 VAE (fp32) with random weights, a random xlsr-53-shaped wav2vec2,
    no umT5 (random 4096-wide prompt embeddings instead: umT5 runs once per video, on the CPU in the low_vram
    profile, and its random-weight build would dominate the setup). ``dit_device``: where the DiT is built (the CPU
    for group offloading, so that its weights never sit on the GPU as a whole)."""
    from talkverse.configs import model_config
    from talkverse.pipelines.pipeline_talkverse import TalkVersePipeline
    from talkverse.pipelines.scheduling import make_scheduler
    from talkverse.testing.tiny import tiny_pipeline

    if tiny:
        pipe = tiny_pipeline(seed)
        pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        return pipe, {}
    from diffusers import AutoencoderKLWan

    from talkverse.loaders.vae import vae_config

    dit = random_dit(model_config("s2v_5b"), torch.device(dit_device or device), torch.bfloat16, seed)
    with torch.device(device):
        vae = AutoencoderKLWan(**vae_config()).eval()
    w2v, fe = xlsr53_wav2vec(device)
    pipe = TalkVersePipeline(transformer=dit, vae=vae, scheduler=make_scheduler(5.0), audio_encoder=w2v,
                             feature_extractor=fe)
    pipe.set_progress_bar_config(disable=True)
    g = torch.Generator().manual_seed(seed)
    prompt = dict(prompt_embeds=torch.randn(24, 4096, generator=g), negative_prompt_embeds=torch.randn(120, 4096, generator=g))
    return pipe, prompt


def test_media(height: int, width: int, seconds: float):
    """A random portrait (PIL) and a speech-like 16 kHz waveform of ``seconds`` (sines + noise)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    img = Image.fromarray((rng.random((height, width, 3)) * 255).astype(np.uint8))
    t = np.arange(int(seconds * 16000)) / 16000
    wave = 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.02 * rng.standard_normal(t.size)
    return img, wave.astype(np.float32)


def call_kwargs(height: int, width: int, frames: int, clips: int, steps: int, **extra) -> dict:
    """The pipeline arguments of one benchmark video (seed 0, no progress bars)."""
    return dict(height=height, width=width, frames_per_clip=frames, num_clips=clips, num_inference_steps=steps,
                generator=torch.Generator().manual_seed(0), progress=False, **extra)
