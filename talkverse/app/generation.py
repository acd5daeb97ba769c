"""One web request: checked inputs + settings -> an mp4 (H.264 25 fps with the speech as AAC) in the output folder."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..pipelines.pipeline_talkverse import DEFAULT_PROMPT
from ..pipelines.timeline import audio_frames
from .progress import ClipProgress, Report
from .validation import CheckedAudio


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


def output_name(output_dir: Path, seed: int | None) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(output_dir) / f"talkverse_{stamp}_{uuid.uuid4().hex[:8]}_{'random' if seed is None else seed}.mp4"


def generate_video(pipe, image, audio_path: str | Path, audio: CheckedAudio, prompt: str, negative_prompt: str | None,
                   options: dict, output_dir: Path, report: Report | None = None) -> GenerationResult:
    """Run ``pipe`` over the whole audio (or ``options['num_clips']`` clips) and write the mp4.

    ``image`` is the checked portrait (PIL); ``options`` come from ``validation.check_settings``; ``report`` receives
    ((done, total), description) per denoising step and while frames are written."""
    out = output_name(output_dir, options.get("seed"))
    progress = ClipProgress(report, options["num_inference_steps"], audio_frames(len(audio.waveform)))
    t0 = time.perf_counter()
    result = pipe(image, str(audio_path), (prompt or "").strip() or DEFAULT_PROMPT, negative_prompt,
                  output_path=out, progress=False, frame_callback=progress.on_frames, step_callback=progress.on_step,
                  **options)
    plan = result.plan
    return GenerationResult(video_path=Path(result.video_path), seed=result.seed, num_clips=plan.num_clips,
                            frames=plan.output_frames, size=result.size, seconds=plan.output_frames / 25.0,
                            elapsed=time.perf_counter() - t0)
