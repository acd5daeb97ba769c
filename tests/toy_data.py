"""A tiny synthetic dataset in the TalkVerse layout (real mp4 + AAC, CSV, DWPose npz, text cache) for tests."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf
import torch

from talkverse.data.rows import write_metadata_csv
from talkverse.data.text_cache import TextEmbeddingCache
from talkverse.media.constants import SAMPLE_RATE
from talkverse.media.writer import VideoWriter

SR = SAMPLE_RATE


def _blob_track(n: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Centre (cx, cy) per frame [n, 2] of a blob moving on a smooth path."""
    t = np.arange(n) / 25.0
    ph = rng.uniform(0, 2 * np.pi, 2)
    cx = w / 2 + 0.25 * w * np.sin(2 * np.pi * 0.3 * t + ph[0])
    cy = h / 2 + 0.2 * h * np.sin(2 * np.pi * 0.2 * t + ph[1])
    return np.stack([cx, cy], 1)


def _frames(track: np.ndarray, h: int, w: int, r: float, color: np.ndarray) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.empty((len(track), h, w, 3), np.uint8)
    bg = np.stack([np.full((h, w), 40), (yy * 160 // max(h - 1, 1)), (xx * 160 // max(w - 1, 1))], -1)
    for k, (cx, cy) in enumerate(track):
        f = bg.copy()
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        f[inside] = color
        mouth = inside & (np.abs(yy - (cy + r / 3)) < 1.5) & (np.abs(xx - cx) < r / 2 * (0.5 + 0.5 * np.sin(k / 2)))
        f[mouth] = 0
        out[k] = f
    return out


def _audio(n_frames: int, rng: np.random.Generator) -> np.ndarray:
    n = int(n_frames / 25 * SR)
    t = np.arange(n) / SR
    y = np.zeros(n, np.float32)
    for _ in range(max(2, n_frames // 25)):
        c, d = rng.uniform(0, n / SR), rng.uniform(0.1, 0.4)
        env = np.exp(-0.5 * ((t - c) / (d / 2)) ** 2)
        y += (0.3 * env * np.sin(2 * np.pi * rng.uniform(150, 600) * t)).astype(np.float32)
    return y


def _pose(track: np.ndarray, r: float, h: int, w: int) -> dict[str, np.ndarray]:
    n = len(track)
    kp = np.zeros((n, 1, 133, 3), np.float32)
    ang = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    for k, (cx, cy) in enumerate(track):
        kp[k, 0, 23:91, 0] = cx + 0.8 * r * np.cos(ang)
        kp[k, 0, 23:91, 1] = cy + 0.8 * r * np.sin(ang)
        kp[k, 0, 23:91, 2] = 0.9
        kp[k, 0, :23, :2] = [cx, min(h - 1, cy + 1.5 * r)]
        kp[k, 0, :23, 2] = 0.5
    bbox = np.stack([track[:, 0] - 1.2 * r, track[:, 1] - 1.2 * r, track[:, 0] + 1.2 * r,
                     np.full(n, h - 1.0)], 1).astype(np.float32)
    bbox[:, [0, 2]] = np.clip(bbox[:, [0, 2]], 0, w)
    bbox[:, 1] = np.clip(bbox[:, 1], 0, h)
    return {"keypoints_info": kp, "person_bbox_xyxy": bbox}


def write_toy_dataset(root: str | Path, num_clips: int = 3, size: tuple[int, int] | Sequence[tuple[int, int]] = (64, 64),
                      frames: int | Sequence[int] = 150, seed: int = 0, text_dim: int = 40, with_scenes: bool = True,
                      corrupt: int = 0) -> Path:
    """Write ``num_clips`` clips under ``root`` and return the metadata CSV path.

    Layout: ``videos/clip_XXX.mp4`` (25 fps H.264 + AAC 16 kHz mono; a moving face-like blob, sine-burst audio),
    ``videos/clip_XXX.npz`` (DWPose layout: keypoints_info (T,1,133,3), person_bbox_xyxy (T,4)),
    ``text_embeddings/videos/clip_XXX.safetensors`` ([L, text_dim]) + ``null.safetensors``, ``metadata.csv``
    (video_path, caption, scenes, fps). ``size`` is (H, W), ``frames`` the frame count; either may be per clip.
    ``corrupt=k`` appends k rows whose mp4 is missing (even) or garbage bytes (odd).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    (root / "videos").mkdir(parents=True, exist_ok=True)
    cache = TextEmbeddingCache(root / "text_embeddings")
    g = torch.Generator().manual_seed(seed)
    cache.write_null(torch.randn(1, text_dim, generator=g))
    sizes = [tuple(size)] * num_clips if isinstance(size[0], int) else [tuple(s) for s in size]
    counts = [int(frames)] * num_clips if isinstance(frames, int) else [int(f) for f in frames]
    rows = []
    for c in range(num_clips):
        (h, w), n = sizes[c], counts[c]
        rel = f"videos/clip_{c:03d}.mp4"
        track = _blob_track(n, h, w, rng)
        r = min(h, w) / 6
        wav = root / "videos" / f".clip_{c:03d}.wav"
        sf.write(str(wav), _audio(n, rng), SR, subtype="FLOAT")
        with VideoWriter(root / rel, fps=25, crf=18, audio=wav) as vw:
            vw.write(_frames(track, h, w, r, rng.integers(120, 255, 3)))
        wav.unlink()
        np.savez(root / "videos" / f"clip_{c:03d}.npz", **_pose(track, r, h, w))
        cache.write(Path(rel).with_suffix("").as_posix(), torch.randn(int(rng.integers(3, 9)), text_dim, generator=g))
        rows.append({"video_path": rel, "caption": f"a person is speaking to the camera {c}",
                     "scenes": f"0,{n - 1}" if with_scenes else "", "fps": "25" if with_scenes else ""})
    for k in range(corrupt):
        rel = f"videos/bad_{k:03d}.mp4"
        if k % 2:
            (root / rel).write_bytes(rng.bytes(2048))
        rows.append({"video_path": rel, "caption": "broken", "scenes": "", "fps": ""})
    return write_metadata_csv(root / "metadata.csv", rows)
