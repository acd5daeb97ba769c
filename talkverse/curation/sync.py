"""Stage 6, A/V sync (docs/curation.md): talkverse.vision.lipsync, the measure ``python -m talkverse.eval`` reports:
mouth opening from face-mesh lip landmarks (inner-lip aperture / width) against the band-passed speech envelope,
scanned over +-``max_lag`` frames at 25 fps. ``offset`` k > 0: the mouth lags the audio.

A constant offset beyond ``tolerance`` is either corrected by moving the audio by -k frames (``offset_action:
shift``, as LatentSync's pipeline shifts by SyncNet's offset; the clip is then re-scored on the moved audio, so the
recorded score is the encoded clip's) or rejected (``av_offset``). Rejects: ``no_mouth``, ``offset_too_large``,
``av_offset``, ``low_sync`` (confidence = best r - median r over the lags, below ``min_conf``).

SyncNet (``syncnet_model``) is not used by this build: see docs/curation.md."""

from __future__ import annotations

import numpy as np

from ..media.constants import FPS, SAMPLE_RATE
from ..vision.lipsync import lip_sync
from .clipio import read_clip_audio, read_clip_frames
from .records import CurationError, add_scores, reject

STAGE = "sync"


def sync_row(row: dict, cfg, frames: np.ndarray | None = None) -> dict:
    c = cfg.sync
    frames = read_clip_frames(row, fps=FPS) if frames is None else frames
    res = lip_sync(frames, read_clip_audio(row, shift=0.0)[: len(frames) * SAMPLE_RATE // FPS], SAMPLE_RATE, FPS,
                   max_lag=c.max_lag, method="mediapipe")
    found = float(np.isfinite(res.mouth).mean()) if len(res.mouth) else 0.0
    add_scores(row, mouth_found=found)
    if found < c.min_face_frames or res.sync.offset is None:
        return reject(row, STAGE, "no_mouth", f"lips found in {found:.0%} of the frames")
    k = res.sync.offset
    add_scores(row, sync_offset_found=k, sync_conf_found=res.sync.conf)
    if abs(k) > c.max_offset:
        return reject(row, STAGE, "offset_too_large", f"offset {k:+d} frames > {c.max_offset}")
    if abs(k) > c.tolerance:
        if c.offset_action != "shift":
            return reject(row, STAGE, "av_offset", f"offset {k:+d} frames")
        row["audio_shift"] = -k / FPS
        wave = read_clip_audio(row)[: len(frames) * SAMPLE_RATE // FPS]
        res = lip_sync(frames, wave, SAMPLE_RATE, FPS, max_lag=c.max_lag, method=res.method, mouth=res.mouth)
    s = res.sync
    add_scores(row, sync_offset=s.offset, sync_conf=s.conf, sync_best=s.best, sync_corr0=s.corr0)
    if not np.isfinite(s.conf) or s.conf < c.min_conf:
        return reject(row, STAGE, "low_sync", f"confidence {s.conf:.3f} < {c.min_conf}")
    return row


class SyncStage:
    """A Ray actor (face mesh per clip, video mode)."""

    def __init__(self, cfg):
        if cfg.sync.syncnet_model:
            raise CurationError("sync.syncnet_model: SyncNet scoring is not part of this build (docs/curation.md "
                                "'A/V sync'); leave it null to use the face-mesh measure")
        if cfg.sync.offset_action not in ("shift", "reject"):
            raise CurationError(f"sync.offset_action: {cfg.sync.offset_action!r}, expected shift or reject")
        self.cfg = cfg

    def __call__(self, row: dict) -> dict:
        return row if row["stage"] else sync_row(row, self.cfg)
