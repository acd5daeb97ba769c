"""Dubbing only the face: the file side (issue 20, docs/inference.md "Dubbing only the face").

``--dub_region face|mouth`` with ``--dub_video``: the face track (a ``--dub_track`` file or the detector), one crop
window per clip (``talkverse.pipelines.face_region``), the pipeline dubbing the crops with the region outside the
mask kept to the source (masked denoising), and each generated crop pasted back into the full-resolution source
frame. The output has the source's resolution, at the model's fps by timestamp, with the new audio. Frames whose face
is lost are the source frames, unchanged; :attr:`talkverse.runner.VideoResult.passed_through` counts them.

The source is read three times by fresh readers (track, crops, paste), so memory stays bounded in the video's
length except for the detector pass, which holds the frames it analyses.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .media.video import VideoReader
from .pipelines.face_track import DubTrack, FaceTrackError, track_from_boxes, track_from_detector, track_from_keypoints


def read_track_file(path: str | Path, face_index: int, order: str) -> DubTrack:
    """A face track from a file: a DWPose-layout ``.npz`` (``keypoints_info`` (T, P, 133, 3), as the curation
    writes), an ``.npz`` / ``.npy`` box array ``boxes`` [T, 4] or [T, K, 4], or a ``.json`` list of boxes (null
    for a frame without a face)."""
    p = Path(path)
    if not p.is_file():
        raise FaceTrackError(f"{p}: not found")
    try:
        if p.suffix == ".json":
            rows = json.loads(p.read_text())
            boxes = np.array([[np.nan] * 4 if r is None else r for r in rows], np.float64)
            return track_from_boxes(boxes, face_index, order, str(p))
        data = np.load(p)
        if p.suffix == ".npy":
            return track_from_boxes(data, face_index, order, str(p))
        if "keypoints_info" in data:
            return track_from_keypoints(data["keypoints_info"], face_index, order, str(p))
        if "boxes" in data:
            return track_from_boxes(data["boxes"], face_index, order, str(p))
    except FaceTrackError:
        raise
    except Exception as e:  # noqa: BLE001
        raise FaceTrackError(f"{p}: not a readable face track ({type(e).__name__}: {e})") from None
    raise FaceTrackError(f"{p}: has neither 'keypoints_info' (DWPose layout) nor 'boxes'")


def load_face_track(inputs, options) -> DubTrack:
    """The track for ``inputs.dub_video`` (``options.dub_track`` or the detector over the frames at the model's
    fps), stored on ``inputs.face_track``; a :class:`FaceTrackError` (one line) when there is no face to dub."""
    if getattr(inputs, "face_track", None) is not None:
        return inputs.face_track
    name = inputs.names.get("dub_video")
    if options.dub_track:
        track = read_track_file(options.dub_track, options.dub_face_index, options.dub_face_order)
        frames = int(round(inputs.dub_video.info.duration * inputs.fps))
        if abs(len(track) - frames) > 1:
            raise FaceTrackError(f"{options.dub_track}: the track has {len(track)} frames, {name} has {frames} at "
                                 f"{inputs.fps} fps (a track gives one box per frame at the model's fps)")
    else:
        with VideoReader(name) as reader:
            frames = np.stack(list(reader.iter_frames(inputs.fps)))
        track = track_from_detector(frames, options.dub_face_index, options.dub_face_order, what=str(name))
    inputs.face_track = track
    return track


def _source_frames(path, fps: int, total: int):
    """The source frames [H, W, 3] at ``fps`` for output frames 0..total-1 (past the end: the last frame)."""
    last = None
    with VideoReader(path) as reader:
        for k, frame in enumerate(reader.iter_frames(fps)):
            if k >= total:
                return
            last = frame
            yield frame
    for _ in range((total - k - 1) if last is not None else 0):
        yield last


def face_dub_to_file(pipe, inputs, options, output_path, writer, kw: dict, plan, on_frames=None, on_clip=None,
                     callback_on_step_end=None) -> tuple[int, list]:
    """Generate the face-only dub into the open ``writer`` (the runner's); ``kw`` the pipeline arguments of a plain
    dub, ``plan`` its clip plan. Returns (how many output frames passed through without a face, the clips'
    :class:`~talkverse.pipelines.face_region.ClipRegion`)."""
    import torch

    from .pipelines.face_region import crop_frame, crop_mask, paste_back, plan_regions

    track = load_face_track(inputs, options)
    name, fps = inputs.names["dub_video"], inputs.fps
    info = inputs.dub_video.info
    frame_hw = (info.height, info.width)
    bucket = (kw["height"], kw["width"])
    ranges = [plan.output_range(r) for r in range(plan.num_clips)]
    total = max(ranges[-1][1], plan.output_frames)
    regions = plan_regions(track.boxes, track.mouths, ranges, options.dub_region, frame_hw, bucket,
                           feather=options.dub_feather)
    clip_of = np.zeros(total, np.int64)
    for r, (a, b) in enumerate(ranges):
        clip_of[a:b] = r
    crops = (crop_frame(f, regions[clip_of[p]].window, bucket) for p, f in enumerate(_source_frames(name, fps, total)))
    kw = {**kw, "dub_video": crops, "dub_mask": [crop_mask(c.region, c.window, bucket) for c in regions]}
    present = track.present
    source = _source_frames(name, fps, total)
    passed = 0
    for r, frames in enumerate(pipe.iter_clips(inputs.image, callback_on_step_end=callback_on_step_end, **kw)):
        t0 = time.perf_counter()
        c = regions[r]
        alpha = c.alpha()
        out = []
        for j in range(frames.shape[1]):
            p = ranges[r][0] + j
            src = next(source)
            if present[min(p, len(present) - 1)] and c.region is not None:
                out.append(paste_back(src, frames[:, j], c.window, alpha))
            else:
                out.append(src)
                passed += 1
        u8 = np.stack(out)
        writer.write(u8)
        if on_frames is not None:
            on_frames(torch.from_numpy(u8).permute(3, 0, 1, 2).float() / 127.5 - 1)
        if on_clip is not None:
            on_clip(r, plan.num_clips, {**pipe.clip_seconds[r], "write": time.perf_counter() - t0})
    return passed, regions
