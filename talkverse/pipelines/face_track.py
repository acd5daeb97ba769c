"""The face to dub over a source video: one box per frame, or none where the face is lost (issue 20, docs/inference.md
"Dubbing only the face").

Three sources, one result (:class:`DubTrack`, boxes [T, 4] xyxy pixels, NaN rows where the face is lost):

* the detector (:func:`track_from_detector`): mediapipe's full-range face detector and the identity tracks of
  ``talkverse.vision.faces`` (the curation face stage), the chosen track's boxes smoothed over time;
* a DWPose-layout npz (:func:`track_from_keypoints`): ``keypoints_info`` (T, P, 133, 3), the box of each person's face
  points (slots 23-90) with score > 0.3;
* a box list (:func:`track_from_boxes`): [T, 4] or [T, K, 4] (K faces), NaN rows for "no face".

``face_index`` picks one face when there are several: faces ordered left to right by their mean box centre
(``order="left-to-right"``) or from the largest median box down (``order="size"``). A frame whose box is missing
passes through the dub unchanged; :attr:`DubTrack.lost` counts them for the log.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass

import numpy as np

FACE_ORDERS = ("left-to-right", "size")
DUB_REGIONS = ("full", "face", "mouth")  # "full": the whole frame (plain dubbing); face / mouth: this track's region
FACE_SLOTS = slice(23, 91)  # the 68 face points of the COCO-WholeBody layout
MOUTH_SLOTS = slice(23 + 48, 23 + 68)  # iBUG 48-67: the outer and inner lips
MIN_POINT_SCORE = 0.3


class FaceTrackError(ValueError):
    """No face to dub: none found anywhere, or ``face_index`` beyond the faces there are. One line."""


@dataclass
class DubTrack:
    """``boxes`` float [T, 4] (x0, y0, x1, y1) pixels, NaN rows where the face is lost; ``mouths`` the same for the
    lips where landmarks are known (else None); ``num_faces``: how many faces the index chose among."""

    boxes: np.ndarray
    mouths: np.ndarray | None = None
    num_faces: int = 1

    @property
    def present(self) -> np.ndarray:
        """bool [T]: frames with a face."""
        return np.isfinite(self.boxes).all(1)

    @property
    def lost(self) -> int:
        """Frames without a face (passed through unchanged)."""
        return int((~self.present).sum())

    def __len__(self) -> int:
        return len(self.boxes)


def order_faces(boxes: np.ndarray, order: str = "left-to-right") -> list[int]:
    """Face slots of ``boxes`` [T, K, 4] (NaN where absent) in ``order``; slots never present are left out."""
    if order not in FACE_ORDERS:
        raise ValueError(f"dub_face_order must be one of {', '.join(FACE_ORDERS)}, got {order!r}")
    seen = [k for k in range(boxes.shape[1]) if np.isfinite(boxes[:, k]).all(1).any()]

    def key(k):
        b = boxes[np.isfinite(boxes[:, k]).all(1), k]
        if order == "left-to-right":
            return float(np.mean(0.5 * (b[:, 0] + b[:, 2])))
        return -float(np.median(np.minimum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])))

    return sorted(seen, key=key)


def pick_face(boxes: np.ndarray, face_index: int = 0, order: str = "left-to-right", what: str = "the video",
              mouths: np.ndarray | None = None) -> DubTrack:
    """One face's :class:`DubTrack` from ``boxes`` [T, 4] or [T, K, 4] (``mouths`` alike, optional)."""
    boxes = np.asarray(boxes, np.float64)
    if boxes.ndim == 2:
        boxes = boxes[:, None]
        mouths = None if mouths is None else np.asarray(mouths, np.float64)[:, None]
    if boxes.ndim != 3 or boxes.shape[-1] != 4:
        raise FaceTrackError(f"{what}: face boxes must be [T, 4] or [T, K, 4], got shape {tuple(boxes.shape)}")
    faces = order_faces(boxes, order)
    if not faces:
        raise FaceTrackError(f"{what}: no face found in any of its {boxes.shape[0]} frames")
    if not 0 <= face_index < len(faces):
        raise FaceTrackError(f"{what}: --dub_face_index {face_index} is out of range: {len(faces)} face"
                             f"{'s' if len(faces) != 1 else ''} found (indices 0-{len(faces) - 1}, {order})")
    k = faces[face_index]
    return DubTrack(boxes[:, k].copy(), None if mouths is None else np.asarray(mouths)[:, k].copy(), len(faces))


def smooth_boxes(boxes: np.ndarray, radius: int = 2) -> np.ndarray:
    """A centred moving average of the box corners over the present frames within ``radius`` frames (lost frames
    stay NaN and do not contribute)."""
    out = boxes.copy()
    ok = np.isfinite(boxes).all(1)
    for t in np.flatnonzero(ok):
        lo, hi = max(0, t - radius), min(len(boxes), t + radius + 1)
        out[t] = boxes[lo:hi][ok[lo:hi]].mean(0)
    return out


def track_from_boxes(boxes, face_index: int = 0, order: str = "left-to-right", what: str = "the box list") -> DubTrack:
    """A box list [T, 4] or [T, K, 4] (pixels, NaN = no face) -> the chosen face's track."""
    return pick_face(np.asarray(boxes, np.float64), face_index, order, what)


def _points_box(pts: np.ndarray) -> np.ndarray:
    ok = pts[:, 2] > MIN_POINT_SCORE
    if not ok.any():
        return np.full(4, np.nan)
    return np.array([pts[ok, 0].min(), pts[ok, 1].min(), pts[ok, 0].max(), pts[ok, 1].max()], np.float64)


def track_from_keypoints(keypoints, face_index: int = 0, order: str = "left-to-right",
                         what: str = "the keypoints") -> DubTrack:
    """DWPose-layout ``keypoints_info`` (T, P, 133, 3) -> the face box (extent of the face points, widened to a
    square-ish head box: 20 % on the sides, 40 % above for the forehead) and the lips' box of person ``face_index``."""
    kp = np.asarray(keypoints, np.float64)
    if kp.ndim != 4 or kp.shape[2:] != (133, 3):
        raise FaceTrackError(f"{what}: keypoints_info must be (T, P, 133, 3), got shape {tuple(kp.shape)}")
    t_len, persons = kp.shape[:2]
    boxes = np.full((t_len, persons, 4), np.nan)
    mouths = np.full((t_len, persons, 4), np.nan)
    for t in range(t_len):
        for p in range(persons):
            b = _points_box(kp[t, p, FACE_SLOTS])
            if np.isfinite(b).all():
                w, h = b[2] - b[0], b[3] - b[1]
                boxes[t, p] = (b[0] - 0.2 * w, b[1] - 0.4 * h, b[2] + 0.2 * w, b[3] + 0.05 * h)
                mouths[t, p] = _points_box(kp[t, p, MOUTH_SLOTS])
    return pick_face(boxes, face_index, order, what, mouths)


@contextlib.contextmanager
def _native_stderr_silenced():
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def track_from_detector(frames, face_index: int = 0, order: str = "left-to-right", smooth_radius: int = 2,
                        what: str = "the video") -> DubTrack:
    """RGB uint8 frames [T, H, W, 3] -> the chosen face's smoothed track, from mediapipe's face detector linked into
    identity tracks (``talkverse.vision.faces``). A face whose track breaks (a cut, a long occlusion) is a new face."""
    from ..vision.faces import detect_faces, face_tracks

    with _native_stderr_silenced():  # TFLite / absl print C++ lines on fd 2; a bad input must stay one line
        per_frame = detect_faces(frames)
    tracks = face_tracks(per_frame)
    boxes = np.full((len(per_frame), max(1, len(tracks)), 4), np.nan)
    for k, tr in enumerate(tracks):
        for t, face in zip(tr.frames, tr.faces):
            boxes[t, k] = face.box
    track = pick_face(boxes, face_index, order, what)
    track.boxes = smooth_boxes(track.boxes, smooth_radius)
    return track
