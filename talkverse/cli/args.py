"""Command-line flags shared by ``talkverse-generate`` (generate.py) and ``python -m talkverse.app``, and the model
loader that reads them (:func:`load_pipeline_from_args`). Imports nothing heavy at import time, so ``--help`` stays
instant."""

from __future__ import annotations


def add_model_arguments(group, *, task_help: str, ckpt_dir_default: str = "", reference_compat: bool = False) -> None:
    """The model-loading flags shared by generate.py and ``python -m talkverse.app`` (read by
    :func:`load_pipeline_from_args`).

    ``task_help`` says what --task defaults to in that CLI; ``reference_compat`` adds the reference's flags that
    generate.py accepts for its users' command lines (--lora_rank, --lora_merge) and --check_ckpt.
    """
    group.add_argument("--task", default=None, choices=["s2v-5B", "s2v-14B", "s2v-tiny-demo"], help=task_help)
    group.add_argument("--ckpt_dir", help="Wan2.2-TI2V-5B or Wan2.2-S2V-14B directory (original or Diffusers layout) "
                                          "or a saved TalkVersePipeline folder" + ckpt_dir_default)
    group.add_argument("--lora_ckpt", help="the TalkVerse checkpoint (.safetensors: S2V modules, time/head, LoRA "
                                           "pairs); merged into the DiT at load time")
    group.add_argument("--wav2vec_dir", help="local wav2vec2-large-xlsr-53-english folder (default: "
                                             "<ckpt_dir>/audio_encoder or <ckpt_dir>/wav2vec2-large-xlsr-53-english)")
    group.add_argument("--model_config", default="s2v_5b", help="transformer config preset for the original layout "
                                                                "(talkverse/configs/<name>.yaml, or a YAML path; "
                                                                "--task s2v-14B: s2v_14b)")
    group.add_argument("--lora_alpha", type=float, default=None, help="LoRA alpha (default: the file's metadata, "
                                                                      "else 128 = scale 1)")
    if reference_compat:
        group.add_argument("--lora_rank", type=int, default=128, help="accepted for the reference's CLI; the rank "
                                                                      "is read from the file")
        group.add_argument("--lora_merge", default="True", help="accepted for the reference's CLI; LoRA is always "
                                                                "merged")
        add_switches(group, [("--check_ckpt", "only load the transformer from --ckpt_dir/--lora_ckpt and report its "
                                              "size or the checkpoint problem")])


def add_switches(group, switches: list[tuple[str, str]]) -> None:
    """On/off flags (``store_true``), each (flag, help)."""
    for flag, help_text in switches:
        group.add_argument(flag, action="store_true", help=help_text)


def add_device_arguments(group) -> None:
    """--device and the memory flags shared by generate.py and the web app."""
    group.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda:LOCAL_RANK if available, "
                                                      "else cpu)")
    add_switches(group, [("--convert_model_dtype", "DiT weights in bf16 (fp32 islands kept)")])
    group.add_argument("--offload_model", nargs="?", const=True, default=False, type=_bool,
                       help="keep umT5/wav2vec2 on the CPU except while they run (Wan2.2's '--offload_model True' "
                            "also works)")
    add_switches(group, [("--t5_cpu", "run umT5 on the CPU (freed after encoding)")])


def _bool(v: str) -> bool:
    if str(v).lower() in ("true", "1", "yes"):
        return True
    if str(v).lower() in ("false", "0", "no"):
        return False
    import argparse

    raise argparse.ArgumentTypeError(f"expected True or False, got {v!r}")


def add_performance_arguments(group) -> None:
    """--profile and the single optimisation flags (talkverse.perf.optimize; docs/performance.md)."""
    group.add_argument("--profile", default="default", choices=["default", "fast", "low_vram"],
                       help="default: only the flags below; fast: bf16 + fastest attention + compiled blocks; "
                            "low_vram: a minute-long 704x1280 video within 24 GB (bf16 compute, fp8 weight storage, "
                            "block-level group offloading with streams, wav2vec2 offloaded, umT5 on the CPU, "
                            "streaming decode)")
    group.add_argument("--attention_backend", default=None,
                       choices=["auto", "sdpa", "cudnn", "flash", "efficient", "math", "flash-attn", "fa3", "sage"],
                       help="DiT attention kernel: auto = SDPA-cuDNN on Hopper, else SDPA-flash/efficient; "
                            "flash-attn, fa3 and sage need their packages (sage is lossy)")
    add_switches(group, [
        ("--compile", "torch.compile the repeated DiT blocks (regional, fullgraph; the first clip pays the compile "
                      "time)"),
        ("--fp8", "store the DiT linear weights in float8_e4m3fn and upcast them per layer (halves weight memory; "
                  "lossy)"),
        ("--group_offload", "keep the DiT weights on the CPU and copy one block at a time to the GPU (block-level, "
                            "CUDA streams)")])


def load_pipeline_from_args(args, device, dit_only: bool = False):
    """The pipeline named by the parsed model, device, sampler and performance flags (generate.py's names; a flag an
    entry point lacks takes its default). ``--profile low_vram`` also sets the loader flags it needs (umT5 on the
    CPU, encoder offloading, bf16 DiT weights) before anything is loaded."""
    import torch

    from ..perf.optimize import resolve_profile
    from ..pipelines.loading import load_pipeline

    get = lambda name, default=None: getattr(args, name, default)  # noqa: E731
    if get("quiet", False):  # the loaders' own bars ("Loading pipeline components", "Loading weights")
        from diffusers.utils import logging as diffusers_logging
        from transformers.utils import logging as transformers_logging

        diffusers_logging.disable_progress_bar()
        transformers_logging.disable_progress_bar()
    profile = resolve_profile(get("profile"))
    bf16 = get("convert_model_dtype", False) or profile.dtype == "bf16"
    perf = dict(attention_backend=get("attention_backend"), compile=get("compile", False), fp8=get("fp8", False),
                group_offload=get("group_offload", False))
    pipe = load_pipeline(args.ckpt_dir, get("lora_ckpt"), get("wav2vec_dir"), config=get("model_config", "s2v_5b"),
                         dit_dtype=torch.bfloat16 if bf16 else torch.float32, device=device,
                         t5_cpu=get("t5_cpu", False) or bool(profile.t5_cpu), lora_alpha=get("lora_alpha"),
                         dit_only=dit_only, profile=get("profile"), perf=perf, shift=get("sample_shift", 5.0),
                         solver=get("sample_solver", "unipc"))
    pipe.offload_encoders = pipe.offload_encoders or get("offload_model", False) or bool(profile.offload_encoders)
    if get("cache", "none") != "none":  # a step cache on the DiT (talkverse.pipelines.caching)
        from ..pipelines.caching import step_cache_config
        from .values import mag_ratios

        pipe.transformer.enable_cache(step_cache_config(args.cache, get("sample_steps", 50), get("cache_threshold"),
                                                        get("cache_interval"), mag_ratios(args)))
    if get("quiet", False):
        pipe.set_progress_bar_config(disable=True)
    return pipe
