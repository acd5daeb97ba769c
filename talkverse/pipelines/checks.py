"""``TalkVersePipeline``'s argument checks: one ``ValueError`` naming the argument, before any encoder runs."""

from __future__ import annotations

import inspect
import math

import torch

from ..media.fitting import FIT_MODES
from ..media.sizes import BUCKETS
from .dubbing import DUB_REF_MODES
from .output import OUTPUT_TYPES
from .scheduling import check_scheduler

# The frame packer's coarsest kernel is 8x8 latent cells (16 px each with the Wan2.2 VAE, 8 px with Wan2.1): a smaller
# video cannot carry motion tokens.
MOTION_KERNEL_CELLS = 8


def check_motion_size(height: int, width: int, uses_motion: bool, vae_spatial: int = 16) -> None:
    least = MOTION_KERNEL_CELLS * vae_spatial
    if uses_motion and min(height, width) < least:
        raise ValueError(f"height/width: {height}x{width} is too small for motion tokens (more than one clip, or "
                         f"first_clip_motion 'zeros'/'reference'): the frame packer's 4x kernel needs at least "
                         f"{least}x{least}")


def check_output_type(output_type: str) -> None:
    if output_type not in OUTPUT_TYPES:
        raise ValueError(f"output_type must be one of {', '.join(OUTPUT_TYPES)}, got {output_type!r}")


def _choice(name: str, value, options) -> None:
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(str, options))}, got {value!r}")


def check_call(pipe, a: dict) -> None:
    """Check the arguments ``a`` of ``iter_clips`` / ``__call__`` against each other and against ``pipe``."""
    check_scheduler(pipe.scheduler)
    if a["image"] is None and a["dub_video"] is None:
        raise ValueError("image: pass a portrait (or dub_video, whose first frame is then the portrait)")
    if (a["audio"] is None) == (a["audio_features"] is None):
        raise ValueError("audio: pass exactly one of audio (a 16 kHz waveform) and audio_features")
    if a["audio"] is not None and pipe.audio_encoder is None:
        raise ValueError("audio: this pipeline has no audio encoder; pass audio_features")
    if a["audio"] is not None and len(a["audio"]) == 0:
        raise ValueError("audio: the waveform is empty")
    if a["prompt_embeds"] is None:
        if pipe.text_encoder is None:
            raise ValueError("prompt: this pipeline has no text encoder; pass prompt_embeds and negative_prompt_embeds")
    elif a["negative_prompt_embeds"] is None:
        raise ValueError("negative_prompt_embeds: required with prompt_embeds")
    elif a["prompt"] is not None:
        raise ValueError("prompt: pass prompt or prompt_embeds, not both")
    if (a["height"] is None) != (a["width"] is None):
        raise ValueError("height/width: give both or neither")
    if a["height"] is not None:
        stride = pipe.vae.config.scale_factor_spatial * pipe.transformer.config.patch_size[1]
        if a["height"] % stride or a["width"] % stride or min(a["height"], a["width"]) <= 0:
            raise ValueError(f"height/width: {a['height']}x{a['width']} must be positive multiples of {stride}")
    else:
        _choice("size_bucket", a["size_bucket"], list(BUCKETS))
    pipe.geometry(a["frames_per_clip"]).check("frames_per_clip")
    if a["num_clips"] is not None and (isinstance(a["num_clips"], bool) or a["num_clips"] < 1):
        raise ValueError(f"num_clips must be a positive integer or None, got {a['num_clips']!r}")
    if a["num_inference_steps"] < 1:
        raise ValueError(f"num_inference_steps must be >= 1, got {a['num_inference_steps']}")
    if not math.isfinite(a["guidance_scale"]) or a["guidance_scale"] < 0:
        raise ValueError(f"guidance_scale must be a finite number >= 0, got {a['guidance_scale']}")
    if a["sync_shift_frames"] is not None and a["sync_shift_frames"] < 0:
        raise ValueError(f"sync_shift_frames must be >= 0 or None, got {a['sync_shift_frames']}")
    if not 0.0 <= a["cfg_truncation"] <= 1.0:  # NaN fails too
        raise ValueError(f"cfg_truncation must be in [0, 1], got {a['cfg_truncation']}")
    _choice("first_clip_motion", a["first_clip_motion"], (None, "drop", "zeros", "reference"))
    _choice("image_fit", a["image_fit"], FIT_MODES)
    _choice("dub_ref", a["dub_ref"], DUB_REF_MODES)
    if not 0.0 < a["dub_strength"] <= 1.0:
        raise ValueError(f"dub_strength must be in (0, 1], got {a['dub_strength']}")
    unknown = [k for k in a["callback_on_step_end_tensor_inputs"] if k not in pipe._callback_tensor_inputs]
    if unknown:
        raise ValueError(f"callback_on_step_end_tensor_inputs: {unknown} are not among "
                         f"{pipe._callback_tensor_inputs}")
    if a.get("dub_mask") is not None and a["dub_video"] is None:
        raise ValueError("dub_mask: masked dubbing needs dub_video (the source whose surroundings are kept)")
    if a.get("pose_video") is not None and not pipe.family.pose:
        raise ValueError(f"pose_video: the {pipe.family.name} model has no pose branch (only s2v-14B takes a pose video)")
    g = a["generator"]
    if g is not None and not isinstance(g, (torch.Generator, list, tuple)):
        raise ValueError(f"generator must be a torch.Generator or a list of them, got {type(g).__name__}")


def check_dub_mask(mask, height: int, width: int, num_clips: int) -> list | None:
    """``dub_mask`` as one [H, W] float tensor per clip (None stays None); ValueError naming it otherwise."""
    if mask is None:
        return None
    masks = list(mask) if isinstance(mask, (list, tuple)) else [mask] * num_clips
    if len(masks) < num_clips:
        raise ValueError(f"dub_mask: {len(masks)} masks for {num_clips} clips")
    out = []
    for m in masks[:num_clips]:
        m = torch.as_tensor(m).float()
        if tuple(m.shape) != (height, width):
            raise ValueError(f"dub_mask: each mask must be [H, W] = [{height}, {width}], got {list(m.shape)}")
        out.append(m)
    return out


def signature_of_call(iter_clips) -> inspect.Signature:
    """``__call__``'s signature: ``iter_clips``'s plus ``output_type`` and ``return_dict`` (for help() and IDEs)."""
    sig = inspect.signature(iter_clips)
    extra = [inspect.Parameter("output_type", inspect.Parameter.KEYWORD_ONLY, default="np", annotation="str"),
             inspect.Parameter("return_dict", inspect.Parameter.KEYWORD_ONLY, default=True, annotation="bool")]
    return sig.replace(parameters=[*sig.parameters.values(), *extra])
