"""Random-access 25 fps clip reading (training.md §2.2): decord first, PyAV (seek to the window) as fallback."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np

logger = logging.getLogger(__name__)

FPS = 25.0
FPS_TOL = 0.01


class ClipError(ValueError):
    """A training clip is missing, unreadable, has no video stream or is not 25 fps. The message names the file."""


class ClipVideo:
    """A readable clip. ``frames(indices)`` -> uint8 [n, H, W, 3] RGB in the order given."""

    path: Path
    backend: str
    num_frames: int
    fps: float
    height: int
    width: int

    def frames(self, indices: Sequence[int]) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "ClipVideo":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check(self, indices: Sequence[int]) -> list[int]:
        idx = [int(i) for i in indices]
        bad = [i for i in idx if not 0 <= i < self.num_frames]
        if bad:
            raise ClipError(f"{self.path}: frame index {bad[0]} outside [0, {self.num_frames})")
        return idx


class DecordClip(ClipVideo):
    backend = "decord"

    def __init__(self, path: Path):
        import decord

        self.path = path
        self._vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
        self.num_frames = len(self._vr)
        self.fps = float(self._vr.get_avg_fps())
        if self.num_frames <= 0:
            raise ClipError(f"{path}: no video frames")
        self.height, self.width = (int(v) for v in self._vr[0].shape[:2])

    def frames(self, indices: Sequence[int]) -> np.ndarray:
        idx = self._check(indices)
        if not idx:
            return np.zeros((0, self.height, self.width, 3), np.uint8)
        return np.ascontiguousarray(self._vr.get_batch(idx).asnumpy())

    def close(self) -> None:
        self._vr = None


class PyAVClip(ClipVideo):
    backend = "pyav"

    def __init__(self, path: Path):
        import av

        self.path = path
        try:
            self._container = av.open(str(path))
        except Exception as e:  # noqa: BLE001
            raise ClipError(f"{path}: not a readable video ({e})") from e
        if not self._container.streams.video:
            self._container.close()
            raise ClipError(f"{path}: has no video stream")
        s = self._stream = self._container.streams.video[0]
        rate = s.average_rate or s.guessed_rate or s.base_rate
        self.fps = float(rate) if rate else 0.0
        self.height, self.width = s.codec_context.height, s.codec_context.width
        n = int(s.frames or 0)
        if n <= 0 and self.fps > 0:
            dur = float(s.duration * s.time_base) if s.duration is not None else (self._container.duration or 0) / 1e6
            n = int(round(dur * self.fps))
        self.num_frames = n
        self._t0 = float(s.start_time * s.time_base) if s.start_time is not None else 0.0

    def _index(self, frame) -> int:
        return int(round((float(frame.pts * frame.time_base) - self._t0) * self.fps))

    def frames(self, indices: Sequence[int]) -> np.ndarray:
        import av

        idx = self._check(indices)
        out = np.zeros((len(idx), self.height, self.width, 3), np.uint8)
        if not idx:
            return out
        want: dict[int, list[int]] = {}
        for k, i in enumerate(idx):
            want.setdefault(i, []).append(k)
        todo = sorted(want)
        s = self._stream
        # contiguous runs are decoded from one seek (the window and the reference frame are two runs)
        runs, run = [], [todo[0]]
        for i in todo[1:]:
            if i - run[-1] <= 2 * int(self.fps):
                run.append(i)
            else:
                runs.append(run)
                run = [i]
        runs.append(run)
        for run in runs:
            lo, hi = run[0], run[-1]
            pending = set(run)
            try:
                self._container.seek(int((self._t0 + lo / self.fps) / s.time_base), stream=s, backward=True,
                                     any_frame=False)
                for frame in self._container.decode(s):
                    i = self._index(frame)
                    if i in pending:
                        arr = frame.to_ndarray(format="rgb24")
                        for k in want[i]:
                            out[k] = arr
                        pending.discard(i)
                    if i >= hi or not pending:
                        break
            except av.FFmpegError as e:
                raise ClipError(f"{self.path}: decoding failed ({e})") from e
            if pending:
                raise ClipError(f"{self.path}: frames {sorted(pending)[:3]}... could not be decoded")
        return out

    def close(self) -> None:
        if getattr(self, "_container", None) is not None:
            self._container.close()
            self._container = None


def open_clip_video(path: str | Path, backend: str = "auto", require_fps: float | None = FPS) -> ClipVideo:
    """Open a clip: ``backend`` "auto" (decord, then PyAV if decord cannot open it), "decord" or "pyav".

    Raises ClipError naming the file when it is missing, unreadable, has no video stream, or (with ``require_fps``)
    its frame rate is not within 0.01 of 25 fps.
    """
    path = Path(path)
    if not path.exists():
        raise ClipError(f"{path}: not found")
    if not path.is_file():
        raise ClipError(f"{path}: not a regular file")
    if backend not in ("auto", "decord", "pyav"):
        raise ValueError(f"unknown video backend {backend!r}; valid: auto, decord, pyav")
    clip: ClipVideo | None = None
    if backend in ("auto", "decord"):
        try:
            clip = DecordClip(path)
        except ClipError:
            raise
        except Exception as e:  # noqa: BLE001  decord raises its own DECORDError / RuntimeError
            if backend == "decord":
                raise ClipError(f"{path}: decord cannot open it ({e})") from e
            logger.debug("%s: decord failed (%s), trying PyAV", path, e)
    if clip is None:
        clip = PyAVClip(path)
    if clip.num_frames <= 0:
        clip.close()
        raise ClipError(f"{path}: no video frames")
    if require_fps is not None and abs(clip.fps - require_fps) >= FPS_TOL:
        clip.close()
        raise ClipError(f"{path}: frame rate {clip.fps:.3f} fps, expected {require_fps:g} (re-encode upstream)")
    return clip


def read_frames(path: str | Path, indices: Sequence[int], backend: str = "auto") -> np.ndarray:
    """uint8 [n, H, W, 3] for ``indices``; with "auto", a decord read failure retries with PyAV."""
    clip = open_clip_video(path, backend)
    try:
        try:
            return clip.frames(indices)
        except ClipError:
            raise
        except Exception as e:  # noqa: BLE001
            if backend != "auto" or clip.backend != "decord":
                raise ClipError(f"{path}: decoding failed ({e})") from e
            logger.debug("%s: decord read failed (%s), trying PyAV", path, e)
    finally:
        clip.close()
    with PyAVClip(Path(path)) as clip2:
        return clip2.frames(indices)
