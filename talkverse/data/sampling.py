"""Clip sampling arithmetic (training.md §4, §2.4): scenes at 25 fps, window, reference frame, pose index."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..models.geometry import ClipGeometry

_GEOMETRY = ClipGeometry()  # the 5B's motion frames

SCENE_TRIM = 4  # original-fps frames trimmed on each side of an internal scene boundary
REF_GAP = 15  # reference frame >= 15 frames (0.6 s) outside the window


def scene_range_25fps(scenes: list[tuple[int, int]] | None, fps: float | None, total: int) -> tuple[int, int] | None:
    """The longest scene as an inclusive 25 fps range (s25, e25); e25 < s25 means no usable scene.

    1. trim 4 original-fps frames on each side of every internal boundary (not the clip's first start / last end);
    2. s25 = floor(s*25/fps), e25 = floor((e+1)*25/fps) - 1, clamped to [0, total-1];
    3. the longest (ties -> first). Returns None when scenes or fps are missing (use the whole clip).
    """
    if not scenes or not fps or fps <= 0:
        return None
    scenes = sorted(scenes)
    best: tuple[int, int] | None = None
    for k, (s, e) in enumerate(scenes):
        if k > 0:
            s += SCENE_TRIM
        if k < len(scenes) - 1:
            e -= SCENE_TRIM
        if e < s:
            continue
        s25 = max(0, int(np.floor(s * 25.0 / fps)))
        e25 = min(total - 1, int(np.floor((e + 1) * 25.0 / fps)) - 1)
        if e25 < s25:
            continue
        if best is None or e25 - s25 > best[1] - best[0]:
            best = (s25, e25)
    return best if best is not None else (0, -1)


@dataclass(frozen=True)
class Window:
    """Window of ``length`` frames from ``start``: [motion | main] (length motion+main) or [main] only."""

    start: int
    has_motion: bool
    length: int


def choose_window(total: int, scene: tuple[int, int] | None, main: int = 72, motion: int = _GEOMETRY.motion_frames,
                  rng: np.random.Generator | None = None, always_use_motion: bool = False) -> Window | None:
    """Uniform start with the whole window inside ``scene`` (inclusive; None = whole clip). None if too short.

    Motion context is used whenever main+motion frames fit; else main only (unless ``always_use_motion``).
    """
    rng = rng if rng is not None else np.random.default_rng()
    s, e = (0, total - 1) if scene is None else (max(0, scene[0]), min(total - 1, scene[1]))
    avail = e - s + 1
    if avail >= main + motion:
        length, has_motion = main + motion, True
    elif avail >= main and not always_use_motion:
        length, has_motion = main, False
    else:
        return None
    return Window(start=s + int(rng.integers(0, avail - length + 1)), has_motion=has_motion, length=length)


def reference_frame_index(total: int, start: int, length: int, rng: np.random.Generator, gap: int = REF_GAP) -> int:
    """Uniform over [0, start-gap) U [start+length+gap, total); if empty, uniform inside the window."""
    n1 = max(0, start - gap)
    lo2 = start + length + gap
    n2 = max(0, total - lo2)
    if n1 + n2 > 0:
        k = int(rng.integers(0, n1 + n2))
        return k if k < n1 else lo2 + (k - n1)
    return start + int(rng.integers(0, length))


def pose_index(i: int, t_pose: int, t25: int) -> int:
    """Skeleton index of 25 fps frame i: round(i*(T_pose-1)/(T25-1)), clamped to [0, T_pose-1]."""
    if t25 <= 1 or t_pose <= 1:
        return 0
    return min(t_pose - 1, max(0, int(round(i * (t_pose - 1) / (t25 - 1)))))
