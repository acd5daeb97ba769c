"""What ``TalkVersePipeline.__call__`` returns, in diffusers' video conventions (``output_type`` "np", "pt", "pil")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from diffusers.utils import BaseOutput

OUTPUT_TYPES = ("np", "pt", "pil")


@dataclass
class TalkVersePipelineOutput(BaseOutput):
    """``frames``: one video (batch of 1), as diffusers video pipelines return it:

    * ``"np"``: float32 array [1, T, H, W, 3] in [0, 1];
    * ``"pt"``: float32 tensor [1, T, 3, H, W] in [0, 1];
    * ``"pil"``: ``[[PIL.Image, ...]]`` (T RGB images).
    """

    frames: np.ndarray | torch.Tensor | list


def postprocess_video(video: torch.Tensor, output_type: str):
    """Float frames [3, T, H, W] in [-1, 1] -> ``output_type`` (see :class:`TalkVersePipelineOutput`)."""
    x = (video.float() / 2 + 0.5).clamp(0, 1).permute(1, 0, 2, 3)[None]  # [1, T, 3, H, W]
    if output_type == "pt":
        return x
    arr = x.permute(0, 1, 3, 4, 2).cpu().numpy()  # [1, T, H, W, 3]
    if output_type == "np":
        return arr
    from PIL import Image

    return [[Image.fromarray((f * 255).round().astype(np.uint8)) for f in arr[0]]]
