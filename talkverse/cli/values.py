"""Ranges of talkverse-generate's numeric and text flags, checked before anything loads (one line naming the flag)."""

from __future__ import annotations

import math
import re

from .checks import UsageError


def check_values(args) -> None:
    from ..models.geometry import ClipGeometry

    # A clip's latents stay below the DiT's reference RoPE slot: 40 for the 5B (160 frames), 30 for S2V-14B (120).
    max_latent = ClipGeometry.max_latent_frames
    if getattr(args, "task", None) == "s2v-14B":
        from ..configs import model_config
        from ..pipelines.family import S2V_14B

        max_latent = model_config(S2V_14B.config)["ref_rope_t"]
    try:
        ClipGeometry(args.infer_frames, max_latent_frames=max_latent).check("--infer_frames")
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.sample_steps < 1:
        raise UsageError(f"--sample_steps must be at least 1, got {args.sample_steps}")
    if not math.isfinite(args.sample_guide_scale) or args.sample_guide_scale < 0:
        raise UsageError(f"--sample_guide_scale must be a finite number >= 0, got {args.sample_guide_scale}")
    if not math.isfinite(args.sample_shift) or args.sample_shift <= 0:
        raise UsageError(f"--sample_shift must be a positive number, got {args.sample_shift}")
    if args.sync_shift_frames is not None and args.sync_shift_frames < 0:
        raise UsageError(f"--sync_shift_frames must be 'auto' or >= 0, got {args.sync_shift_frames}")
    if not 0.0 < args.dub_strength <= 1.0:
        raise UsageError(f"--dub_strength must be in (0, 1], got {args.dub_strength}")
    if not 0 <= args.crf <= 51:
        raise UsageError(f"--crf must be in 0..51 (H.264), got {args.crf}")
    if not re.fullmatch(r"\d+(\.\d+)?[kKmM]?", str(args.audio_bitrate)):
        raise UsageError(f"--audio_bitrate {args.audio_bitrate!r}: use a number of bits/s such as 192k")
    if not 0.0 <= getattr(args, "cfg_truncation", 1.0) <= 1.0:
        raise UsageError(f"--cfg_truncation must be in [0, 1], got {args.cfg_truncation}")
    if getattr(args, "cache", "none") != "none":
        from ..pipelines.caching import check_cache_options

        try:
            check_cache_options(args.cache, args.cache_threshold, args.cache_interval, mag_ratios(args))
        except ValueError as e:
            raise UsageError(f"--cache: {e}") from None
    if args.ulysses_size < 1:
        raise UsageError(f"--ulysses_size must be >= 1, got {args.ulysses_size}")


def mag_ratios(args) -> list[float] | None:
    """--cache_mag_ratios "1.0,0.98,..." -> floats (UsageError on a bad number)."""
    text = getattr(args, "cache_mag_ratios", None)
    if not text:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"--cache_mag_ratios {text!r}: comma-separated numbers, one per step") from None
