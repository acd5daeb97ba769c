"""``--task``: the shipped tiny demo model (``s2v-tiny-demo``, ``talkverse.demo``) and the generation settings it was
trained for, and ``s2v-14B`` (Wan2.2-S2V-14B) with its config and sampling defaults; shared by ``talkverse-generate``
and the web app so both pick the same model folder and defaults."""

from __future__ import annotations

from pathlib import Path

DEMO_TASK = "s2v-tiny-demo"
REAL_TASK = "s2v-5B"
S2V_14B_TASK = "s2v-14B"


def s2v14b_defaults() -> dict:
    """Wan2.2-S2V-14B's settings (talkverse.pipelines.family; wan/configs/wan_s2v_14B.py)."""
    from ..pipelines.family import S2V_14B

    return {"model_config": S2V_14B.config, "infer_frames": S2V_14B.frames_per_clip,
            "sample_steps": S2V_14B.sample_steps, "sample_shift": S2V_14B.sample_shift,
            "sample_guide_scale": S2V_14B.guide_scale}


def is_s2v14b_folder(ckpt_dir) -> bool:
    from ..loaders.layout import folder_family

    return bool(ckpt_dir) and Path(ckpt_dir).is_dir() and folder_family(ckpt_dir) == S2V_14B_TASK


def demo_defaults() -> dict:
    """The demo model's settings (its training recipe: scripts/train_demo.sh); flags given explicitly win."""
    from ..demo import demo_face, demo_model_dir, demo_speech

    return {"ckpt_dir": str(demo_model_dir()), "image": str(demo_face()), "audio": str(demo_speech()),
            "size_bucket": "128x128", "infer_frames": 24, "sample_steps": 20, "sample_guide_scale": 4.0,
            "base_seed": 0}


def is_demo_architecture(ckpt_dir) -> bool:
    """``ckpt_dir`` is a saved pipeline with the demo model's transformer config: the demo itself, a copy, or a model
    fine-tuned from it and exported (read from config.json files only)."""
    from ..demo import demo_model_dir
    from ..loaders.layout import saved_transformer_config

    mine = saved_transformer_config(ckpt_dir) if ckpt_dir and Path(ckpt_dir).is_dir() else None
    return mine is not None and demo_model_dir().is_dir() and mine == saved_transformer_config(demo_model_dir())


def apply_demo_task(args, parser, *, bare: bool) -> None:
    """Resolve ``args.task`` (None -> the demo when ``bare`` or when ``--ckpt_dir`` holds the demo architecture, else
    s2v-5B) and, for the demo task, fill :func:`demo_defaults` into every attribute of ``args`` still at ``parser``'s
    default (so a fine-tune of the demo runs at the demo's 128x128 / 24 frames / 20 steps, not at 720p).

    Raises FileNotFoundError (one line) when the demo model folder is the one to load and it is missing."""
    if args.task is None:
        args.task = DEMO_TASK if bare or is_demo_architecture(args.ckpt_dir) else \
            S2V_14B_TASK if is_s2v14b_folder(args.ckpt_dir) else REAL_TASK
    if args.task == S2V_14B_TASK:
        from ..loaders.layout import folder_family, is_talkverse_folder
        from .checks import UsageError

        saved = bool(args.ckpt_dir) and is_talkverse_folder(args.ckpt_dir)
        if saved and folder_family(args.ckpt_dir) != S2V_14B_TASK:
            raise UsageError(f"--task s2v-14B: {args.ckpt_dir} holds an s2v-5B model")
        defaults = s2v14b_defaults()
        if saved:  # a saved pipeline carries its own transformer config
            defaults.pop("model_config")
        _fill(args, parser, defaults)
    if args.task != DEMO_TASK:
        return
    defaults = demo_defaults()
    if getattr(args, "batch_file", None):  # batch items name their own inputs
        defaults.pop("image"), defaults.pop("audio")
    if getattr(args, "dub_video", None):  # the portrait is the source's first frame
        defaults.pop("image")
    _fill(args, parser, defaults)
    if args.ckpt_dir == defaults["ckpt_dir"] and not Path(args.ckpt_dir).is_dir():
        raise FileNotFoundError(f"the tiny demo model is not in this installation ({args.ckpt_dir}); build it with "
                                "scripts/train_demo.sh, or pass --ckpt_dir (and --lora_ckpt) for another model")


def _fill(args, parser, defaults: dict) -> None:
    """Set every attribute of ``args`` still at ``parser``'s default (or None) to ``defaults``; given flags win."""
    for key, value in defaults.items():
        if hasattr(args, key) and getattr(args, key) in (None, parser.get_default(key)):
            setattr(args, key, value)
