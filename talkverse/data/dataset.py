"""Map-style training dataset over TalkVerse clips (training.md §2-§4, §6, §7)."""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..media.audio import AudioError, load_audio
from ..media.fitting import cover_frames
from ..media.sizes import resolve_size
from ..media.video import VideoError, open_clip, probe_video
from ..models.geometry import ClipGeometry
from .audio_window import main_slice, segment
from .roi import latent_weight_map, roi_masks
from .rows import ClipRow
from .sampling import Window, choose_window, reference_frame_index, scene_range_25fps
from .text_cache import TextEmbeddingCache, load_embedding

_GEOMETRY = ClipGeometry()  # the 5B's motion frames

logger = logging.getLogger(__name__)


class ClipSkip(Exception):
    """A row that cannot be used; ``reason`` is a short tag counted in ``TalkVerseDataset.skipped``."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


class _LRU(OrderedDict):
    def __init__(self, size: int = 4):
        super().__init__()
        self.size = size

    def get_or(self, key, fn):
        if key in self:
            self.move_to_end(key)
            return self[key]
        val = fn()
        self[key] = val
        while len(self) > self.size:
            self.popitem(last=False)
        return val


class TalkVerseDataset(Dataset):
    """One window per item, deterministic in (seed, epoch, index).

    Item keys:
        video       float32 [3, T, H, W] in [-1, 1]; T = motion+main (145) when the clip allows it, else main (72)
        ref         float32 [3, 1, H, W], the reference frame (>= 15 frames outside the window when possible)
        audio       float32 [n] 16 kHz segment of the window (§6: n = int((T-1)/25*16000))
        context     float32 [L, D] cached text embedding (only with ``text_cache``)
        caption     str
        roi_weight  float32 [main/4, H/16, W/16] (all ones without a DWPose npz)
        has_motion  bool;  size (H, W);  clip_id str;  index (the row used);  requested_index;  start;  ref_index
    """

    def __init__(self, rows: Sequence[ClipRow], bucket: Any = "fasttalk-720", num_frames: int = 72,
                 motion_frames: int = _GEOMETRY.motion_frames, text_cache: TextEmbeddingCache | None = None,
                 always_use_motion_frames: bool = False, seed: int = 0, max_retries: int = 20,
                 audio_cache_size: int = 4):
        if num_frames % 4:
            raise ValueError(f"num_frames must be a multiple of 4, got {num_frames}")
        self.rows = list(rows)
        self.bucket = bucket
        self.num_frames, self.motion_frames = num_frames, motion_frames
        self.text_cache = text_cache
        self.always_use_motion_frames = bool(always_use_motion_frames)
        self.seed, self.epoch, self.max_retries = int(seed), 0, int(max_retries)
        self.skipped: Counter = Counter()
        self._warned: set[tuple[str, str]] = set()
        self._audio = _LRU(audio_cache_size)
        self._keys: dict[int, tuple | None] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def rng_for(self, index: int, attempt: int = 0, epoch: int | None = None) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch if epoch is None else int(epoch), int(index), attempt])

    # ------------------------------------------------------------------ cheap probes (sampler)
    def _probe(self, index: int) -> tuple[int, int, int] | None:
        """(height, width, num_frames) from the container header, or None if unreadable."""
        try:
            info = probe_video(self.rows[index].video_path)
        except (VideoError, OSError):
            return None
        return info.height, info.width, info.num_frames

    def bucket_of(self, index: int) -> tuple[int, int] | None:
        """Target (H, W) of a row from its header only; None if the video cannot be probed."""
        key = self.key_of(index)
        return None if key is None else key[0]

    def key_of(self, index: int) -> tuple[tuple[int, int], bool] | None:
        """((H, W), has_motion) from the header and scenes (no decoding); None for an unusable row."""
        if index not in self._keys:
            p = self._probe(index)
            key = None
            if p is not None and p[2] > 0:
                row = self.rows[index]
                scene = scene_range_25fps(row.scenes, row.fps, p[2])
                s, e = (0, p[2] - 1) if scene is None else scene
                avail = e - s + 1
                if avail >= self.num_frames:
                    key = (resolve_size(p[0], p[1], self.bucket), avail >= self.num_frames + self.motion_frames)
                    if self.always_use_motion_frames and not key[1]:
                        key = None
            self._keys[index] = key
        return self._keys[index]

    # ------------------------------------------------------------------ loading
    def _skip(self, row: ClipRow, e: ClipSkip) -> None:
        self.skipped[e.reason] += 1
        if (row.clip_id, e.reason) not in self._warned:
            self._warned.add((row.clip_id, e.reason))
            logger.warning("skipping clip %s (%s): %s", row.clip_id, e.reason, e.detail)

    def _wave(self, path: Path) -> np.ndarray:
        return self._audio.get_or(str(path), lambda: load_audio(path))

    def _context(self, row: ClipRow) -> torch.Tensor:
        if row.text_emb_path is not None:
            if not row.text_emb_path.is_file():
                raise ClipSkip("text_missing", f"{row.text_emb_path}: not found")
            return load_embedding(row.text_emb_path)
        try:
            return self.text_cache.get(row.clip_id)
        except KeyError as e:
            raise ClipSkip("text_missing", str(e)) from None

    def sample_window(self, row: ClipRow, total: int, rng: np.random.Generator) -> tuple[Window, int]:
        """(window, reference frame index) for a clip of ``total`` 25 fps frames; ClipSkip if too short."""
        scene = scene_range_25fps(row.scenes, row.fps, total)
        win = choose_window(total, scene, self.num_frames, self.motion_frames, rng, self.always_use_motion_frames)
        if win is None:
            span = total if scene is None else max(0, scene[1] - scene[0] + 1)
            need = self.num_frames + (self.motion_frames if self.always_use_motion_frames else 0)
            raise ClipSkip("too_short", f"{row.video_path}: {span} usable frames < {need}")
        return win, reference_frame_index(total, win.start, win.length, rng)

    def load_row(self, index: int, rng: np.random.Generator) -> dict[str, Any]:
        """The item for row ``index`` with the given rng; raises ClipSkip for an unusable row."""
        row = self.rows[index]
        try:
            video = open_clip(row.video_path)
        except VideoError as e:
            reason = "fps" if "frame rate" in str(e) else ("missing" if "not found" in str(e) else "video")
            raise ClipSkip(reason, str(e)) from None
        try:
            total = video.info.num_frames
            win, ref_idx = self.sample_window(row, total, rng)
            H, W = resolve_size(video.info.height, video.info.width, self.bucket)
            if H % 16 or W % 16:
                raise ValueError(f"target size {H}x{W} must be a multiple of 16")
            idx = list(range(win.start, win.start + win.length)) + [ref_idx]
            try:
                frames = video.read(idx)
            except VideoError as e:
                raise ClipSkip("video", str(e)) from None
            orig_hw = (video.info.height, video.info.width)
        finally:
            video.close()
        pix = cover_frames(frames, H, W)  # [3, T+1, H, W]
        try:
            seg = segment(self._wave(row.video_path), win.start, win.length)
        except AudioError as e:
            raise ClipSkip("audio", str(e)) from None
        except ValueError as e:
            raise ClipSkip("audio_nan", f"{row.video_path}: {e}") from None
        main0 = win.start + (self.motion_frames if win.has_motion else 0)
        lat_t, h, w = self.num_frames // 4, H // 16, W // 16
        roi = torch.ones(lat_t, h, w)
        if row.dwpose_path is not None and row.dwpose_path.is_file():
            try:
                face, body = roi_masks(row.dwpose_path, range(main0, main0 + self.num_frames), orig_hw, (H, W), total)
                roi = latent_weight_map(face, body, lat_t, h, w)
            except Exception as e:  # noqa: BLE001  a bad skeleton file only loses the ROI weighting
                self._skip(row, ClipSkip("roi_unreadable", f"{row.dwpose_path}: {e} (weights set to 1)"))
        item: dict[str, Any] = {
            "video": pix[:, :-1].contiguous(),
            "ref": pix[:, -1:].contiguous(),
            "audio": torch.from_numpy(seg),
            "caption": row.caption,
            "roi_weight": roi,
            "has_motion": win.has_motion,
            "size": (H, W),
            "clip_id": row.clip_id,
            "index": index,
            "start": win.start,
            "ref_index": ref_idx,
            "main_slice": (main_slice(win.has_motion, self.num_frames, self.motion_frames).start,
                           main_slice(win.has_motion, self.num_frames, self.motion_frames).stop),
        }
        if self.text_cache is not None or row.text_emb_path is not None:
            item["context"] = self._context(row)
        return item

    def __getitem__(self, index: int) -> dict[str, Any]:
        reasons: list[str] = []
        cur = int(index)
        for attempt in range(self.max_retries + 1):
            rng = self.rng_for(index, attempt)
            try:
                item = self.load_row(cur, rng)
                item["requested_index"] = int(index)
                return item
            except ClipSkip as e:
                self._skip(self.rows[cur], e)
                reasons.append(f"{self.rows[cur].clip_id}: {e}")
                cur = int(rng.integers(0, len(self.rows)))
        raise RuntimeError(f"no usable clip after {self.max_retries + 1} attempts from index {index}:\n  "
                           + "\n  ".join(reasons))
