"""What the page shows by default and the limits it enforces, resolved once from the command line."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..pipelines.prompts import DEFAULT_NEGATIVE_PROMPT, DEFAULT_PROMPT

SIZE_BUCKETS = ("fasttalk-720", "fasttalk-480", "128x128", "256x256", "512x512")


@dataclass
class AppSettings:
    prompt: str = DEFAULT_PROMPT
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    size_bucket: str = "fasttalk-720"
    infer_frames: int = 120
    steps: int = 50
    guide_scale: float = 6.5
    seed: int = -1  # -1: a random seed per request
    max_audio_seconds: float = 120.0
    history: int = 8  # results kept in the gallery
    output_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="talkverse-app-")))
    model_name: str = ""  # shown in the page's header
    # The page's model switch: name -> {"infer_frames", "steps", "guide_scale", "pose"} (the first is the default);
    # empty or one entry: no switch is shown.
    models: dict = field(default_factory=dict)

    @property
    def size_buckets(self) -> list[str]:
        return list(dict.fromkeys([self.size_bucket, *SIZE_BUCKETS]))


def settings_from_args(args) -> AppSettings:
    """The page's defaults: generate.py's (or, for the demo task, the demo model's) unless a flag says otherwise."""
    out = Path(args.output_dir) if args.output_dir else None
    kw = {} if out is None else {"output_dir": out}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    name = "the tiny demo model" if args.task == "s2v-tiny-demo" and not args.ckpt_dir_given else \
        Path(args.ckpt_dir).resolve().name
    models = {name: model_defaults(args)}
    for extra in getattr(args, "extra_models", []):
        models[extra.name] = model_defaults(extra)
    return AppSettings(prompt=args.prompt, negative_prompt=DEFAULT_NEGATIVE_PROMPT if args.neg_prompt is None
                       else args.neg_prompt, size_bucket=args.size_bucket, infer_frames=args.infer_frames,
                       steps=args.sample_steps, guide_scale=args.sample_guide_scale, seed=args.base_seed,
                       max_audio_seconds=args.max_audio_seconds, history=args.history, model_name=name, models=models,
                       **kw)


def model_defaults(args) -> dict:
    """What the page switches to with a model: its frames, steps and guide scale, and whether it takes a pose."""
    return {"infer_frames": args.infer_frames, "steps": args.sample_steps, "guide_scale": args.sample_guide_scale,
            "pose": args.task == "s2v-14B"}
