"""Clip-loop parity (``pipeline/``): 3 clips of the tiny DiT + tiny VAE, 4 UniPC steps, CFG 6.5, fp32.

Staged (every stage on the stored inputs, README "Suggested tests") and end to end (from the stored noise only):
  pipeline/stages   - DiT cond/uncond per step from ``step_x``; scheduler replay from ``step_v_*``; VAE decode of the
                      stored latents (with the stored motion latents prepended); the motion re-encode.
  pipeline/e2e      - ``TalkVersePipeline.iter_clips`` in parity settings (drop first-clip motion, pixel motion carry,
                      zero features past the audio, the fixture's size/frames), compared at every step through
                      ``callback_on_step_end``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import load_file

from ..loaders.vae import load_original_vae
from ..models.audio_columns import bucket_columns
from ..models.vae import TalkVerseVAE
from ..pipelines.pipeline_talkverse import TalkVersePipeline
from ..pipelines.scheduling import make_scheduler, set_schedule
from .common import CaseResult, register
from .dit import model_from_fixture

TOL = 1e-4  # relative, fp32 (README: per-step and per-clip tensors, and the final video)


def fixture_vae(folder: Path) -> TalkVerseVAE:
    cfg = json.loads((folder / "vae_tiny_config.json").read_text())
    dc = dict(cfg["diffusers_equivalent_config"])
    dc["latents_mean"], dc["latents_std"] = cfg["latent_mean"], cfg["latent_std"]
    return load_original_vae(folder / "vae_tiny.safetensors", config=dc)


def fixture_pipeline(fixtures: Path) -> TalkVersePipeline:
    transformer = model_from_fixture(fixtures / "dit_tiny")
    vae = fixture_vae(fixtures / "pipeline").vae
    return TalkVersePipeline(transformer=transformer, vae=vae, scheduler=make_scheduler(5.0))


def fixture_call(data: dict, manifest: dict) -> dict:
    """The pipeline arguments of the fixture's video: its reference image at size, the reference bucketing of the
    audio features (one column per frame, zero feature vectors past the audio's end), its embeddings and noise."""
    h, w = manifest["pixel_hw"]
    n, clips = manifest["infer_frames"], manifest["clips"]
    return dict(image=data["in.ref_image_u8"].numpy(), height=h, width=w, frames_per_clip=n,
                audio_features=bucket_columns(data["in.audio_feats_25fps"], clips * n),
                prompt_embeds=data["in.context"], negative_prompt_embeds=data["in.context_null"],
                latents=[data[f"clip{r}.noise"] for r in range(clips)], num_inference_steps=manifest["sampling_steps"],
                guidance_scale=manifest["guide_scale"], first_clip_motion="drop", cfg_batch=True, progress=False)


def ref_latents(pipe: TalkVersePipeline, data: dict) -> torch.Tensor:
    img = data["in.ref_image_u8"].permute(2, 0, 1).float() / 255.0 * 2.0 - 1.0  # already at size: resize = identity
    return pipe.encode_video(img[None, :, None])


def _stages(pipe: TalkVersePipeline, data: dict, manifest: dict, res: CaseResult) -> None:
    res.check("ref_latents", ref_latents(pipe, data), data["mid.ref_latents"], TOL)
    audio_all = bucket_columns(data["in.audio_feats_25fps"], manifest["clips"] * manifest["infer_frames"])
    tr, n = pipe.transformer, manifest["infer_frames"]
    steps, shift, g = manifest["sampling_steps"], manifest["shift"], manifest["guide_scale"]
    from ..models.text_encoder import pad_context

    ctx = pad_context([data["in.context"]], tr.config.text_len)
    ctx_null = pad_context([data["in.context_null"]], tr.config.text_len)
    ref = data["mid.ref_latents"]
    for r in range(manifest["clips"]):
        p = f"clip{r}."
        audio = data[p + "audio_input"]
        res.check(p + "audio_input", audio_all[..., r * n:(r + 1) * n], audio, TOL)
        motion = data.get(p + "motion_latents") if not int(data[p + "drop_motion_frames"].item()) else None
        with torch.no_grad():
            for i, t in enumerate(data[p + "timesteps"]):
                x = data[p + "step_x"][i][None]
                tt = t.reshape(1).float()
                vc = tr(hidden_states=x, timestep=tt, encoder_hidden_states=ctx, ref_latents=ref,
                        audio_features=audio, motion_latents=motion).sample
                vu = tr(hidden_states=x, timestep=tt, encoder_hidden_states=ctx_null, ref_latents=ref,
                        audio_features=torch.zeros_like(audio), motion_latents=motion).sample
                res.check(f"{p}step{i}.v_cond", vc[0], data[p + "step_v_cond"][i], TOL)
                res.check(f"{p}step{i}.v_uncond", vu[0], data[p + "step_v_uncond"][i], TOL)
        # Scheduler replay on the stored model outputs.
        sched = make_scheduler(shift)
        ts = set_schedule(sched, steps)
        res.check_exact(p + "timesteps", ts.long(), data[p + "timesteps"])
        x = data[p + "step_x"][0][None]
        for i, t in enumerate(ts):
            res.check(f"{p}replay.step_x{i}", x[0], data[p + "step_x"][i], 1e-6)
            v = data[p + "step_v_uncond"][i] + g * (data[p + "step_v_cond"][i] - data[p + "step_v_uncond"][i])
            x = sched.step(v[None], t, x, return_dict=False)[0]
        res.check(p + "replay.latents", x[0], data[p + "latents"], 1e-6)


def _end_to_end(pipe: TalkVersePipeline, data: dict, manifest: dict, res: CaseResult) -> None:
    clips, seen = manifest["clips"], {}

    def record(p, i: int, t, d: dict) -> dict:
        r = p.current_clip
        seen.setdefault((r, "after"), []).append(d["latents"][0])
        seen.setdefault((r, "vc"), []).append(d["noise_pred_cond"][0])
        seen.setdefault((r, "vu"), []).append(d["noise_pred_uncond"][0])
        if d["motion_latents"] is not None:
            seen[(r, "motion")] = d["motion_latents"]
        return {}

    call = fixture_call(data, manifest)
    frames = list(pipe.iter_clips(**call, callback_on_step_end=record, callback_on_step_end_tensor_inputs=[
        "latents", "noise_pred_cond", "noise_pred_uncond", "motion_latents"]))
    video = torch.cat(frames, dim=1)
    for r in range(clips):
        p = f"clip{r}."
        if (r, "motion") in seen:
            res.check(p + "motion_latents", seen[(r, "motion")], data[p + "motion_latents"], TOL)
        steps_in = [call["latents"][r].reshape(data[p + "step_x"][0].shape)] + seen[(r, "after")][:-1]
        res.check(p + "step_x", torch.stack(steps_in), data[p + "step_x"], TOL)
        res.check(p + "step_v_cond", torch.stack(seen[(r, "vc")]), data[p + "step_v_cond"], TOL)
        res.check(p + "step_v_uncond", torch.stack(seen[(r, "vu")]), data[p + "step_v_uncond"], TOL)
        res.check(p + "latents", seen[(r, "after")][-1], data[p + "latents"], TOL)
    res.check_exact("out.num_frames", torch.tensor([video.shape[1]]), data["out.num_frames"])
    res.check("out.video", video, data["out.video"], TOL)


def _decode_and_motion(pipe: TalkVersePipeline, data: dict, manifest: dict, res: CaseResult) -> None:
    """Decode of each clip's stored latents (motion prepended for r >= 1) and the re-encode of the motion buffer."""
    n, clips = manifest["infer_frames"], manifest["clips"]
    h, w = manifest["pixel_hw"]
    motion_frames = pipe.transformer.config.motion_frames
    buffer = torch.zeros(1, 3, motion_frames, h, w)
    pieces = []
    for r in range(clips):
        p = f"clip{r}."
        motion = data.get(p + "motion_latents")
        if r > 0:
            res.check(p + "reencoded_motion", pipe.encode_video(buffer), motion, TOL)
        keep = n - 3 if r == 0 else n
        kept = pipe.decode_clip(data[p + "latents"][None], motion if r > 0 else None, keep)
        pieces.append(kept)
        buffer = torch.cat([buffer, kept[None]], dim=2)[:, :, -motion_frames:]
    res.check("decoded_video", torch.cat(pieces, dim=1), data["out.video"], TOL)


@register("pipeline", "pipeline", "pipeline.safetensors")
def run(fixtures: Path, folder: Path) -> Iterator[CaseResult]:
    manifest = json.loads((folder / "manifest.json").read_text())
    data = load_file(folder / "pipeline.safetensors")
    try:
        pipe = fixture_pipeline(fixtures)
    except Exception as e:  # noqa: BLE001 - reported as a failed case
        res = CaseResult("pipeline/load")
        res.error = f"{type(e).__name__}: {e}"
        yield res
        return
    for name, fn in (("stages", _stages), ("decode_motion", _decode_and_motion), ("e2e", _end_to_end)):
        res = CaseResult(f"pipeline/{name}")
        try:
            with torch.no_grad():
                fn(pipe, data, manifest, res)
        except Exception as e:  # noqa: BLE001
            import traceback

            res.error = f"{type(e).__name__}: {e} ({traceback.format_exc().splitlines()[-3].strip()})"
        yield res
