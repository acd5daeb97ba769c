"""Face-dubbing test cases (issue 20): the synthetic talking faces (``talkverse.testing.synthetic``) placed small in
a large, textured frame. ``scripts/make_face_dub_cases.py`` writes them as mp4 + npz; the tests build them in memory.

A case: ``frames`` uint8 [T, H, W, 3] (default 1280x720, each face a 288 px square, ~9 % of the frame),
``keypoints`` float32 (T, P, 133, 3) in the DWPose layout at frame coordinates (score 0 where a face is absent),
``boxes`` float [T, P, 4] (each face's tile square, NaN where absent), people ordered left to right.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .synthetic.faces import draw_identity, render_clip
from .synthetic.speech import babble_audio, openness_per_frame

CASES = ("one", "two", "leaves")


@dataclass
class DubCase:
    frames: np.ndarray
    keypoints: np.ndarray
    boxes: np.ndarray
    audio: np.ndarray  # the source's own speech, float32 16 kHz


def background(height: int, width: int) -> np.ndarray:
    """A textured backdrop (gradients and fine stripes, so a blurred or shifted pixel shows): uint8 [H, W, 3]."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 60 + 120 * x / width + 20 * np.sin(x / 3.0)
    g = 80 + 100 * y / height + 20 * np.sin(y / 5.0)
    b = 140 + 40 * np.sin((x + y) / 17.0)
    return np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)


def make_case(kind: str = "one", seconds: float = 1.0, height: int = 720, width: int = 1280, face: int = 288,
              seed: int = 0, lost: tuple[int, int] | None = None) -> DubCase:
    """``kind``: "one" face, "two" faces (left and right thirds), or "leaves" (one face, absent for the frames
    ``lost`` = [start, end), default 1 s from frame 5). The mouth follows babble speech drawn from ``seed``."""
    if kind not in CASES:
        raise ValueError(f"kind must be one of {CASES}, got {kind!r}")
    t_len = int(round(seconds * 25))
    audio, gate = babble_audio(seconds, seed)
    openness = openness_per_frame(gate)[:t_len]
    xs = [width // 3 - face // 2, 2 * width // 3 - face // 2] if kind == "two" else [(width - face) // 2]
    y0 = (height - face) // 3
    frames = np.repeat(background(height, width)[None], t_len, 0)
    keypoints = np.zeros((t_len, len(xs), 133, 3), np.float32)
    boxes = np.full((t_len, len(xs), 4), np.nan)
    if kind == "leaves":
        lost = lost or (5, 30)
    for p, x0 in enumerate(xs):
        clip = render_clip(draw_identity(seed + 1 + p), openness if p == 0 else openness[::-1].copy(), size=face,
                           seed=seed + p)
        for t in range(t_len):
            if lost is not None and lost[0] <= t < lost[1]:
                continue
            frames[t, y0:y0 + face, x0:x0 + face] = clip.frames[t]
            keypoints[t, p] = clip.keypoints[t, 0]
            keypoints[t, p, :, 0] += x0
            keypoints[t, p, :, 1] += y0
            boxes[t, p] = (x0, y0, x0 + face, y0 + face)
    return DubCase(frames, keypoints, boxes, audio)


def write_case(case: DubCase, folder, new_speech_seed: int = 99) -> dict:
    """Write ``case`` into ``folder``: ``source.mp4`` (25 fps, with no audio), ``track.npz`` (``keypoints_info``, the
    DWPose layout), ``boxes.npy`` ([T, P, 4], NaN where absent), ``own.wav`` (the source's speech) and ``new.wav``
    (babble from ``new_speech_seed``, as long). Returns the paths by those names (without extensions)."""
    from pathlib import Path

    import soundfile as sf

    from ..media.writer import VideoWriter

    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    paths = {k: d / f"{k}{ext}" for k, ext in (("source", ".mp4"), ("track", ".npz"), ("boxes", ".npy"),
                                                ("own", ".wav"), ("new", ".wav"))}
    with VideoWriter(paths["source"], fps=25) as w:
        w.write(case.frames)
    np.savez(paths["track"], keypoints_info=case.keypoints)
    np.save(paths["boxes"], case.boxes)
    sf.write(paths["own"], case.audio, 16000)
    sf.write(paths["new"], babble_audio(len(case.audio) / 16000, new_speech_seed)[0], 16000)
    return paths
