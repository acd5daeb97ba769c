"""2D whole-body skeletons in the DWPose layout (training.md §2.4, §7; docs/curation.md "Skeletons").

The dataset reads ``keypoints_info`` float32 (T, 1, 133, 3) = (x, y, score) in pixels over the COCO-WholeBody slots
(0-16 body, 17-22 feet, 23-90 face, 91-111 left hand, 112-132 right hand) and ``person_bbox_xyxy`` (T, 1, 4).

Two sources:

* ``rtmlib`` DWPose/RTMW (``rtmlib_wholebody``) when the user gives its detector and pose ONNX files: the real 133
  points and scores (the person with the largest box when several are found).
* mediapipe (``mediapipe_wholebody``, the default, weights in the wheel): Pose (33 points, full model), FaceMesh
  (468) and Hands (21 each) mapped onto the 133 slots by :data:`POSE_TO_COCO`, :data:`FEET`, :data:`MESH_TO_68`
  and the hand order (mediapipe's 21 hand points are in the COCO-WholeBody hand order). A slot mediapipe has no point
  for (the small toes) has score 0. Scores: pose = the landmark's visibility; face and hand points = 1 where found.
  Hands are assigned to the left/right slots by the nearest pose wrist (mediapipe's handedness label assumes a
  mirrored selfie image). The person box is the extent of the points with score > 0.3, padded by 10 %.
"""

from __future__ import annotations

import numpy as np

from .mouth import MEDIAPIPE_INSTALL_HINT

NUM_KEYPOINTS = 133
FACE_SLOTS = range(23, 91)
LEFT_HAND_SLOTS = range(91, 112)
RIGHT_HAND_SLOTS = range(112, 133)

# COCO body slot -> mediapipe Pose landmark: nose, eyes (L, R), ears, shoulders, elbows, wrists, hips, knees, ankles.
POSE_TO_COCO = {0: 0, 1: 2, 2: 5, 3: 7, 4: 8, 5: 11, 6: 12, 7: 13, 8: 14, 9: 15, 10: 16, 11: 23, 12: 24, 13: 25,
                14: 26, 15: 27, 16: 28}
# COCO-WholeBody feet slot -> mediapipe Pose landmark (big toe <- foot index, heel <- heel; small toes: none).
FEET = {17: 31, 19: 29, 20: 32, 22: 30}
# The 68 iBUG face points (jaw 17, brows 5+5, nose 4+5, eyes 6+6, outer lip 12, inner lip 8) -> FaceMesh indices.
MESH_TO_68 = (162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,
              71, 63, 105, 66, 107, 336, 296, 334, 293, 301,
              168, 197, 5, 4, 75, 97, 2, 326, 305,
              33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
              61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
              78, 82, 13, 312, 308, 317, 14, 87)
_MP_LEFT_WRIST, _MP_RIGHT_WRIST = 15, 16


def person_box(kp: np.ndarray, h: int, w: int, min_score: float = 0.3, pad: float = 0.1) -> np.ndarray:
    """[133, 3] -> (x0, y0, x1, y1) over the points with score > ``min_score``, padded, clipped; NaN if none."""
    ok = kp[:, 2] > min_score
    if not ok.any():
        return np.full(4, np.nan, np.float32)
    x0, y0 = kp[ok, 0].min(), kp[ok, 1].min()
    x1, y1 = kp[ok, 0].max(), kp[ok, 1].max()
    px, py = pad * (x1 - x0), pad * (y1 - y0)
    return np.array([max(0, x0 - px), max(0, y0 - py), min(w, x1 + px), min(h, y1 + py)], np.float32)


def _import_solutions():
    try:
        from mediapipe.python.solutions import face_mesh, hands, pose  # noqa: PLC0415
    except Exception as e:
        raise ImportError(f"{MEDIAPIPE_INSTALL_HINT} [import failed: {type(e).__name__}: {e}]") from e
    return pose, face_mesh, hands


def mediapipe_wholebody(frames) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 frames [T, H, W, 3] (temporal order, video-mode tracking) -> (keypoints_info (T, 1, 133, 3),
    person_bbox_xyxy (T, 1, 4)) float32 in pixels."""
    frames = np.asarray(frames)
    pose, face_mesh, hands = _import_solutions()
    t_len, h, w = frames.shape[:3]
    kps = np.zeros((t_len, 1, NUM_KEYPOINTS, 3), np.float32)
    boxes = np.full((t_len, 1, 4), np.nan, np.float32)
    scale = np.array([w, h], np.float32)
    with pose.Pose(static_image_mode=False, model_complexity=1) as po, \
            face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1) as fm, \
            hands.Hands(static_image_mode=False, max_num_hands=2, model_complexity=0) as ha:
        for t, frame in enumerate(frames):
            img = np.ascontiguousarray(frame)
            kp = kps[t, 0]
            wrists = None
            r = po.process(img).pose_landmarks
            if r is not None:
                lm = r.landmark
                for slot, j in {**POSE_TO_COCO, **FEET}.items():
                    kp[slot] = (lm[j].x * w, lm[j].y * h, lm[j].visibility)
                wrists = np.array([[lm[j].x * w, lm[j].y * h] for j in (_MP_LEFT_WRIST, _MP_RIGHT_WRIST)])
            r = fm.process(img).multi_face_landmarks
            if r:
                lm = r[0].landmark
                for slot, j in zip(FACE_SLOTS, MESH_TO_68):
                    kp[slot] = (lm[j].x * w, lm[j].y * h, 1.0)
            r = ha.process(img)
            for k, hand in enumerate(r.multi_hand_landmarks or []):
                pts = np.array([(p.x, p.y) for p in hand.landmark], np.float32) * scale
                if wrists is not None:
                    left = np.linalg.norm(pts[0] - wrists[0]) <= np.linalg.norm(pts[0] - wrists[1])
                else:  # no body: mediapipe's (mirrored) label "Left" is the person's right hand
                    left = r.multi_handedness[k].classification[0].label == "Right"
                slots = LEFT_HAND_SLOTS if left else RIGHT_HAND_SLOTS
                kp[slots.start:slots.stop] = np.concatenate([pts, np.ones((21, 1), np.float32)], 1)
            boxes[t, 0] = person_box(kp, h, w)
    return kps, boxes


def rtmlib_wholebody(frames, det_onnx: str, pose_onnx: str, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """DWPose/RTMW through rtmlib with the user's ONNX files -> the same two arrays as :func:`mediapipe_wholebody`.
    Needs ``pip install rtmlib onnxruntime``."""
    try:
        from rtmlib import Wholebody  # noqa: PLC0415
    except Exception as e:
        raise ImportError(f"rtmlib is not installed (pip install rtmlib onnxruntime) [{type(e).__name__}: {e}]") from e
    model = Wholebody(det=str(det_onnx), det_input_size=(640, 640), pose=str(pose_onnx), pose_input_size=(288, 384),
                      backend="onnxruntime", device=device)
    frames = np.asarray(frames)
    t_len, h, w = frames.shape[:3]
    kps = np.zeros((t_len, 1, NUM_KEYPOINTS, 3), np.float32)
    boxes = np.full((t_len, 1, 4), np.nan, np.float32)
    for t, frame in enumerate(frames):
        points, scores = model(np.ascontiguousarray(frame[..., ::-1]))  # rtmlib takes BGR
        if len(points):
            extent = [np.ptp(p[:, 0]) * np.ptp(p[:, 1]) for p in points]
            k = int(np.argmax(extent))
            kps[t, 0] = np.concatenate([points[k], scores[k][:, None]], 1)
            boxes[t, 0] = person_box(kps[t, 0], h, w)
    return kps, boxes
