"""Stage 5, one person with a visible face (docs/curation.md): mediapipe face detection on frames sampled at
``sample_fps``, linked into identity tracks (talkverse.vision.faces). Rejects: ``two_or_more_faces`` (2+ faces in more
than ``max_multi`` of the samples), ``no_face`` (exactly one face in fewer than ``min_present``), ``unstable_track``
(the main track covers fewer than ``min_track``: the identity switched or the face jumped), ``face_too_small``."""

from __future__ import annotations

import numpy as np

from ..vision.faces import detect_faces, face_tracks, select_track
from .clipio import read_clip_frames
from .records import add_scores, reject

STAGE = "face"


def face_measures(frames: np.ndarray, cfg) -> dict[str, float]:
    c = cfg.face
    per_frame = detect_faces(frames, min_score=c.min_score)
    n = max(1, len(per_frame))
    counts = np.array([len(f) for f in per_frame])
    main = select_track(face_tracks(per_frame, min_iou=c.track_iou), "largest")
    short = min(frames.shape[1:3])
    return {"faces_mean": float(counts.mean()) if len(counts) else 0.0,
            "one_face": float((counts == 1).sum() / n), "multi_face": float((counts >= 2).sum() / n),
            "track_cover": (len(main.faces) / n) if main else 0.0,
            "face_size": (main.median_size / short) if main else 0.0}


class FaceStage:
    """A Ray actor (the detector graph is built per clip; the actor keeps mediapipe imported)."""

    def __init__(self, cfg):
        self.cfg = cfg

    def __call__(self, row: dict) -> dict:
        if row["stage"]:
            return row
        c = self.cfg.face
        m = face_measures(read_clip_frames(row, fps=25, every=max(1, round(25 / c.sample_fps))), self.cfg)
        add_scores(row, **m)
        if m["multi_face"] > c.max_multi:
            return reject(row, STAGE, "two_or_more_faces", f"2+ faces in {m['multi_face']:.0%} of the frames")
        if m["one_face"] < c.min_present:
            return reject(row, STAGE, "no_face", f"one face in {m['one_face']:.0%} of the frames")
        if m["track_cover"] < c.min_track:
            return reject(row, STAGE, "unstable_track", f"main track covers {m['track_cover']:.0%}")
        if m["face_size"] < c.min_size_frac:
            return reject(row, STAGE, "face_too_small", f"face {m['face_size']:.2f} of the shorter side")
        return row
