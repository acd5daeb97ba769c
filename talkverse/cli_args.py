"""Command-line flags shared by generate.py and ``python -m talkverse.app`` (read by
talkverse.pipelines.from_args.load_pipeline_from_args). Imports nothing heavy, so ``--help`` stays instant."""

from __future__ import annotations


def add_model_arguments(group, *, task_help: str, ckpt_dir_default: str = "", reference_compat: bool = False) -> None:
    """The model-loading flags shared by generate.py and ``python -m talkverse.app`` (read by load_pipeline_from_args).

    ``task_help`` says what --task defaults to in that CLI; ``reference_compat`` adds the reference's flags that
    generate.py accepts for its users' command lines (--lora_rank, --lora_merge) and --check_ckpt.
    """
    group.add_argument("--task", default=None, choices=["s2v-5B", "s2v-tiny-demo"], help=task_help)
    group.add_argument("--ckpt_dir", help="Wan2.2-TI2V-5B directory (original or Diffusers layout) or a saved "
                                          "TalkVersePipeline folder" + ckpt_dir_default)
    group.add_argument("--lora_ckpt", help="the TalkVerse checkpoint (.safetensors: S2V modules, time/head, LoRA "
                                           "pairs); merged into the DiT at load time")
    group.add_argument("--wav2vec_dir", help="local wav2vec2-large-xlsr-53-english folder (default: "
                                             "<ckpt_dir>/audio_encoder or <ckpt_dir>/wav2vec2-large-xlsr-53-english)")
    group.add_argument("--model_config", default="s2v_5b", help="transformer config preset for the original layout "
                                                                "(configs/<name>.yaml; the demo task sets s2v_demo)")
    group.add_argument("--lora_alpha", type=float, default=None, help="LoRA alpha (default: the file's metadata, "
                                                                      "else 128 = scale 1)")
    if reference_compat:
        group.add_argument("--lora_rank", type=int, default=128, help="accepted for the reference's CLI; the rank "
                                                                      "is read from the file")
        group.add_argument("--lora_merge", default="True", help="accepted for the reference's CLI; LoRA is always "
                                                                "merged")
        group.add_argument("--check_ckpt", action="store_true", help="only load the transformer from "
                                                                     "--ckpt_dir/--lora_ckpt and report its size or "
                                                                     "the checkpoint problem")


def add_device_arguments(group) -> None:
    """--device and the memory flags shared by generate.py and the web app."""
    group.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda:LOCAL_RANK if available, "
                                                      "else cpu)")
    group.add_argument("--convert_model_dtype", action="store_true", help="DiT weights in bf16 (fp32 islands kept)")
    group.add_argument("--offload_model", action="store_true", help="keep umT5/wav2vec2 on the CPU except while "
                                                                    "they run")
    group.add_argument("--t5_cpu", action="store_true", help="run umT5 on the CPU (freed after encoding)")


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
    group.add_argument("--compile", action="store_true", help="torch.compile the repeated DiT blocks (regional, "
                                                              "fullgraph; the first clip pays the compile time)")
    group.add_argument("--fp8", action="store_true", help="store the DiT linear weights in float8_e4m3fn and upcast "
                                                          "them per layer (halves weight memory; lossy)")
    group.add_argument("--group_offload", action="store_true", help="keep the DiT weights on the CPU and copy one "
                                                                    "block at a time to the GPU (block-level, CUDA "
                                                                    "streams)")
