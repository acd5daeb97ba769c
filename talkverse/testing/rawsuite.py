"""A raw-video suite with known answers for the curation pipeline (docs/curation.md "The test suite").

Real photos that ship in wheels (``skimage.data.astronaut()``, matplotlib's ``grace_hopper.jpg``) are made to talk:
mediapipe FaceMesh finds the lips once on the still photo; each frame then opens the mouth by warping the lower lip
and chin down by ``openness x 0.35 x mouth width`` pixels and painting the gap dark. ``openness`` is the espeak-ng
speech gate averaged over each frame, so the ground-truth mouth opening is known. A slow head sway (+-3 px) keeps
the picture alive. Every case says where the pipeline must end it (``expected``): accepted with n clips, or rejected
at a stage for a reason.

``python scripts/make_curation_suite.py OUT`` writes the videos and ``OUT/suite.json``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..media.audio import DecodedAudio
from ..media.constants import SAMPLE_RATE
from .synthetic.speech import espeak_audio

SIZE = 256  # frame side of the single-face cases


@dataclass
class Expected:
    """Where a case must end: ``accepted`` with ``clips`` clips, or rejected at ``stage`` for ``reason``."""

    accepted: bool
    clips: int = 0
    stage: str | None = None
    reason: str | None = None
    fps: float | None = None
    offset: int | None = None  # the A/V offset the sync stage must find (lag convention of talkverse.vision.sync)


@dataclass
class Case:
    name: str
    file: str
    expected: Expected
    notes: str = ""
    extra: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------------- faces
def _photo(name: str) -> np.ndarray:
    if name == "astronaut":
        import skimage.data

        return skimage.data.astronaut()
    import cv2
    import matplotlib.cbook

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        buf = np.frombuffer(f.read(), np.uint8)
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


class TalkingPhoto:
    """A real photo cropped around its face to ``size`` x ``size``, with its lip geometry from FaceMesh."""

    def __init__(self, name: str, size: int = SIZE, mirror: bool = False, tint: tuple = (1.0, 1.0, 1.0)):
        import cv2
        from mediapipe.python.solutions import face_detection, face_mesh

        img = _photo(name)
        with face_detection.FaceDetection(model_selection=1) as fd:
            b = fd.process(img).detections[0].location_data.relative_bounding_box
        h, w = img.shape[:2]
        cx, cy, fs = (b.xmin + b.width / 2) * w, (b.ymin + b.height / 2) * h, max(b.width * w, b.height * h)
        side = min(3.0 * fs, h, w)
        x0 = int(np.clip(cx - side / 2, 0, w - side))
        y0 = int(np.clip(cy - side / 2.6, 0, h - side))
        crop = img[y0:y0 + int(side), x0:x0 + int(side)]
        crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
        if mirror:
            crop = crop[:, ::-1]
        self.image = np.clip(crop * np.asarray(tint), 0, 255).astype(np.uint8)
        with face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1) as fm:
            lm = fm.process(np.ascontiguousarray(self.image)).multi_face_landmarks[0].landmark
        p = {j: np.array([lm[j].x * size, lm[j].y * size]) for j in (13, 14, 61, 291, 152)}
        self.mouth_y = 0.5 * (p[13][1] + p[14][1])
        self.mouth_x = 0.5 * (p[61][0] + p[291][0])
        self.half_width = 0.5 * np.linalg.norm(p[61] - p[291])
        self.chin_y = p[152][1]
        self.size = size

    def frame(self, openness: float, t: float) -> np.ndarray:
        """The face at time ``t`` (s) with the mouth opened by ``openness`` in [0, 1]: uint8 [size, size, 3]."""
        import cv2

        n = self.size
        d = float(openness) * 0.7 * self.half_width
        ys, xs = np.mgrid[0:n, 0:n].astype(np.float32)
        wx = np.clip(1.0 - ((xs - self.mouth_x) / (1.4 * self.half_width)) ** 2, 0.0, 1.0)
        below = ys - self.mouth_y
        jaw = self.chin_y - self.mouth_y
        wy = np.where(below < 0, 0.0, np.clip(1.0 - (below - jaw) / (0.8 * jaw), 0.0, 1.0))
        shift = (d * wx * wy).astype(np.float32)
        img = cv2.remap(self.image, xs, ys - shift, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        gap = (below >= 0) & (below < d * np.clip(1.0 - ((xs - self.mouth_x) / (0.85 * self.half_width)) ** 2, 0, 1))
        img[gap] = (40, 12, 18)
        sway = np.float32([[1, 0, 3.0 * np.sin(2 * np.pi * 0.3 * t)], [0, 1, 1.5 * np.sin(2 * np.pi * 0.2 * t)]])
        return cv2.warpAffine(img, sway, (n, n), borderMode=cv2.BORDER_REFLECT)


# ----------------------------------------------------------------------------------------------------- signals
def frame_openness(gate: np.ndarray, fps: float, num_frames: int, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Ground-truth openness [T]: the mean speech gate over each frame's [t/fps, (t+1)/fps)."""
    out = np.zeros(num_frames, np.float64)
    for t in range(num_frames):
        a, b = int(round(t / fps * sr)), int(round((t + 1) / fps * sr))
        seg = gate[a:b]
        out[t] = float(seg.mean()) if len(seg) else 0.0
    return np.clip(out, 0, 1)


def speech(seconds: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """espeak-ng pseudo-words: (wave float32 [n], gate [n]) at 16 kHz, exactly ``seconds`` long."""
    return espeak_audio(None, seed=seed, seconds=seconds)


def music(seconds: float, seed: int = 0, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Notes with harmonics and decay over a bass line and a noise hi-hat: no speech in it."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    y = np.zeros(n)
    beat = int(0.25 * sr)
    t = np.arange(beat) / sr
    for k, start in enumerate(range(0, n, beat)):
        f = 220.0 * 2 ** (rng.choice([0, 3, 5, 7, 10, 12]) / 12)
        note = sum(np.sin(2 * np.pi * f * h * t) / h for h in (1, 2, 3)) * np.exp(-3 * t)
        bass = 0.6 * np.sin(2 * np.pi * 55.0 * 2 ** ((k // 8 % 2) * 5 / 12) * t)
        hat = rng.normal(0, 0.3, beat) * np.exp(-60 * t)
        seg = (note + bass + hat)[: n - start]
        y[start:start + len(seg)] += seg
    return (0.4 * y / np.abs(y).max()).astype(np.float32)


# ----------------------------------------------------------------------------------------------------- writing
def write_video(path: Path, frames: list[np.ndarray] | np.ndarray, fps: float, wave: np.ndarray | None,
                crf: int = 18) -> Path:
    """H.264 mp4 at ``fps`` with the 16 kHz mono ``wave`` as AAC (no audio stream when None)."""
    from ..media.writer import VideoWriter

    audio = None if wave is None else DecodedAudio(path, np.asarray(wave, np.float32)[None], SAMPLE_RATE)
    with VideoWriter(path, fps=fps, crf=crf, audio=audio) as w:
        w.write(np.stack(frames))
    return path


def talking(face: TalkingPhoto, gate: np.ndarray, fps: float, seconds: float, t0: float = 0.0) -> list[np.ndarray]:
    n = int(round(seconds * fps))
    o = frame_openness(gate, fps, n)
    return [face.frame(o[t], t0 + t / fps) for t in range(n)]


def build_suite(out: str | os.PathLike, long_seconds: float = 40.0) -> list[Case]:
    """Write every case into ``out`` and ``out/suite.json``; returns the cases."""
    import cv2

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    astro, hopper = TalkingPhoto("astronaut"), TalkingPhoto("grace_hopper")
    faces4 = [astro, hopper, TalkingPhoto("astronaut", mirror=True, tint=(0.8, 0.9, 1.2)),
              TalkingPhoto("grace_hopper", mirror=True, tint=(1.2, 1.0, 0.8))]
    cases: list[Case] = []

    # a 40 s video with 3 hard cuts: 4 scenes, 4 different faces, one continuous speech track
    scene = long_seconds / 4
    frames, waves = [], []
    for k, face in enumerate(faces4):  # one espeak-ng utterance per scene, so that every scene is speech throughout
        w, g = speech(scene, seed=1 + 100 * k)
        frames += talking(face, g, 25, scene, t0=k * scene)
        waves.append(w)
    write_video(out / "cuts40.mp4", frames, 25, np.concatenate(waves))
    cases.append(Case("cuts40", "cuts40.mp4", Expected(True, clips=4, fps=25.0),
                      f"{long_seconds:g} s, hard cuts at {scene:g}, {2 * scene:g}, {3 * scene:g} s", {"cuts_s": [
                          scene, 2 * scene, 3 * scene]}))

    def single(name, face=astro, seconds=5.0, fps=25.0, seed=2, wave_fn=None, post=None, size=None, audio=True,
               expected=None, notes=""):
        w, g = speech(seconds, seed)
        if wave_fn is not None:
            w, g = wave_fn(w, g)
        fr = talking(face, g, fps, seconds)
        if post is not None:
            fr = [post(f) for f in fr]
        if size is not None:
            fr = [cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in fr]
        write_video(out / f"{name}.mp4", fr, fps, w if audio else None)
        cases.append(Case(name, f"{name}.mp4", expected, notes))

    shift = 8
    spf = SAMPLE_RATE // 25

    def delayed(w, g):  # the picture follows g; the sound comes 8 frames later
        return np.concatenate([np.zeros(shift * spf, np.float32), w])[: len(w)], g

    single("shifted8", seconds=6.0, seed=3, wave_fn=delayed,
           expected=Expected(True, clips=1, fps=25.0, offset=-shift), notes="audio 8 frames (320 ms) late")
    single("fps24", face=hopper, fps=24.0, seed=4, expected=Expected(True, clips=1, fps=24.0))
    single("fps30", fps=30.0, seed=5, expected=Expected(True, clips=1, fps=30.0))
    single("silent", seed=6, wave_fn=lambda w, g: (np.random.default_rng(0).normal(0, 1e-4, len(w)).astype(
        np.float32), np.zeros_like(g)), expected=Expected(False, stage="speech", reason="no_speech"))
    single("music", face=hopper, seed=7, wave_fn=lambda w, g: (music(len(w) / SAMPLE_RATE), np.zeros_like(g)),
           expected=Expected(False, stage="speech", reason="no_speech"))
    single("blurred", seed=8, post=lambda f: cv2.GaussianBlur(f, (0, 0), 6.0),
           expected=Expected(False, stage="quality", reason="blurry"))
    single("tiny96", seed=9, size=96, expected=Expected(False, stage="ingest", reason="too_small"))
    single("no_audio", seed=10, audio=False, expected=Expected(False, stage="ingest", reason="no_audio"))
    single("short", seed=11, seconds=1.2, expected=Expected(False, stage="ingest", reason="too_short"))

    # two people side by side, both talking
    w, g = speech(5.0, 12)
    both = [np.concatenate([a, b], 1) for a, b in zip(talking(astro, g, 25, 5.0), talking(hopper, g, 25, 5.0))]
    write_video(out / "two_people.mp4", both, 25, w)
    cases.append(Case("two_people", "two_people.mp4", Expected(False, stage="face", reason="two_or_more_faces")))

    # a corrupt file: the first 2 kB of a real mp4 followed by garbage
    head = (out / "fps30.mp4").read_bytes()[:2048]
    (out / "corrupt.mp4").write_bytes(head + np.random.default_rng(0).bytes(30000))
    cases.append(Case("corrupt", "corrupt.mp4", Expected(False, stage="ingest", reason="unreadable")))

    (out / "suite.json").write_text(json.dumps([asdict(c) for c in cases], indent=2))
    return cases


def load_suite(folder: str | os.PathLike) -> dict[str, dict]:
    """suite.json -> {case name: case dict}."""
    return {c["name"]: c for c in json.loads((Path(folder) / "suite.json").read_text())}
