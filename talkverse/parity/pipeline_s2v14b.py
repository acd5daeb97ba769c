"""S2V-14B clip-loop parity (``parity_s2v14b/pipeline/{no_pose,pose}/``; s2v14b.md §4): 2 clips of the tiny DiT +
tiny Wan2.1 VAE, 3 UniPC steps, shift 3, guide 4.5, fp32.

Per variant, staged (every stage on the stored inputs) and end to end (from the stored noise only):
  stages   - reference latent; pose latents (``cond_states``) from the pose frames; audio buckets per clip; DiT
             cond/uncond per step from ``step_x``; scheduler replay from ``step_v_*``; clip-0 decode of
             [ref latent | latents] and the motion re-encode of the buffer.
  e2e      - ``TalkVersePipeline.iter_clips`` on the s2v-14B family (16 fps buckets of the 30 fps features, pose video,
             clip-0 decode with the reference latent), compared at every step and on the final video.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import load_file

from ..loaders.vae import load_original_vae
from ..models.audio_columns import bucket_fps
from ..models.text_encoder import pad_context
from ..pipelines.pipeline_talkverse import TalkVersePipeline
from ..pipelines.pose import encode_pose
from ..pipelines.scheduling import make_scheduler, set_schedule
from .common import S2V_14B, CaseResult, register
from .dit import model_from_fixture

TOL = 1e-4  # relative, fp32 (README: per-step and per-clip tensors)
VIDEO_ABS = 1e-4  # max abs on out.video (README)
VARIANTS = ("no_pose", "pose")


def fixture_pipeline(fixtures: Path, shift: float) -> TalkVersePipeline:
    cfg = json.loads((fixtures / "pipeline" / "vae21_tiny_config.json").read_text())
    vae = load_original_vae(fixtures / "pipeline" / "vae21_tiny.safetensors", config=cfg["diffusers_equivalent_config"])
    return TalkVersePipeline(transformer=model_from_fixture(fixtures / "dit_tiny"), vae=vae.vae,
                             scheduler=make_scheduler(shift))


def _audio(data: dict, m: dict) -> torch.Tensor:
    return bucket_fps(data["in.audio_feats_30fps"], m["clips"] * m["infer_frames"], 30, 16)


def _pose_frames(data: dict) -> list | None:
    return list(data["in.pose_frames_u8"].numpy()) if "in.pose_frames_u8" in data else None


def _stages(pipe: TalkVersePipeline, data: dict, m: dict, res: CaseResult) -> None:
    n, clips, (h, w) = m["infer_frames"], m["clips"], m["pixel_hw"]
    img = data["in.ref_image_u8"].permute(2, 0, 1).float() / 255.0 * 2.0 - 1.0
    res.check("ref_latents", pipe.encode_video(img[None, :, None]), data["mid.ref_latents"], TOL)
    frames = _pose_frames(data)
    pose = encode_pose(frames, pipe.encode_video, h, w, clips, n) if frames is not None else None
    audio_all, tr = _audio(data, m), pipe.transformer
    ctx, ctx_null = (pad_context([data[k]], tr.config.text_len) for k in ("in.context", "in.context_null"))
    ref, g = data["mid.ref_latents"], m["guide_scale"]
    buffer = torch.zeros(1, 3, tr.config.motion_frames, h, w)
    for r in range(clips):
        p = f"clip{r}."
        audio = data[p + "audio_input"]
        res.check(p + "audio_input", audio_all[..., r * n:(r + 1) * n], audio, TOL)
        cond = data.get(p + "cond_states")
        if pose is not None:
            res.check(p + "cond_states", pose[r], cond, TOL)
        drop = bool(int(data[p + "drop_motion_frames"].item()))
        motion = None if drop else data[p + "motion_latents"]
        if not drop:
            res.check(p + "reencoded_motion", pipe.encode_video(buffer), motion, TOL)
        with torch.no_grad():
            for i, t in enumerate(data[p + "timesteps"]):
                kw = dict(hidden_states=data[p + "step_x"][i][None], timestep=t.reshape(1).float(), ref_latents=ref,
                          motion_latents=motion, cond_states=cond)
                vc = tr(encoder_hidden_states=ctx, audio_features=audio, **kw).sample
                vu = tr(encoder_hidden_states=ctx_null, audio_features=torch.zeros_like(audio), **kw).sample
                res.check(f"{p}step{i}.v_cond", vc[0], data[p + "step_v_cond"][i], TOL)
                res.check(f"{p}step{i}.v_uncond", vu[0], data[p + "step_v_uncond"][i], TOL)
        sched = make_scheduler(m["shift"])
        ts = set_schedule(sched, m["sampling_steps"])
        res.check_exact(p + "timesteps", ts.long(), data[p + "timesteps"])
        x = data[p + "step_x"][0][None]
        for i, t in enumerate(ts):
            v = data[p + "step_v_uncond"][i] + g * (data[p + "step_v_cond"][i] - data[p + "step_v_uncond"][i])
            x = sched.step(v[None], t, x, return_dict=False)[0]
        res.check(p + "replay.latents", x[0], data[p + "latents"], 1e-6)
        prefix = ref if drop else motion
        res.check(p + "decode_latents", torch.cat([prefix, data[p + "latents"][None]], dim=2)[0],
                  data[p + "decode_latents"], TOL)
        kept = pipe.decode_clip(data[p + "latents"][None], prefix, n - 3 if r == 0 else n)
        res.check(p + "kept_frames", kept, data["out.video"][:, (0 if r == 0 else n - 3 + n * (r - 1)):][:, :kept.shape[1]],
                  TOL)
        buffer = torch.cat([buffer, kept[None]], dim=2)[:, :, -tr.config.motion_frames:]


def _end_to_end(pipe: TalkVersePipeline, data: dict, m: dict, res: CaseResult) -> None:
    seen: dict = {}

    def record(p, i, t, d):
        r = p.current_clip
        for key, name in (("latents", "after"), ("noise_pred_cond", "vc"), ("noise_pred_uncond", "vu")):
            seen.setdefault((r, name), []).append(d[key][0])
        if d["motion_latents"] is not None:
            seen[(r, "motion")] = d["motion_latents"]
        return {}

    h, w = m["pixel_hw"]
    clips = m["clips"]
    call = dict(image=data["in.ref_image_u8"].numpy(), height=h, width=w, frames_per_clip=m["infer_frames"],
                audio_features=_audio(data, m), prompt_embeds=data["in.context"],
                negative_prompt_embeds=data["in.context_null"], latents=[data[f"clip{r}.noise"] for r in range(clips)],
                num_inference_steps=m["sampling_steps"], guidance_scale=m["guide_scale"], first_clip_motion="drop",
                pose_video=_pose_frames(data), progress=False, callback_on_step_end=record,
                callback_on_step_end_tensor_inputs=["latents", "noise_pred_cond", "noise_pred_uncond", "motion_latents"])
    video = torch.cat(list(pipe.iter_clips(**call)), dim=1)
    for r in range(clips):
        p = f"clip{r}."
        if (r, "motion") in seen:
            res.check(p + "motion_latents", seen[(r, "motion")], data[p + "motion_latents"], TOL)
        steps_in = [data[p + "noise"]] + seen[(r, "after")][:-1]
        res.check(p + "step_x", torch.stack(steps_in), data[p + "step_x"], TOL)
        res.check(p + "step_v_cond", torch.stack(seen[(r, "vc")]), data[p + "step_v_cond"], TOL)
        res.check(p + "step_v_uncond", torch.stack(seen[(r, "vu")]), data[p + "step_v_uncond"], TOL)
        res.check(p + "latents", seen[(r, "after")][-1], data[p + "latents"], TOL)
    res.check_exact("out.num_frames", torch.tensor([video.shape[1]]), data["out.num_frames"].reshape(1))
    res.check("out.video", video, data["out.video"], TOL)
    res.check_abs("out.video_max_abs", video, data["out.video"], VIDEO_ABS)


@register("pipeline", "pipeline", "vae21_tiny.safetensors", models=(S2V_14B,))
def run(fixtures: Path, folder: Path) -> Iterator[CaseResult]:
    for variant in VARIANTS:
        if not (folder / variant / "pipeline.safetensors").is_file():
            continue
        m = json.loads((folder / variant / "manifest.json").read_text())
        data = load_file(folder / variant / "pipeline.safetensors")
        try:
            pipe = fixture_pipeline(fixtures, m["shift"])
        except Exception as e:  # noqa: BLE001 - reported as a failed case
            yield CaseResult(f"pipeline/{variant}/load", error=f"{type(e).__name__}: {e}")
            continue
        for name, fn in (("stages", _stages), ("e2e", _end_to_end)):
            res = CaseResult(f"pipeline/{variant}/{name}")
            try:
                with torch.no_grad():
                    fn(pipe, data, m, res)
            except Exception as e:  # noqa: BLE001
                import traceback

                res.error = f"{type(e).__name__}: {e} ({traceback.format_exc().splitlines()[-3].strip()})"
            yield res
