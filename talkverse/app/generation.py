"""One web request: checked inputs + settings -> an mp4 (H.264 at the model's fps, 25 or 16, with the speech as AAC) in
the output folder,
written by ``talkverse.runner`` as generate.py writes it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..media.audio import DecodedAudio
from ..pipelines.prompts import DEFAULT_PROMPT
from ..pipelines.timeline import audio_frames
from .progress import ClipProgress, Report


@dataclass
class GenerationResult:
    video_path: Path
    seed: int
    num_clips: int
    frames: int
    size: tuple[int, int]  # (height, width)
    seconds: float  # of video
    elapsed: float  # wall time of the pipeline call

    def caption(self) -> str:
        return f"seed {self.seed} · {self.size[1]}x{self.size[0]} · {self.seconds:.2f} s"

    def summary(self) -> str:
        return (f"Done in {self.elapsed:.0f} s: {self.frames} frames ({self.seconds:.2f} s) at "
                f"{self.size[1]}x{self.size[0]}, {self.num_clips} clip{'s' * (self.num_clips != 1)}, seed {self.seed}.")


def generate_video(pipe, image, audio: DecodedAudio, prompt: str, negative_prompt: str | None, options: dict,
                   output_dir: Path, report: Report | None = None, pose_video: str | None = None) -> GenerationResult:
    """Run ``pipe`` over the whole audio (or ``options['num_clips']`` clips) and write the mp4.

    ``image`` is the checked portrait (PIL) and ``audio`` the checked, decoded speech; ``options`` come from
    ``validation.check_settings``; ``report`` receives ((done, total), description) per denoising step and while
    frames are written. ``pose_video``: an S2V-14B model's pose (DWPose) video, read at the model's fps."""
    from ..runner import DecodedInputs, GenerationOptions, generate_to_file, resolve_seed, timestamped_output_path

    opts = GenerationOptions(prompt=(prompt or "").strip() or DEFAULT_PROMPT, negative_prompt=negative_prompt,
                             size_bucket=options["size_bucket"], frames_per_clip=options["infer_frames"],
                             num_inference_steps=options["num_inference_steps"],
                             guidance_scale=options["guidance_scale"], num_clips=options["num_clips"],
                             seed=resolve_seed(options["seed"]), progress=False)
    progress = ClipProgress(report, opts.num_inference_steps, audio_frames(len(audio.waveform())))

    def on_step(p, step, timestep, tensors):
        progress.on_step(p.current_clip, p.num_clips, step)
        return {}

    out = timestamped_output_path(output_dir, options["seed"])
    pose = None
    if pose_video is not None:
        from ..media.video import VideoReader

        pose = VideoReader(pose_video)
    inputs = DecodedInputs(image, audio, pose_video=pose, fps=pipe.family.fps)
    try:
        result = generate_to_file(pipe, inputs, opts, out, on_frames=progress.on_frames, callback_on_step_end=on_step)
    finally:
        inputs.close()
    return GenerationResult(video_path=result.video_path, seed=result.seed, num_clips=result.num_clips,
                            frames=result.frames, size=result.size, seconds=result.seconds, elapsed=result.elapsed)
