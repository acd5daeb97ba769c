"""The generation runner: decode a request's files once, name the output, and stream the pipeline's clips into an mp4
(inference.md §11). ``generate.py``, the batch queue and the web app all generate through :func:`generate_to_file`.

What it owns and the pipeline does not: file decoding (the portrait, the speech, a dubbing source), size strings
(``--size`` W*H, a fixed ``WxH`` bucket), seed drawing, output naming and the atomic mp4 + AAC write. Each input file is
opened and decoded once per video: the decoded speech feeds both the model (16 kHz mono) and the muxed AAC track
(its own rate and channels); a dubbing source is read by one :class:`~talkverse.media.video.VideoReader` whose first
frame doubles as the portrait when no image is given.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .media.audio import DecodedAudio, read_audio
from .media.constants import FPS
from .media.image import load_image
from .media.paths import nearest_existing
from .media.sizes import BUCKETS, check_size_spec, choose_bucket, parse_width_height, table_size
from .pipelines.prompts import DEFAULT_PROMPT

FrameCallback = Callable[["object"], None]  # receives the float frames [3, n, H, W] in [-1, 1] that are written
# The shortest speech that drives a clip: one latent frame (4 video frames, 0.16 s).
MIN_AUDIO_FRAMES = 4


class OutputError(ValueError):
    """The output path cannot be written (a folder, under a file, unwritable, or already there); one line."""


@dataclass
class GenerationOptions:
    """How to generate and encode one video (the pipeline's arguments and the writer's). ``size`` is the reference's
    ``--size W*H`` (a table size); else ``size_bucket``: a table name (nearest aspect ratio) or a fixed ``WxH``."""

    prompt: str = DEFAULT_PROMPT
    negative_prompt: str | None = None
    size_bucket: str = "fasttalk-720"
    size: str | None = None
    image_fit: str = "cover"
    frames_per_clip: int = 120
    num_clips: int | None = None
    num_inference_steps: int = 50
    guidance_scale: float = 6.5
    seed: int = -1  # -1: a random seed, drawn once by resolve_seed
    sync_shift_frames: int | None = None
    start_from_ref: bool = False
    first_clip_motion: str | None = None
    cfg_batch: bool = True
    cfg_truncation: float = 1.0
    dub_strength: float = 0.95
    dub_ref: str = "first"
    dub_region: str = "full"  # "full" (regenerate the whole frame), or "face" / "mouth" (talkverse.facedub)
    dub_face_index: int = 0  # the face to dub, counted in dub_face_order
    dub_face_order: str = "left-to-right"  # or "size" (largest first)
    dub_track: str | None = None  # a face track file (DWPose npz, box npz/npy/json); None: the face detector
    dub_feather: float = 16.0  # paste-back feather in source pixels (inside the dilated region)
    crf: int = 10
    audio_bitrate: str = "192k"
    rounding: str = "nearest"
    progress: bool = True

    def check(self) -> "GenerationOptions":
        """ValueError naming the option for a size string that can never work (before any model loads)."""
        if self.size:
            table_size(self.size)
        check_size_spec(self.size_bucket)
        from .pipelines.face_track import DUB_REGIONS, FACE_ORDERS

        if self.dub_region not in DUB_REGIONS:
            raise ValueError(f"--dub_region must be one of {', '.join(DUB_REGIONS)}, got {self.dub_region!r}")
        if self.dub_face_order not in FACE_ORDERS:
            raise ValueError(f"--dub_face_order must be one of {', '.join(FACE_ORDERS)}, got {self.dub_face_order!r}")
        if self.dub_face_index < 0:
            raise ValueError(f"--dub_face_index must be >= 0, got {self.dub_face_index}")
        return self

    def resolved(self) -> "GenerationOptions":
        return replace(self, seed=resolve_seed(self.seed))


@dataclass
class DecodedInputs:
    """One video's inputs, each decoded once: the portrait (PIL RGB), the speech, a dubbing source's reader (its
    frames at the model's ``fps`` stream from one decode; the first is decoded up front, so a broken source fails
    early) and an S2V-14B pose video's reader (DWPose skeletons, read at ``fps`` from its start)."""

    image: object | None
    audio: DecodedAudio
    dub_video: object | None = None  # a talkverse.media.video.VideoReader, or None
    names: dict = field(default_factory=dict)  # "image" / "audio" / "dub_video" / "pose_video" -> the path given
    pose_video: object | None = None  # a talkverse.media.video.VideoReader, or None
    fps: int = FPS  # the model's video rate (25; S2V-14B: 16)
    face_track: object | None = None  # dub_region face/mouth: the talkverse.pipelines.face_track.DubTrack
    _dub_iter: Iterator | None = None
    _dub_first: np.ndarray | None = None

    def __post_init__(self) -> None:
        from .media.video import VideoError

        if self.dub_video is not None and self._dub_iter is None:
            self._dub_iter = self.dub_video.iter_frames(self.fps)
            self._dub_first = next(self._dub_iter, None)
            if self._dub_first is None:
                raise VideoError(f"{self.dub_video.path}: no decodable video frames")
        if self.pose_video is not None and self.pose_video.info.num_frames <= 0:
            raise VideoError(f"{self.pose_video.path}: no video frames")

    def pose_frames(self) -> Iterator[np.ndarray] | None:
        return None if self.pose_video is None else self.pose_video.iter_frames(self.fps)

    def dub_frames(self) -> Iterator[np.ndarray] | None:
        if self.dub_video is None:
            return None
        import itertools

        return itertools.chain([self._dub_first], self._dub_iter)

    def close(self) -> None:
        for reader in (self.dub_video, self.pose_video):
            if reader is not None:
                reader.close()


@dataclass
class VideoResult:
    video_path: Path
    seed: int
    num_clips: int
    frames: int
    size: tuple[int, int]  # (height, width)
    elapsed: float  # seconds of generation and writing
    fps: int = FPS
    passed_through: int | None = None  # face dubbing: output frames without a face, left as the source
    face_regions: list | None = None  # face dubbing: each clip's crop window and region (pipelines.face_region)

    @property
    def seconds(self) -> float:
        return self.frames / self.fps

    def line(self) -> str:
        return (f"wrote {self.video_path} ({self.frames} frames, {self.seconds:.2f} s, {self.size[1]}x{self.size[0]}, "
                f"{self.num_clips} clip{'s' if self.num_clips != 1 else ''}, seed {self.seed}"
                + ("" if self.passed_through is None else
                   f"; {self.passed_through} frame{'s' if self.passed_through != 1 else ''} without the face passed "
                   "through unchanged") + ")")


def resolve_seed(seed: int | None) -> int:
    """``seed`` if >= 0, else a fresh random 63-bit seed."""
    if seed is not None and seed >= 0:
        return int(seed)
    return int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> np.uint64(1))


def load_inputs(image: str | Path | None, audio: str | Path, dub_video: str | Path | None = None,
                pose_video: str | Path | None = None, fps: int = FPS) -> DecodedInputs:
    """Open and decode a request's files, raising ``ImageError`` / ``AudioError`` / ``VideoError`` (one line naming
    the file). Without ``image``, a dubbing source's first frame is the portrait (decoded by the same reader).
    ``fps``: the model's video rate (the videos are read at it)."""
    from .media.audio import AudioError
    from .media.video import VideoReader

    if image is None and dub_video is None:
        raise ValueError("an image is required (or a video to dub)")
    img = load_image(image) if image is not None else None
    speech = read_audio(audio)
    if speech.seconds * fps < MIN_AUDIO_FRAMES:
        raise AudioError(audio, f"is {speech.seconds:.2f} s long; at least {MIN_AUDIO_FRAMES / fps:.2f} s (one latent "
                                f"frame, {MIN_AUDIO_FRAMES} video frames) is needed to drive a clip")
    reader = pose = None
    try:
        reader = VideoReader(dub_video) if dub_video is not None else None
        pose = VideoReader(pose_video) if pose_video is not None else None
        names = {"image": image, "audio": audio, "dub_video": dub_video, "pose_video": pose_video}
        return DecodedInputs(img, speech, reader, names, pose, fps)
    except BaseException:
        for r in (reader, pose):
            if r is not None:
                r.close()
        raise


def check_output_path(path: str | Path, overwrite: bool = False) -> Path:
    """``path`` as the mp4 to write, checked before any model loads: not a folder, not under a file, writable (a
    probe file is created and removed beside it), and not already there unless ``overwrite``. Creates missing
    parent folders."""
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"{p}: is a folder; give the mp4's file name (or --output_dir for the folder)")
    if p.exists() and not overwrite:
        raise OutputError(f"{p}: exists; pass --overwrite to replace it")
    ancestor = nearest_existing(p.parent)
    if not ancestor.is_dir():
        raise OutputError(f"{p}: {ancestor} is a file, not a folder")
    probe = p.with_name(f".{p.stem}.partial{p.suffix or '.mp4'}")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        probe.touch()
        probe.unlink()
    except OSError as e:
        raise OutputError(f"{p}: cannot write there ({e.strerror or e})") from None
    return p


def input_warnings(inputs: DecodedInputs, options: GenerationOptions, frames_needed: int) -> list[str]:
    """What the inputs will be stretched into: an upscaled portrait, a dubbing source shorter than the speech."""
    out = []
    size = output_size(inputs, options)
    img = inputs.image
    if img is None and inputs.dub_video is not None:
        img = inputs.dub_video.info
    if img is not None:
        w, h = (img.width, img.height)
        hh, ww = size or choose_bucket(h, w, options.size_bucket)
        if w < ww or h < hh:
            name = inputs.names.get("image") or inputs.names.get("dub_video")
            out.append(f"{name}: {w}x{h} is smaller than the {ww}x{hh} video; it is upscaled (expect a soft image)")
    if inputs.dub_video is not None:
        have = int(inputs.dub_video.info.duration * inputs.fps)
        if have < frames_needed:
            out.append(f"{inputs.names['dub_video']}: {have} frames at {inputs.fps} fps, the speech needs {frames_needed}; its "
                       f"last frame is repeated for the remaining {frames_needed - have}")
    return out


def output_size(inputs: DecodedInputs, options: GenerationOptions) -> tuple[int, int] | None:
    """(H, W) of the video when the options fix it without looking at the image; None: the pipeline picks the table
    entry nearest the portrait's aspect ratio."""
    if options.size:
        return table_size(options.size)
    if options.size_bucket in BUCKETS:
        return None
    return parse_width_height(check_size_spec(options.size_bucket))


def pipeline_kwargs(pipe, inputs: DecodedInputs, options: GenerationOptions, prompt_embeds=None) -> dict:
    """The keyword arguments of ``pipe.iter_clips`` for this request (on the host; other ranks pass none)."""
    import torch

    hw = output_size(inputs, options)
    kw = dict(audio=inputs.audio.waveform(), frames_per_clip=options.frames_per_clip, num_clips=options.num_clips,
              num_inference_steps=options.num_inference_steps, guidance_scale=options.guidance_scale,
              generator=torch.Generator(device=pipe.exec_device).manual_seed(options.seed),
              sync_shift_frames=options.sync_shift_frames, start_from_ref=options.start_from_ref,
              first_clip_motion=options.first_clip_motion, cfg_batch=options.cfg_batch,
              cfg_truncation=options.cfg_truncation, image_fit=options.image_fit,
              size_bucket=options.size_bucket if hw is None else "fasttalk-720", progress=options.progress)
    if hw is not None:
        kw["height"], kw["width"] = hw
    if prompt_embeds is not None:
        kw["prompt_embeds"], kw["negative_prompt_embeds"] = prompt_embeds
    else:
        kw["prompt"], kw["negative_prompt"] = options.prompt, options.negative_prompt
    if inputs.dub_video is not None:
        kw.update(dub_video=inputs.dub_frames(), dub_strength=options.dub_strength, dub_ref=options.dub_ref)
    if inputs.pose_video is not None:
        kw["pose_video"] = inputs.pose_frames()
    return kw


def generate_to_file(pipe, inputs: DecodedInputs | None, options: GenerationOptions, output_path: str | Path | None,
                     *, on_frames: FrameCallback | None = None, callback_on_step_end=None, prompt_embeds=None,
                     on_clip: Callable[[int, int, dict], None] | None = None) -> VideoResult | None:
    """Generate one video and write it atomically to ``output_path`` (H.264 at the model's fps, 25 or 16, + the speech
    as AAC; the temporary
    ``.NAME.partial.mp4`` beside it is removed on any error, Ctrl-C included). ``options.seed`` must be resolved.
    ``on_clip(clip, num_clips, seconds)`` gets each written clip's stage times ({"motion", "denoise", "decode",
    "write"}, wall seconds).

    On a rank other than the host of a multi-rank run, ``inputs`` and ``output_path`` are None: it only drives the
    DiT and returns None."""
    from .media.writer import VideoWriter

    if not pipe.parallel.is_host:
        for _ in pipe.iter_clips(callback_on_step_end=callback_on_step_end, progress=False):
            pass
        return None
    t0 = time.perf_counter()
    kw = pipeline_kwargs(pipe, inputs, options, prompt_embeds)
    plan = pipe.plan_video(len(kw["audio"]), frames_per_clip=options.frames_per_clip, num_clips=options.num_clips,
                           sync_shift_frames=options.sync_shift_frames, start_from_ref=options.start_from_ref)
    meta = {"comment": f"talkverse seed={options.seed} steps={options.num_inference_steps} "
                       f"shift={float(pipe.scheduler.config.flow_shift)} guide={options.guidance_scale} "
                       f"frames={options.frames_per_clip}"}
    fps = pipe.family.fps
    if face_dub(inputs, options):
        return _face_dub(pipe, inputs, options, output_path, kw, plan, meta, on_frames, on_clip, callback_on_step_end)
    with VideoWriter(output_path, fps=fps, crf=options.crf, audio=inputs.audio, audio_bitrate=options.audio_bitrate,
                     max_frames=plan.output_frames, rounding=options.rounding, metadata=meta,
                     max_audio_seconds=plan.output_frames / fps if plan.capped else None) as writer:
        for clip, frames in enumerate(pipe.iter_clips(inputs.image, callback_on_step_end=callback_on_step_end, **kw)):
            t0 = time.perf_counter()
            writer.write(frames)
            size = tuple(frames.shape[-2:])
            if on_frames is not None:
                on_frames(frames)
            if on_clip is not None:
                on_clip(clip, plan.num_clips, {**pipe.clip_seconds[clip], "write": time.perf_counter() - t0})
    return VideoResult(Path(output_path), options.seed, plan.num_clips, writer.frames_written, size,
                       time.perf_counter() - t0, fps)


def face_dub(inputs: DecodedInputs | None, options: GenerationOptions) -> bool:
    """Whether this request dubs only a face (``dub_region`` face/mouth with a dubbing source)."""
    return inputs is not None and inputs.dub_video is not None and options.dub_region != "full"


def _face_dub(pipe, inputs, options, output_path, kw, plan, meta, on_frames, on_clip, callback) -> VideoResult:
    """generate_to_file for ``dub_region`` face/mouth: the crops at the model bucket (``size``/a fixed WxH, else the
    ``size_bucket`` entry nearest the face's aspect ratio), the video at the source's size (talkverse.facedub)."""
    from .facedub import face_dub_to_file, load_face_track
    from .media.writer import VideoWriter

    t0 = time.perf_counter()
    hw = output_size(inputs, options)
    if hw is None:
        b = load_face_track(inputs, options).boxes
        b = b[np.isfinite(b).all(1)]
        hw = choose_bucket(float(np.median(b[:, 3] - b[:, 1])), float(np.median(b[:, 2] - b[:, 0])),
                           options.size_bucket)
    kw = {**kw, "height": hw[0], "width": hw[1]}
    kw.pop("size_bucket", None)
    fps = pipe.family.fps
    with VideoWriter(output_path, fps=fps, crf=options.crf, audio=inputs.audio, audio_bitrate=options.audio_bitrate,
                     max_frames=plan.output_frames, rounding=options.rounding, metadata=meta,
                     max_audio_seconds=plan.output_frames / fps if plan.capped else None) as writer:
        passed, regions = face_dub_to_file(pipe, inputs, options, output_path, writer, kw, plan, on_frames, on_clip, callback)
    info = inputs.dub_video.info
    return VideoResult(Path(output_path), options.seed, plan.num_clips, writer.frames_written,
                       (info.height, info.width), time.perf_counter() - t0, fps, passed, regions)


# ------------------------------------------------------------------ output names
def size_tag(options: GenerationOptions) -> str:
    return options.size.replace("*", "x") if options.size else options.size_bucket


def default_output_path(output_dir: str | Path, stem: str, options: GenerationOptions) -> Path:
    """``<output_dir>/<stem>_<size>_<F>f_<seed>.mp4`` (generate.py's single-video name)."""
    return Path(output_dir) / f"{stem}_{size_tag(options)}_{options.frames_per_clip}f_{options.seed}.mp4"


def timestamped_output_path(output_dir: str | Path, seed: int | None) -> Path:
    """A unique ``talkverse_<time>_<random>_<seed>.mp4`` (the web app's name)."""
    import uuid

    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(output_dir) / f"talkverse_{stamp}_{uuid.uuid4().hex[:8]}_{'random' if seed is None else seed}.mp4"
