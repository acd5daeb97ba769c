"""Stage 8, skeletons (docs/curation.md): ``dwpose/<clip_id>.npz`` with ``keypoints_info`` float32 (T, 1, 133, 3)
and ``person_bbox_xyxy`` float32 (T, 1, 4) in the pixels of the encoded clip, the layout the dataset reads for the
ROI loss (training.md §7). T = the encoded clip's frames at ``skeleton.fps`` (25: every frame), evenly spaced from
its first to its last frame, which is how the dataset's pose index interpolates. mediapipe by default, rtmlib DWPose
with the user's ONNX files (talkverse.vision.wholebody)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..media.video import read_video_frames
from .encode import video_path
from .records import add_scores, reject

STAGE = "skeleton"


def dwpose_path(out: Path, clip_id: str) -> Path:
    return Path(out) / "dwpose" / f"{clip_id}.npz"


def pose_frame_indices(t25: int, fps: float) -> np.ndarray:
    """The encoded frames the skeletons are computed on: T_pose = max(2, round(t25 * fps / 25)) of them, evenly
    spaced with the first and the last frame included."""
    t_pose = min(t25, max(2, int(round(t25 * fps / 25.0))))
    return np.unique(np.round(np.linspace(0, t25 - 1, t_pose)).astype(int))


def save_npz(path: Path, **arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".partial.npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class SkeletonStage:
    """A Ray actor."""

    def __init__(self, cfg, out: str):
        self.cfg, self.out = cfg, Path(out)
        c = cfg.skeleton
        if c.backend not in ("mediapipe", "rtmlib"):
            raise ValueError(f"skeleton.backend: {c.backend!r}, expected mediapipe or rtmlib")

    def __call__(self, row: dict) -> dict:
        if row["stage"]:
            return row
        from ..vision.wholebody import mediapipe_wholebody, rtmlib_wholebody

        c = self.cfg.skeleton
        frames, _ = read_video_frames(video_path(self.out, row["clip_id"]))
        idx = pose_frame_indices(len(frames), c.fps)
        if c.backend == "rtmlib":
            kp, bb = rtmlib_wholebody(frames[idx], c.det_onnx, c.pose_onnx)
        else:
            kp, bb = mediapipe_wholebody(frames[idx])
        face_ok = float((kp[:, 0, 23:91, 2] > 0).any(axis=1).mean())
        add_scores(row, skeleton_frames=len(idx), skeleton_face=face_ok)
        if face_ok < 0.5:
            return reject(row, STAGE, "no_skeleton", f"face points in {face_ok:.0%} of the skeleton frames")
        save_npz(dwpose_path(self.out, row["clip_id"]), keypoints_info=kp, person_bbox_xyxy=bb)
        return row
