"""Synthetic talking faces, the rendering half (evaluation.md §6): per-seed identities and anti-aliased frames with
exact ground truth (68 face keypoints, person box, mouth box per frame). numpy-only and deterministic per seed; every
pixel quantity is in the §6 recipe's 64-px units, scaled by ``size / 64``."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ...media.constants import FPS

BASE = 64.0  # the §6 recipe's resolution; pixel quantities below are in these units and scaled by size / BASE

MOUTH_INTERIOR_RGB = (70.0, 10.0, 20.0)
EYE_RGB = (25.0, 20.0, 30.0)


# ----------------------------------------------------------------------------------------------------- identity
@dataclass(frozen=True)
class FaceIdentity:
    """One synthetic person. Lengths are in 64-px units (scaled by size/64 at render time); colours are RGB 0..255."""

    background: tuple[int, int, int]
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    rx: float            # face ellipse radii
    ry: float
    eye: float           # eye half-spacing
    mouth: float         # mouth half-width (closed)
    hair_frac: float     # hair height as a fraction of ry
    sway: float          # head sway amplitude
    phase: float         # head sway phase (rad)
    seed: int = 0

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "FaceIdentity":
        d = json.loads(text)
        for k in ("background", "skin", "hair"):
            d[k] = tuple(int(v) for v in d[k])
        return cls(**d)


def draw_identity(seed: int) -> FaceIdentity:
    """The §6 identity recipe: background U{30..225}, skin U{90..239}, hair U{0..119} (per channel); rx U(15,21),
    ry U(19,25); eye half-spacing U(5.5,8); mouth half-width U(5,8); hair fraction U(0.3,0.7); sway U(0.5,2) px,
    phase U(0,2π)."""
    rng = np.random.default_rng([int(seed), 0x1D])
    bg = tuple(int(v) for v in rng.integers(30, 226, 3))
    skin = tuple(int(v) for v in rng.integers(90, 240, 3))
    hair = tuple(int(v) for v in rng.integers(0, 120, 3))
    return FaceIdentity(background=bg, skin=skin, hair=hair, rx=float(rng.uniform(15, 21)),
                        ry=float(rng.uniform(19, 25)), eye=float(rng.uniform(5.5, 8)), mouth=float(rng.uniform(5, 8)),
                        hair_frac=float(rng.uniform(0.3, 0.7)), sway=float(rng.uniform(0.5, 2)),
                        phase=float(rng.uniform(0, 2 * np.pi)), seed=int(seed))


# ----------------------------------------------------------------------------------------------------- rendering
def _coverage(cx, cy, rx, ry, H: int, W: int, half: bool = False, ss: int = 4):
    """Anti-aliased coverage of ellipses, one per frame: (alpha [T, y1-y0, x1-x0] float32, (y0, y1, x0, x1)).

    Exact vertical overlap per sub-column with ``ss`` sub-columns per pixel. Pixel i covers [i-0.5, i+0.5].
    ``half`` keeps only the upper half (y <= cy).
    """
    cx, cy, rx, ry = (np.asarray(v, np.float64).reshape(-1) for v in (cx, cy, rx, ry))
    T = max(len(cx), len(cy), len(rx), len(ry))
    cx, cy, rx, ry = (np.broadcast_to(v, (T,)) for v in (cx, cy, rx, ry))
    x0 = max(0, int(np.floor((cx - rx).min() - 0.5)))
    x1 = min(W, int(np.ceil((cx + rx).max() + 1.5)))
    y0 = max(0, int(np.floor((cy - ry).min() - 0.5)))
    y1 = min(H, int(np.ceil((cy if half else cy + ry).max() + 1.5)))
    if x1 <= x0 or y1 <= y0:
        return np.zeros((T, 0, 0), np.float32), (0, 0, 0, 0)
    xs = x0 - 0.5 + (np.arange((x1 - x0) * ss) + 0.5) / ss                         # [Wss]
    dx = (xs[None, :] - cx[:, None]) / rx[:, None]                                  # [T, Wss]
    h = ry[:, None] * np.sqrt(np.clip(1.0 - dx * dx, 0.0, None))
    top = (cy[:, None] - h)[:, None, :]                                             # [T, 1, Wss]
    bot = (cy[:, None] if half else cy[:, None] + h)[:, None, :]
    ys = np.arange(y0, y1, dtype=np.float64)[None, :, None]                          # [1, Hb, 1]
    ov = np.clip(np.minimum(ys + 0.5, bot) - np.maximum(ys - 0.5, top), 0.0, 1.0)   # [T, Hb, Wss]
    a = ov.reshape(T, y1 - y0, x1 - x0, ss).mean(-1)
    return a.astype(np.float32), (y0, y1, x0, x1)


def _paint(img: np.ndarray, alpha_box, color) -> None:
    a, (y0, y1, x0, x1) = alpha_box
    if a.size == 0:
        return
    a = a[..., None]
    reg = img[:, y0:y1, x0:x1]
    reg += a * (np.asarray(color, np.float32) - reg)


@dataclass
class RenderResult:
    """Frames uint8 [T,H,W,3]; keypoints (T,1,133,3) DWPose layout (face 23..90); person_bbox_xyxy (T,4);
    mouth_box (T,4) int xyxy (exclusive x1/y1) of constant size around the mouth at its widest/tallest;
    blinks: start frames of the 3-frame blinks."""

    frames: np.ndarray
    keypoints: np.ndarray
    person_bbox: np.ndarray
    mouth_box: np.ndarray
    blinks: np.ndarray

    # tuple-style unpacking: frames, keypoints, bbox, mouth_box = render_clip(...)
    def __iter__(self):
        return iter((self.frames, self.keypoints, self.person_bbox, self.mouth_box))


def _geometry(identity: FaceIdentity, openness: np.ndarray, size: int, blink_starts: Sequence[int],
              still: bool = False):
    s = size / BASE
    T = len(openness)
    t = np.zeros(T) if still else np.arange(T) / FPS
    cx = s * (32.0 + identity.sway * np.sin(2 * np.pi * 0.35 * t + identity.phase))
    cy = s * (34.0 + 0.6 * np.sin(2 * np.pi * 0.23 * t))
    o = np.clip(np.asarray(openness, np.float64), 0, 1)
    mh = s * (0.6 + 6.0 * o)
    mw = s * identity.mouth * (1.0 - 0.25 * o)
    eye_h = np.full(T, 2.0 * s)
    for b in blink_starts:
        eye_h[int(b):int(b) + 3] = 0.4 * s
    return dict(s=s, cx=cx, cy=cy, mh=mh, mw=mw, eye_h=eye_h, my=cy + 9.0 * s)


def _blink_starts(seconds: float, T: int, rng: np.random.Generator) -> np.ndarray:
    k = max(1, int(seconds // 3))
    if T < 3:
        return np.zeros(0, np.int64)
    return np.sort(rng.choice(np.arange(T - 2), size=min(k, T - 2), replace=False))


def _keypoints(identity: FaceIdentity, g: dict, size: int) -> tuple[np.ndarray, np.ndarray]:
    """68 iBUG-ordered face points (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, outer lips 48-59, inner 60-67)."""
    s, cx, cy, my, mw, mh = g["s"], g["cx"], g["cy"], g["my"], g["mw"], g["mh"]
    T = len(cx)
    rx, ry = identity.rx * s, identity.ry * s
    pts = np.zeros((T, 68, 2))
    a = np.linspace(0.05 * np.pi, 0.95 * np.pi, 17)[::-1]           # jaw: right ear -> chin -> left ear (y down)
    pts[:, 0:17, 0] = cx[:, None] - rx * np.cos(a)[None]
    pts[:, 0:17, 1] = cy[:, None] + ry * np.sin(a)[None]
    ey = cy - 3.0 * s
    e = identity.eye * s
    for side, (lo, hi) in ((-1, (17, 22)), (1, (22, 27))):          # brows
        xs = np.linspace(-0.8, 0.8, 5) * 2.6 * s
        pts[:, lo:hi, 0] = cx[:, None] + side * e + xs[None]
        pts[:, lo:hi, 1] = (ey - 3.5 * s)[:, None] - (1.0 - (xs / (2.6 * s)) ** 2)[None] * 0.8 * s
    pts[:, 27:31, 0] = cx[:, None]                                   # nose bridge
    pts[:, 27:31, 1] = ey[:, None] + np.linspace(0.0, 4.5, 4)[None] * s
    pts[:, 31:36, 0] = cx[:, None] + np.linspace(-2.0, 2.0, 5)[None] * s
    pts[:, 31:36, 1] = (cy + 3.0 * s)[:, None]
    eye_ang = np.array([np.pi, 2 * np.pi / 3, np.pi / 3, 0.0, -np.pi / 3, -2 * np.pi / 3])
    for k, side in enumerate((-1, 1)):                               # eyes: 36-41 (right of the person), 42-47
        lo = 36 + 6 * k
        pts[:, lo:lo + 6, 0] = cx[:, None] + side * e + 2.2 * s * np.cos(eye_ang)[None]
        pts[:, lo:lo + 6, 1] = ey[:, None] - g["eye_h"][:, None] * np.sin(eye_ang)[None]
    ang12 = np.pi - np.arange(12) * (2 * np.pi / 12)                 # outer lips from the left corner, clockwise
    pts[:, 48:60, 0] = cx[:, None] + (mw + s)[:, None] * np.cos(ang12)[None]
    pts[:, 48:60, 1] = my[:, None] - (mh + s)[:, None] * np.sin(ang12)[None]
    ang8 = np.pi - np.arange(8) * (2 * np.pi / 8)
    pts[:, 60:68, 0] = cx[:, None] + mw[:, None] * np.cos(ang8)[None]
    pts[:, 60:68, 1] = my[:, None] - mh[:, None] * np.sin(ang8)[None]
    kp = np.zeros((T, 1, 133, 3), np.float32)
    kp[:, 0, 23:91, :2] = pts
    kp[:, 0, 23:91, 2] = 1.0
    kp[:, 0, 0, :2] = pts[:, 30]                                     # body "nose" = nose tip
    kp[:, 0, 0, 2] = 1.0
    top = cy - 0.55 * ry - identity.hair_frac * ry
    bbox = np.stack([cx - 1.05 * rx, np.minimum(top, cy - ry), cx + 1.05 * rx, np.full(T, size - 1.0)], 1)
    bbox = np.clip(bbox, 0, size - 1).astype(np.float32)
    return kp, bbox


def _mouth_box(identity: FaceIdentity, g: dict, size: int) -> np.ndarray:
    s = g["s"]
    hw = int(math.ceil(identity.mouth * s + s + 1))                 # lips half-width at openness 0, + 1 px margin
    hh = int(math.ceil((0.6 + 6.0) * s + s + 1))                     # lips half-height at openness 1, + 1 px margin
    x0 = np.round(g["cx"]).astype(int) - hw
    y0 = np.round(g["my"]).astype(int) - hh
    box = np.stack([x0, y0, x0 + 2 * hw + 1, y0 + 2 * hh + 1], 1)
    box[:, [0, 2]] = np.clip(box[:, [0, 2]], 0, size)
    box[:, [1, 3]] = np.clip(box[:, [1, 3]], 0, size)
    return box.astype(np.int32)


def render_clip(identity: FaceIdentity, openness: np.ndarray, size: int = 128, seed: int = 0,
                blinks: bool = True, still: bool = False) -> RenderResult:
    """Render T = len(openness) frames of ``identity`` at size×size (§6 recipe, lengths scaled by size/64).

    Face centre cx = 32 + sway·sin(2π·0.35·t + phase), cy = 34 + 0.6·sin(2π·0.23·t); skin ellipse (rx, ry); hair =
    upper half-ellipse at cy − 0.55·ry with radii (1.05·rx, hair·ry); eyes at (cx ± eye, cy − 3), radii (2.2, 2.0)
    or 0.4 high during max(1, ⌊seconds/3⌋) random 3-frame blinks (drawn from ``seed``); mouth at (cx, cy + 9): lips
    (mw+1, mh+1) in 0.6·skin, interior (mw, mh) RGB (70,10,20), mh = 0.6 + 6·openness, mw = mouth·(1 − 0.25·openness).
    ``still``: the head stays at its t = 0 pose (no sway, no bob), as in :func:`reference_image`.
    """
    openness = np.asarray(openness, np.float64).reshape(-1)
    T = len(openness)
    rng = np.random.default_rng([int(seed), 0xB11])
    bl = _blink_starts(T / FPS, T, rng) if blinks else np.zeros(0, np.int64)
    g = _geometry(identity, openness, size, bl, still)
    s, cx, cy, my = g["s"], g["cx"], g["cy"], g["my"]
    rx, ry = identity.rx * s, identity.ry * s
    img = np.empty((T, size, size, 3), np.float32)
    img[:] = np.asarray(identity.background, np.float32)
    skin = np.asarray(identity.skin, np.float32)
    _paint(img, _coverage(cx, cy, rx, ry, size, size), skin)
    _paint(img, _coverage(cx, cy - 0.55 * ry, 1.05 * rx, identity.hair_frac * ry, size, size, half=True),
           identity.hair)
    for side in (-1, 1):
        _paint(img, _coverage(cx + side * identity.eye * s, cy - 3.0 * s, 2.2 * s, g["eye_h"], size, size), EYE_RGB)
    _paint(img, _coverage(cx, my, g["mw"] + s, g["mh"] + s, size, size), 0.6 * skin)
    _paint(img, _coverage(cx, my, g["mw"], g["mh"], size, size), MOUTH_INTERIOR_RGB)
    frames = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    kp, bbox = _keypoints(identity, g, size)
    return RenderResult(frames=frames, keypoints=kp, person_bbox=bbox, mouth_box=_mouth_box(identity, g, size),
                        blinks=bl)


def reference_image(identity: FaceIdentity, size: int = 128) -> np.ndarray:
    """The closed-mouth (openness 0), eyes-open frame 0 of ``identity``: uint8 [H, W, 3] (a generation reference)."""
    return render_clip(identity, np.zeros(1), size=size, blinks=False).frames[0]


def mouth_readout(frames: np.ndarray, mouth_box: Optional[np.ndarray] = None) -> np.ndarray:
    """Model-free openness readout [T]: the fraction of "dark red" pixels (35 < R < 140, G < 60, B < 70, R − G > 25)
    in the lower half of each frame, or inside ``mouth_box`` (xyxy, exclusive end; [4] or per frame [T, 4]).

    ``frames``: uint8 [T, H, W, 3] (or [H, W, 3]).
    """
    f = np.asarray(frames)
    if f.ndim == 3:
        f = f[None]
    r, gch, b = (f[..., k].astype(np.int16) for k in range(3))
    red = (r > 35) & (r < 140) & (gch < 60) & (b < 70) & (r - gch > 25)
    T, H = red.shape[:2]
    if mouth_box is None:
        return red[:, H // 2:].mean((1, 2)).astype(np.float32)
    box = np.broadcast_to(np.asarray(mouth_box, np.int64).reshape(-1, 4), (T, 4))
    out = np.zeros(T, np.float32)
    for k, (x0, y0, x1, y1) in enumerate(box):
        reg = red[k, y0:y1, x0:x1]
        out[k] = reg.mean() if reg.size else 0.0
    return out


EYE_POINTS = (slice(23 + 36, 23 + 42), slice(23 + 42, 23 + 48))  # DWPose slots of iBUG eye points 36-41 and 42-47
EYE_DARK_LUMA = 60.0  # the eyes are RGB (25, 20, 30), luma ~22; skin is >= 90 on every channel


def eye_boxes(keypoints: np.ndarray, margin: float = 1.0) -> np.ndarray:
    """int xyxy boxes (exclusive end) of both eyes per frame, [T, 2, 4], from DWPose keypoints (T, 1, 133, 3)."""
    kp = np.asarray(keypoints, np.float64)[:, 0]
    boxes = np.zeros((kp.shape[0], 2, 4), np.int64)
    for k, sl in enumerate(EYE_POINTS):
        pts = kp[:, sl, :2]
        boxes[:, k, :2] = np.floor(pts.min(axis=1) - margin)
        boxes[:, k, 2:] = np.ceil(pts.max(axis=1) + margin) + 1
    return boxes


def eye_readout(frames: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """Fraction of dark pixels (luma < 60) inside both eye boxes per frame, [T]: about 0.5 for open eyes in the
    ground truth, near 0 for a face whose eyes were lost (blurred into the skin). ``frames`` uint8 [T, H, W, 3]."""
    f = np.asarray(frames)
    luma = f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114
    boxes = eye_boxes(keypoints)
    H, W = luma.shape[1:]
    out = np.zeros(len(f), np.float32)
    for t in range(len(f)):
        dark, area = 0, 0
        for x0, y0, x1, y1 in boxes[min(t, len(boxes) - 1)]:
            reg = luma[t, max(0, y0):min(H, y1), max(0, x0):min(W, x1)]
            dark += int((reg < EYE_DARK_LUMA).sum())
            area += reg.size
        out[t] = dark / max(area, 1)
    return out
