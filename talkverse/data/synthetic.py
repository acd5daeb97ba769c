"""Procedural "talking face" dataset with exact ground truth (evaluation.md §6), in the TalkVerse training layout.

Everything is numpy-only and deterministic per seed. The §6 recipe is written for 64×64; here every pixel quantity
is scaled by ``size / 64`` so the same identity renders at 128×128 (the demo model's resolution) with the same
geometry.

Pieces:
- :class:`FaceIdentity` / :func:`draw_identity`: per-seed colours and face geometry (64-px units).
- :func:`babble_audio`: harmonic carrier × syllable gate (no dependency); :func:`espeak_audio`: espeak-ng speech
  with an RMS-envelope gate (optional, needs ``espeak-ng`` on PATH).
- :func:`openness_per_frame`: ground-truth mouth openness, the mean gate over each 40 ms frame.
- :func:`render_clip`: anti-aliased frames (exact per-column vertical coverage with 4 sub-columns per pixel, i.e.
  2-bit sub-pixel precision in x and exact in y), plus 68 face keypoints, person box and mouth box per frame.
- :func:`mouth_readout`: the model-free readout (fraction of "dark red" pixels).
- :func:`write_synthetic_dataset`: mp4 (H.264 + AAC) + DWPose npz + text embeddings + metadata.csv + ground truth.

Run ``python -m talkverse.data.synthetic --help`` (or ``scripts/make_synthetic_dataset.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

SR = 16000
FPS = 25
BASE = 64.0  # the §6 recipe's resolution; pixel quantities below are in these units and scaled by size / BASE

MOUTH_INTERIOR_RGB = (70.0, 10.0, 20.0)
EYE_RGB = (25.0, 20.0, 30.0)

__all__ = [
    "FaceIdentity", "draw_identity", "babble_audio", "espeak_audio", "openness_per_frame", "render_clip",
    "RenderResult", "mouth_readout", "reference_image", "write_synthetic_dataset", "clip_seeds", "main",
    "babble_gate", "load_ground_truth",
]


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


# ----------------------------------------------------------------------------------------------------- audio
def _carrier(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Harmonic carrier: f0 U(90,230) Hz, ±8 % vibrato at U(0.2,0.6) Hz, 11 harmonics at amplitude 1/k."""
    t = np.arange(n) / sr
    f0 = rng.uniform(90, 230)
    fv = rng.uniform(0.2, 0.6)
    f = f0 * (1.0 + 0.08 * np.sin(2 * np.pi * fv * t + rng.uniform(0, 2 * np.pi)))
    ph = 2 * np.pi * np.cumsum(f) / sr
    y = np.zeros(n)
    for k in range(1, 12):
        y += np.sin(k * ph) / k
    return y


def babble_gate(n: int, rng: np.random.Generator, sr: int = SR) -> tuple[np.ndarray, list[tuple[int, int, float]]]:
    """Syllable gate [n] in [0,1] and its segments (start, length, level) in samples.

    First onset U(0,300) ms; voiced segments U(60,250) ms with a sin^0.7 envelope × level U(0.3,1); gaps U(40,300) ms.
    """
    gate = np.zeros(n, np.float64)
    segs = []
    pos = int(rng.uniform(0, 0.300) * sr)
    while pos < n:
        length = int(rng.uniform(0.060, 0.250) * sr)
        level = float(rng.uniform(0.3, 1.0))
        u = (np.arange(length) + 0.5) / length
        env = level * np.sin(np.pi * u) ** 0.7
        end = min(n, pos + length)
        gate[pos:end] = env[: end - pos]
        segs.append((pos, length, level))
        pos += length + int(rng.uniform(0.040, 0.300) * sr)
    return gate, segs


def babble_audio(seconds: float, seed: int, sr: int = SR) -> tuple[np.ndarray, np.ndarray]:
    """(wave float32 [n], gate float32 [n]) with n = round(seconds·sr): carrier × gate, peak-normalised to 0.5,
    plus N(0, 0.003) noise. Needs nothing beyond numpy."""
    rng = np.random.default_rng([int(seed), 0xA0D])
    n = int(round(seconds * sr))
    gate, _ = babble_gate(n, rng, sr)
    y = _carrier(n, rng, sr) * gate
    peak = float(np.abs(y).max())
    if peak > 0:
        y = y * (0.5 / peak)
    y = y + rng.normal(0, 0.003, n)
    return y.astype(np.float32), gate.astype(np.float32)


_ESPEAK_VOICES = ("en+m1", "en+m3", "en+m5", "en+f1", "en+f2", "en+f4", "en-us+m2", "en-us+f3")
_SYLL = ("ba", "ma", "pa", "lo", "mi", "to", "ne", "su", "ka", "ri", "do", "wa", "fe", "vo", "ha", "ju")


def _babble_text(rng: np.random.Generator, words: int) -> str:
    return " ".join("".join(rng.choice(_SYLL, int(rng.integers(1, 4)))) for _ in range(words))


def espeak_audio(text: Optional[str], seed: int, sr: int = SR, seconds: Optional[float] = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Speech from espeak-ng (voice/speed/pitch varied by ``seed``) as (wave float32, gate float32 in [0,1]).

    ``text=None`` makes pseudo-words from the seed. The gate is the 10 ms RMS envelope (smoothed over 30 ms),
    divided by its maximum. With ``seconds`` the output is cut or zero-padded to round(seconds·sr) samples.
    Raises RuntimeError when espeak-ng is not installed.
    """
    exe = shutil.which("espeak-ng") or shutil.which("espeak")
    if exe is None:
        raise RuntimeError("espeak-ng not found on PATH; use audio='babble'")
    import soundfile as sf

    rng = np.random.default_rng([int(seed), 0xE5])
    if text is None:
        text = _babble_text(rng, max(3, int(round((seconds or 3.0) * 2.5))))
    voice = _ESPEAK_VOICES[int(rng.integers(len(_ESPEAK_VOICES)))]
    speed, pitch = int(rng.integers(130, 181)), int(rng.integers(30, 71))
    with tempfile.TemporaryDirectory() as td:
        wav = os.path.join(td, "s.wav")
        subprocess.run([exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", wav, text],
                       check=True, capture_output=True)
        y, in_sr = sf.read(wav, dtype="float32", always_2d=True)
    y = y.mean(1)
    if in_sr != sr:
        n_out = int(round(len(y) * sr / in_sr))
        y = np.interp(np.arange(n_out) * (in_sr / sr), np.arange(len(y)), y).astype(np.float32)
    if seconds is not None:
        n = int(round(seconds * sr))
        y = np.pad(y, (0, max(0, n - len(y))))[:n]
    peak = float(np.abs(y).max()) if len(y) else 0.0
    if peak > 0:
        y = y * (0.5 / peak)
    hop = sr // 100
    m = int(math.ceil(len(y) / hop))
    fr = np.pad(y, (0, m * hop - len(y))).reshape(m, hop)
    rms = np.sqrt((fr.astype(np.float64) ** 2).mean(1))
    rms = np.convolve(rms, np.ones(3) / 3, mode="same")
    rms = np.where(rms < 0.01 * max(rms.max(), 1e-12), 0.0, rms)
    env = rms / rms.max() if rms.max() > 0 else rms
    gate = np.interp(np.arange(len(y)), np.arange(m) * hop + hop / 2, env)
    return y.astype(np.float32), np.clip(gate, 0, 1).astype(np.float32)


def openness_per_frame(gate: np.ndarray, sr: int = SR, fps: int = FPS) -> np.ndarray:
    """Ground-truth openness [T] = the mean gate over each frame's 1/fps seconds (640 samples at 16 kHz / 25 fps).

    T = **ceil**(len(gate) / (sr/fps)); a trailing partial frame is the mean of the samples it has.
    (The dataset writer makes the audio exactly T·640 samples long, so there is no partial frame there.)
    """
    gate = np.asarray(gate, np.float64)
    spf = sr / fps
    if spf != int(spf):
        raise ValueError(f"sr/fps must be an integer, got {sr}/{fps}")
    spf = int(spf)
    T = int(math.ceil(len(gate) / spf))
    pad = T * spf - len(gate)
    g = np.pad(gate, (0, pad)).reshape(T, spf)
    cnt = np.full(T, spf, np.float64)
    if pad:
        cnt[-1] = spf - pad
    return np.clip(g.sum(1) / cnt, 0.0, 1.0).astype(np.float32)


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


def _geometry(identity: FaceIdentity, openness: np.ndarray, size: int, blink_starts: Sequence[int]):
    s = size / BASE
    T = len(openness)
    t = np.arange(T) / FPS
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
                blinks: bool = True) -> RenderResult:
    """Render T = len(openness) frames of ``identity`` at size×size (§6 recipe, lengths scaled by size/64).

    Face centre cx = 32 + sway·sin(2π·0.35·t + phase), cy = 34 + 0.6·sin(2π·0.23·t); skin ellipse (rx, ry); hair =
    upper half-ellipse at cy − 0.55·ry with radii (1.05·rx, hair·ry); eyes at (cx ± eye, cy − 3), radii (2.2, 2.0)
    or 0.4 high during max(1, ⌊seconds/3⌋) random 3-frame blinks (drawn from ``seed``); mouth at (cx, cy + 9): lips
    (mw+1, mh+1) in 0.6·skin, interior (mw, mh) RGB (70,10,20), mh = 0.6 + 6·openness, mw = mouth·(1 − 0.25·openness).
    """
    openness = np.asarray(openness, np.float64).reshape(-1)
    T = len(openness)
    rng = np.random.default_rng([int(seed), 0xB11])
    bl = _blink_starts(T / FPS, T, rng) if blinks else np.zeros(0, np.int64)
    g = _geometry(identity, openness, size, bl)
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


# ----------------------------------------------------------------------------------------------------- dataset
def clip_seeds(seed: int, index: int) -> dict[str, int]:
    """Per-clip seeds derived from (base seed, clip index): identity, audio, render (blinks) and length."""
    ss = np.random.SeedSequence([int(seed), int(index), 0x5E7])
    v = ss.generate_state(4, dtype=np.uint32)
    return {"identity": int(v[0]), "audio": int(v[1]), "render": int(v[2]), "length": int(v[3])}


def _text_embedding(caption: str, text_dim: int, seed: int):
    import hashlib

    import torch

    h = int.from_bytes(hashlib.sha256(caption.encode("utf-8")).digest()[:8], "little")
    g = torch.Generator().manual_seed((h ^ (int(seed) * 0x9E3779B1)) & ((1 << 63) - 1))
    L = 3 + int(torch.randint(0, 6, (1,), generator=g))
    return torch.randn(L, text_dim, generator=g)


def write_synthetic_dataset(root: str | os.PathLike, num_clips: int, size: int = 128,
                            seconds: tuple[float, float] = (2.0, 4.0), seed: int = 0, text_dim: int = 40,
                            audio: str = "babble", identities: Optional[Sequence[FaceIdentity]] = None,
                            caption: str = "a person is speaking to the camera", crf: int = 10,
                            verbose: bool = False) -> Path:
    """Write ``num_clips`` talking clips in the TalkVerse training layout under ``root``; return metadata.csv.

    Per clip ``clip_XXXXX`` (seeds from ``clip_seeds(seed, index)``; use different base seeds for disjoint splits):
      - ``videos/<id>.mp4``: 25 fps H.264 (crf ``crf``) + AAC 16 kHz mono; length U(seconds) rounded to whole frames,
        audio exactly T·640 samples;
      - ``videos/<id>.npz``: DWPose layout, ``keypoints_info`` (T,1,133,3) (face 23..90), ``person_bbox_xyxy`` (T,4);
      - ``videos/<id>.gt.npz``: ``openness`` [T] f32, ``mouth_box`` [T,4] i32, ``identity`` (JSON of FaceIdentity),
        ``audio_seed``, ``render_seed``, ``blinks``, ``audio_kind``;
    plus ``text_embeddings/videos/<id>.safetensors`` (a deterministic random [L, text_dim] per caption, standing in
    for umT5), ``text_embeddings/null.safetensors`` [1, text_dim], ``metadata.csv`` (video_path, caption,
    scenes "0,T-1", fps 25). Generation references: :func:`reference_image` of the stored identity (or the CLI's
    ``--reference_png``).
    ``identities`` (optional) overrides the per-clip identity (cycled).
    """
    import soundfile as sf
    import torch

    from ..video.writer import VideoWriter
    from .rows import write_metadata_csv
    from .text_cache import TextEmbeddingCache

    if audio not in ("babble", "espeak"):
        raise ValueError(f"audio must be 'babble' or 'espeak', got {audio!r}")
    lo, hi = float(seconds[0]), float(seconds[1])
    if not (0 < lo <= hi):
        raise ValueError(f"bad seconds range {seconds}")
    root = Path(root)
    (root / "videos").mkdir(parents=True, exist_ok=True)
    cache = TextEmbeddingCache(root / "text_embeddings")
    g = torch.Generator().manual_seed(int(seed))
    cache.write_null(torch.randn(1, text_dim, generator=g))
    rows = []
    spf = SR // FPS
    for c in range(int(num_clips)):
        t0 = time.perf_counter()
        cs = clip_seeds(seed, c)
        clip = f"clip_{c:05d}"
        rel = f"videos/{clip}.mp4"
        ident = identities[c % len(identities)] if identities else draw_identity(cs["identity"])
        secs = float(np.random.default_rng(cs["length"]).uniform(lo, hi))
        T = max(1, int(round(secs * FPS)))
        if audio == "babble":
            wave, gate = babble_audio(T / FPS, cs["audio"])
        else:
            wave, gate = espeak_audio(None, cs["audio"], seconds=T / FPS)
        wave, gate = wave[: T * spf], gate[: T * spf]
        openness = openness_per_frame(gate)
        res = render_clip(ident, openness, size=size, seed=cs["render"])
        t_gen = time.perf_counter() - t0
        wav = root / "videos" / f".{clip}.wav"
        sf.write(str(wav), wave, SR, subtype="FLOAT")
        try:
            with VideoWriter(root / rel, fps=FPS, crf=crf, audio=wav) as vw:
                vw.write(res.frames)
        finally:
            wav.unlink(missing_ok=True)
        np.savez(root / "videos" / f"{clip}.npz", keypoints_info=res.keypoints, person_bbox_xyxy=res.person_bbox)
        np.savez(root / "videos" / f"{clip}.gt.npz", openness=openness, mouth_box=res.mouth_box,
                 identity=np.array(ident.to_json()), audio_seed=np.int64(cs["audio"]),
                 render_seed=np.int64(cs["render"]), blinks=res.blinks.astype(np.int64), audio_kind=np.array(audio))
        cache.write(Path(rel).with_suffix("").as_posix(), _text_embedding(caption, text_dim, seed))
        rows.append({"video_path": rel, "caption": caption, "scenes": f"0,{T - 1}", "fps": str(FPS)})
        if verbose:
            print(f"{clip}: {T} frames, generate {t_gen:.3f}s, total {time.perf_counter() - t0:.3f}s",
                  file=sys.stderr)
    return write_metadata_csv(root / "metadata.csv", rows)


def load_ground_truth(gt_path: str | os.PathLike) -> dict:
    """Read ``videos/<id>.gt.npz``: openness, mouth_box, identity (FaceIdentity), audio_seed, render_seed, blinks."""
    with np.load(gt_path) as z:
        out = {k: z[k] for k in z.files}
    out["identity"] = FaceIdentity.from_json(str(out["identity"]))
    for k in ("audio_seed", "render_seed"):
        if k in out:
            out[k] = int(out[k])
    if "audio_kind" in out:
        out["audio_kind"] = str(out["audio_kind"])
    return out


# ----------------------------------------------------------------------------------------------------- CLI
def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(
        prog="make_synthetic_dataset",
        description="Write a procedural talking-face dataset (evaluation.md §6) in the TalkVerse training layout: "
                    "videos/<clip>.mp4 (25 fps H.264 + AAC 16 kHz), videos/<clip>.npz (DWPose layout), "
                    "videos/<clip>.gt.npz (ground-truth openness, mouth box, identity, seeds), "
                    "text_embeddings/ (random stand-ins for umT5) and metadata.csv. Prints the CSV path. "
                    "Use different --seed values for disjoint train / held-out splits.")
    p.add_argument("--out", required=True, help="output directory (created)")
    p.add_argument("--num_clips", type=int, default=8, help="number of clips (default 8)")
    p.add_argument("--size", type=int, default=128, help="square frame size in pixels; the recipe is scaled by "
                                                           "size/64 (default 128)")
    p.add_argument("--min_seconds", type=float, default=2.0, help="shortest clip length (default 2)")
    p.add_argument("--max_seconds", type=float, default=4.0, help="longest clip length (default 4)")
    p.add_argument("--seed", type=int, default=0, help="base seed; clip seeds derive from (seed, index) (default 0)")
    p.add_argument("--audio", choices=("babble", "espeak"), default="babble",
                   help="babble: harmonic carrier × syllable gate, no dependency (default); espeak: espeak-ng "
                        "pseudo-words with varied voices, gate from the RMS envelope")
    p.add_argument("--text_dim", type=int, default=40, help="width of the stand-in text embeddings (default 40)")
    p.add_argument("--caption", default="a person is speaking to the camera", help="caption for every clip")
    p.add_argument("--crf", type=int, default=10, help="libx264 CRF (default 10)")
    p.add_argument("--reference_png", action="store_true",
                   help="also write <out>/reference_<clip>.png, the closed-mouth frame of each clip's identity")
    p.add_argument("-v", "--verbose", action="store_true", help="print per-clip timings to stderr")
    a = p.parse_args(argv)
    csv_path = write_synthetic_dataset(a.out, a.num_clips, size=a.size, seconds=(a.min_seconds, a.max_seconds),
                                       seed=a.seed, text_dim=a.text_dim, audio=a.audio, caption=a.caption,
                                       crf=a.crf, verbose=a.verbose)
    if a.reference_png:
        from PIL import Image

        for c in range(a.num_clips):
            gt = load_ground_truth(Path(a.out) / "videos" / f"clip_{c:05d}.gt.npz")
            Image.fromarray(reference_image(gt["identity"], a.size)).save(Path(a.out) / f"reference_clip_{c:05d}.png")
    print(csv_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
