"""The shipped tiny demo model: where it lives and the generation settings it was trained for.

Shared by ``generate.py --task s2v-tiny-demo`` and the web app (``python -m talkverse.app``), so both pick the same
model folder and defaults. ``apply_demo_task`` fills the demo's values into every option a command line left at its
own default; options that a command line does not have are skipped.
"""

from __future__ import annotations

from pathlib import Path

DEMO_TASK = "s2v-tiny-demo"
REAL_TASK = "s2v-5B"
# demo/ sits next to generate.py at the repository root (the package is installed in editable mode from there).
DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"
DEMO_MODEL_DIR = DEMO_DIR / "talkverse-tiny-demo"
# The demo model's settings (its training recipe: scripts/train_demo.sh); flags given explicitly win.
DEMO_DEFAULTS = {"ckpt_dir": str(DEMO_MODEL_DIR), "image": str(DEMO_DIR / "face.png"),
                 "audio": str(DEMO_DIR / "speech.wav"), "size_bucket": "128x128", "infer_frames": 24,
                 "sample_steps": 20, "sample_guide_scale": 4.0, "base_seed": 0, "model_config": "s2v_demo"}


def demo_model_missing() -> str:
    return (f"the tiny demo model is not in this checkout yet ({DEMO_MODEL_DIR}); build it with "
            "scripts/train_demo.sh, or pass --ckpt_dir (and --lora_ckpt) for another model")


def apply_demo_task(args, parser, *, bare: bool) -> None:
    """Resolve ``args.task`` (None -> the demo when ``bare``, else s2v-5B) and, for the demo task, fill
    ``DEMO_DEFAULTS`` into every attribute of ``args`` still at ``parser``'s default.

    Raises SystemExit with one line when the demo model folder is the one to load and it is missing."""
    if args.task is None:
        args.task = DEMO_TASK if bare else REAL_TASK
    if args.task != DEMO_TASK:
        return
    for key, value in DEMO_DEFAULTS.items():
        if hasattr(args, key) and getattr(args, key) in (None, parser.get_default(key)):
            setattr(args, key, value)
    if Path(args.ckpt_dir) == DEMO_MODEL_DIR and not DEMO_MODEL_DIR.is_dir():
        raise SystemExit(f"error: {demo_model_missing()}")
