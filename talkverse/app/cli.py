"""``python -m talkverse.app``: the flags, and the launch (model loaded lazily, requests queued one at a time).

Without --ckpt_dir the page runs the shipped tiny demo model (talkverse/demo/talkverse-tiny-demo) with its settings, as
``python generate.py`` does; --ckpt_dir/--lora_ckpt take what generate.py takes (the original or Diffusers Wan2.2-TI2V-5B
layout plus the TalkVerse file, or a saved TalkVersePipeline folder).
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import shutil
import signal
import sys
from pathlib import Path

from ..cli.args import add_device_arguments, add_model_arguments, add_performance_arguments

DESCRIPTION = """Serve the TalkVerse web UI: upload a portrait and speech (or record it), get a lip-synced mp4.

  python -m talkverse.app                                   # the shipped tiny demo model (CPU), 127.0.0.1:7860
  python -m talkverse.app --ckpt_dir ckpts/Wan2.2-TI2V-5B --lora_ckpt ckpts/talkverse_s2v_5b.safetensors \\
      --wav2vec_dir ckpts/wav2vec2-large-xlsr-53-english --convert_model_dtype

The model is loaded on the first request and shared by every user; requests are queued and run one at a time.
The sampling flags only set the page's initial values (each user can change them under "Advanced settings")."""


def _positive(kind):
    def parse(v: str):
        x = kind(v)
        if x <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {v}")
        return x

    return parse


def _non_negative_int(v: str) -> int:
    x = int(v)
    if x < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {v}")
    return x


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m talkverse.app", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    m = p.add_argument_group("model (as generate.py)")
    add_model_arguments(m, ckpt_dir_default=" (default: the demo model, talkverse/demo/talkverse-tiny-demo)",
                        task_help="s2v-tiny-demo: the demo model's settings (128x128, 24 frames per clip, 20 steps, "
                                  "guide 4, seed 0), and its folder unless --ckpt_dir is given; s2v-5B: the real "
                                  "model's settings. Default: s2v-tiny-demo without --ckpt_dir, else s2v-5B")
    m.add_argument("--extra_model", action="append", default=[], metavar="NAME=CKPT_DIR",
                   help="another model for the page's model switch (repeatable), e.g. s2v-14B=ckpts/Wan2.2-S2V-14B; "
                        "its task and settings are recognised from the folder; one model is loaded at a time")
    add_device_arguments(m)
    add_performance_arguments(p.add_argument_group("performance (docs/performance.md)"))

    d = p.add_argument_group("the page's initial settings")
    d.add_argument("--prompt", default="A person is speaking to the camera.", help="initial prompt")
    d.add_argument("--neg_prompt", "--negative_prompt", dest="neg_prompt", default=None,
                   help="initial negative prompt (default: the s2v-5B config's Chinese negative prompt)")
    d.add_argument("--size_bucket", default="fasttalk-720",
                   help="fasttalk-720 | fasttalk-480 (nearest aspect ratio) or a fixed WxH (width first) such as "
                        "128x128")
    d.add_argument("--infer_frames", type=int, default=120, help="frames per clip (multiple of 4, 4..160)")
    d.add_argument("--sample_steps", type=int, default=50, help="denoising steps per clip")
    d.add_argument("--sample_guide_scale", type=float, default=6.5, help="CFG scale (<= 1 disables CFG)")
    d.add_argument("--base_seed", type=int, default=-1, help="seed; -1 = a random seed per request")

    s = p.add_argument_group("server")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only; "
                                                       "0.0.0.0 serves the network)")
    s.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    s.add_argument("--max_audio_seconds", type=_positive(float), default=120.0,
                   help="longest speech accepted, in seconds (default 120); longer uploads get an error message")
    s.add_argument("--history", type=_non_negative_int, default=8,
                   help="results shown in the gallery of each browser session (default 8; 0 hides it)")
    s.add_argument("--output_dir", default=None,
                   help="folder for the generated mp4s (default: a new temporary folder)")
    s.add_argument("--max_file_size", default="200mb", help="largest upload accepted (default 200mb)")
    s.add_argument("--queue_size", type=_positive(int), default=None,
                   help="requests allowed to wait in the queue (default: unlimited)")
    s.add_argument("--log_level", default="info", choices=["debug", "info", "warning", "error"],
                   help="console log level (default info; debug adds the traceback of every failed request)")

    e = p.add_argument_group("prompt enhancement (optional)")
    e.add_argument("--enhancer", default=None,
                   help="local transformers chat model folder (AutoModelForCausalLM + a tokenizer with a chat "
                        "template); shows an 'Enhance prompt' button that rewrites the prompt as a visual "
                        "description plus the audio style. Without it the button is hidden")
    e.add_argument("--enhancer_device", default="cpu", help="device of the enhancer model (default cpu)")
    e.add_argument("--enhancer_max_new_tokens", type=_positive(int), default=160,
                   help="longest enhanced prompt, in tokens (default 160)")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and resolve the task: the demo's settings fill every option left at its default (as generate.py)."""
    from ..cli.demo_task import apply_demo_task

    parser = build_parser()
    args = parser.parse_args(argv)
    args.ckpt_dir_given = args.ckpt_dir is not None
    try:
        apply_demo_task(args, parser, bare=not args.ckpt_dir_given)
    except FileNotFoundError as e:
        parser.error(str(e))
    if not Path(args.ckpt_dir).exists():
        parser.error(f"--ckpt_dir {args.ckpt_dir}: not found")
    if args.enhancer is not None and not Path(args.enhancer).is_dir():
        parser.error(f"--enhancer {args.enhancer}: not a folder")
    args.extra_models = [_extra_model(spec, args, parser) for spec in args.extra_model]
    return args


# Per-model settings an extra model takes from its own task, not from the main model's flags.
_PER_MODEL = ("task", "ckpt_dir", "lora_ckpt", "wav2vec_dir", "model_config", "infer_frames", "sample_steps",
              "sample_guide_scale")


def _extra_model(spec: str, args, parser) -> argparse.Namespace:
    """``NAME=CKPT_DIR`` -> the arguments of that model: the main model's, with the per-model settings reset to the
    parser's defaults and resolved for the folder's task (as generate.py would without --task)."""
    from ..cli.demo_task import apply_demo_task

    name, sep, folder = spec.partition("=")
    if not sep or not name or not folder:
        parser.error(f"--extra_model {spec!r}: use NAME=CKPT_DIR")
    if not Path(folder).exists():
        parser.error(f"--extra_model {spec}: {folder} not found")
    extra = argparse.Namespace(**vars(args))
    for key in _PER_MODEL:
        setattr(extra, key, parser.get_default(key))
    extra.ckpt_dir, extra.name, extra.ckpt_dir_given = folder, name, True
    apply_demo_task(extra, parser, bare=False)
    return extra


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    args = parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper()), format="%(message)s")
    for noisy in ("httpx", "urllib3", "diffusers", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from ..cli.args import load_pipeline_from_args
    from ..parallel.distributed import default_device
    from .enhancer import PromptEnhancer
    from .model import ModelCache, ModelSwitch
    from .settings import settings_from_args
    from .ui import build_ui

    settings = settings_from_args(args)
    if args.output_dir is None:  # our own temporary folder: removed when the server stops (Ctrl-C or SIGTERM)
        atexit.register(shutil.rmtree, settings.output_dir, True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    def loader(a):
        def load():
            logging.getLogger("talkverse.app").info("loading %s", a.ckpt_dir)
            pipe = load_pipeline_from_args(a, default_device(a.device))
            pipe.set_progress_bar_config(disable=True)
            return pipe
        return load

    enhancer = None if args.enhancer is None else PromptEnhancer(args.enhancer, device=args.enhancer_device,
                                                                 max_new_tokens=args.enhancer_max_new_tokens)
    models = ModelCache(loader(args)) if not args.extra_models else \
        ModelSwitch({settings.model_name: loader(args), **{e.name: loader(e) for e in args.extra_models}})
    demo = build_ui(settings, models, enhancer)
    demo.queue(default_concurrency_limit=1, max_size=args.queue_size)
    print(f"talkverse app: {args.task} model {args.ckpt_dir}; outputs in {settings.output_dir}", flush=True)
    demo.launch(server_name=args.host, server_port=args.port, allowed_paths=[str(settings.output_dir)],
                max_file_size=args.max_file_size, ssr_mode=False, show_error=False, quiet=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
