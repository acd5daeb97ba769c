#!/usr/bin/env python
"""talkverse generate: (portrait image, speech audio, prompt) -> lip-synced mp4 with the audio muxed.

Single video:
    python generate.py --ckpt_dir ckpts/Wan2.2-TI2V-5B --lora_ckpt ckpts/talkverse_s2v_5b.safetensors \\
        --wav2vec_dir ckpts/wav2vec2-large-xlsr-53-english --image face.png --audio speech.wav \\
        --prompt "A woman talks to the camera." --convert_model_dtype

Batch (JSON array or JSONL of {image, audio, prompt, name?}; the reference's cond_image/cond_audio.person1 works):
    python generate.py --ckpt_dir ... --batch_file items.jsonl --output_dir outputs/
    torchrun --nproc_per_node=8 generate.py --ckpt_dir ... --batch_file items.jsonl --output_dir outputs/

The flag names are the reference TalkVerse generate.py's, so its commands keep working; the reference's batch mode is
only taken when --batch_file is given. --ckpt_dir takes the original Wan2.2-TI2V-5B directory, Wan2.2-TI2V-5B in the
Diffusers layout, or a folder saved by TalkVersePipeline.save_pretrained (no --lora_ckpt then).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from talkverse.cli_args import add_device_arguments, add_model_arguments, add_performance_arguments

DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def _num_clip(v: str):
    if v == "auto":
        return None
    n = int(v)
    if n <= 0:
        raise argparse.ArgumentTypeError("--num_clip must be 'auto' or a positive integer")
    return n


def _shift_frames(v: str):
    return v if v == "auto" else int(v)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    m = p.add_argument_group("model")
    add_model_arguments(m, reference_compat=True,
                        task_help="s2v-5B: TalkVerse S2V-5B (needs --ckpt_dir); s2v-tiny-demo: the shipped tiny demo "
                                  "model (demo/, CPU, no download). Default: s2v-5B, or the demo when generate.py runs "
                                  "without --ckpt_dir/--image/--audio/--batch_file")

    i = p.add_argument_group("inputs")
    i.add_argument("--image", help="reference portrait (any PIL-readable image; EXIF rotation applied)")
    i.add_argument("--audio", help="speech: any audio file or a video's audio track; the video covers all of it")
    i.add_argument("--prompt", default="A person is speaking to the camera.", help="one prompt for the whole video")
    i.add_argument("--neg_prompt", "--negative_prompt", dest="neg_prompt", default=None,
                   help="negative prompt (default: the s2v-5B config's Chinese negative prompt)")
    i.add_argument("--dub_video", help="dubbing: regenerate this video (resampled to 25 fps) talking --audio")
    i.add_argument("--dub_strength", type=float, default=0.95, help="dubbing noise strength in (0, 1] (default 0.95)")
    i.add_argument("--dub_ref", default="first", choices=["first", "segment-random"],
                   help="dubbing reference frame: the first source frame, or a seeded random frame per clip")

    s = p.add_argument_group("size and length")
    s.add_argument("--size_bucket", default="fasttalk-720",
                   help="fasttalk-720 | fasttalk-480: the table entry closest to the image's aspect ratio; or a fixed "
                        "HxW (multiples of 32) for small models such as the demo model")
    s.add_argument("--size", help="explicit W*H from the tables, e.g. 1280*704 (overrides --size_bucket)")
    s.add_argument("--image_fit", default="cover", choices=["cover", "pad-compat"],
                   help="cover-resize + centre crop (default), or the reference's letterboxing")
    s.add_argument("--infer_frames", type=int, default=120, help="frames per clip (multiple of 4, 4..160)")
    s.add_argument("--num_clip", type=_num_clip, default=None,
                   help="'auto' (default): enough clips for the whole audio; an integer caps the clip count")
    s.add_argument("--frame_num", type=int, default=None, help="accepted for the reference's CLI; unused by s2v")
    s.add_argument("--start_from_ref", action="store_true", help="clip 0 continues from the reference image")
    s.add_argument("--first_clip_motion", default=None, choices=["drop", "zeros"],
                   help="first clip: drop the motion tokens (the reference) or pack 19 zero latents (as in training); "
                        "default: the model's setting (drop for s2v-5B, zeros for the demo model)")
    s.add_argument("--sync_shift_frames", type=_shift_frames, default="auto",
                   help="silence (in 25 fps frames) prepended to the conditioning audio to cancel the video's lead; "
                        "auto = 3 (0 with --start_from_ref); 0 = the reference")

    g = p.add_argument_group("sampling")
    g.add_argument("--sample_solver", default="unipc", choices=["unipc", "dpm++"], help="sampler (unipc = reference)")
    g.add_argument("--sample_steps", type=int, default=50, help="denoising steps per clip")
    g.add_argument("--sample_shift", type=float, default=5.0, help="flow shift of the sigma schedule")
    g.add_argument("--sample_guide_scale", type=float, default=6.5, help="CFG scale for text and audio together "
                                                                         "(<= 1 disables CFG)")
    g.add_argument("--base_seed", type=int, default=-1, help="seed; clip r uses seed + r; -1 = random (printed and "
                                                             "written to the mp4 metadata)")

    d = p.add_argument_group("device and memory")
    add_device_arguments(d)
    d.add_argument("--ulysses_size", type=int, default=1,
                   help="Ulysses sequence parallelism: split every DiT forward over N ranks (torchrun "
                        "--nproc_per_node=N[x2]); N must divide the 24 attention heads")
    d.add_argument("--cfg_parallel", action="store_true",
                   help="run the conditional and unconditional CFG branches on two rank groups (2 x ulysses_size "
                        "ranks)")
    d.add_argument("--dit_fsdp", action="store_true", help="shard the DiT weights with FSDP2 (not implemented yet)")
    d.add_argument("--t5_fsdp", action="store_true", help="accepted for the reference's CLI; umT5 runs on rank 0 only")
    d.add_argument("--no_cfg_batch", action="store_true", help="run the CFG branches one after the other (less "
                                                               "memory)")

    f = p.add_argument_group("performance (docs/performance.md)")
    add_performance_arguments(f)

    o = p.add_argument_group("output")
    o.add_argument("--save_file", help="output mp4 (default: <output_dir>/<image-stem>_<size>_<F>f_<seed>.mp4)")
    o.add_argument("--output_dir", default="outputs", help="folder for outputs (default: outputs)")
    o.add_argument("--save_frames_npy", help="also save the written frames as float32 [T, H, W, 3] in [-1, 1] "
                                             "(.npy; for comparing runs before the uint8/H.264 rounding)")
    o.add_argument("--crf", type=int, default=10, help="H.264 quality (lower = better; default 10)")
    o.add_argument("--audio_bitrate", default="192k", help="AAC bitrate (default 192k)")
    o.add_argument("--batch_file", default=None, help="JSON/JSONL list of items; runs batch mode (sharded across "
                                                      "torchrun ranks with a dynamic queue)")
    o.add_argument("--overwrite", action="store_true", help="batch: regenerate items whose output exists")
    o.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    return p


def _error(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def _validate_inputs(args) -> str | None:
    """One line naming the first problem with the single-video inputs, else None (checked before loading models)."""
    from talkverse.audio.errors import AudioError
    from talkverse.audio.io import load_audio
    from talkverse.video.buckets import parse_size
    from talkverse.video.image import ImageError, load_image

    if args.size:
        try:
            parse_size(args.size)
        except ValueError as e:
            return str(e)
    from talkverse.pipelines.pipeline_talkverse import resolve_bucket

    try:
        resolve_bucket(1, 1, args.size_bucket)
    except ValueError as e:
        return f"--size_bucket: {e}"
    if args.image is None and args.dub_video is None:
        return "--image is required (or --dub_video)"
    if args.audio is None:
        return "--audio is required"
    if args.image is not None:
        try:
            load_image(args.image)
        except ImageError as e:
            return str(e)
    try:
        load_audio(args.audio)
    except AudioError as e:
        return str(e)
    if args.dub_video is not None:
        from talkverse.video.reader import VideoError, probe_video

        try:
            probe_video(args.dub_video)
        except VideoError as e:
            return str(e)
    if args.infer_frames % 4 or not 4 <= args.infer_frames <= 160:
        return f"--infer_frames must be a multiple of 4 in [4, 160], got {args.infer_frames}"
    return None


def _device(args):
    from talkverse.pipelines.from_args import default_device

    return default_device(args.device)


def _load(args, device, dit_only: bool = False):
    from talkverse.perf.optimize import profile_load_flags
    from talkverse.pipelines.from_args import load_pipeline_from_args

    profile_load_flags(args)  # --profile low_vram: --t5_cpu --offload_model --convert_model_dtype
    pipe = load_pipeline_from_args(args, device, dit_only=dit_only)  # applies --profile and the perf flags
    if args.quiet:
        pipe.set_progress_bar_config(disable=True)
    return pipe


def _call_kwargs(args) -> dict:
    return dict(size_bucket=args.size_bucket, size=args.size, infer_frames=args.infer_frames,
                num_clips=args.num_clip, num_inference_steps=args.sample_steps, shift=args.sample_shift,
                guidance_scale=args.sample_guide_scale, solver=args.sample_solver,
                sync_shift_frames=args.sync_shift_frames, image_fit=args.image_fit,
                start_from_ref=args.start_from_ref, first_clip_motion=args.first_clip_motion,
                cfg_batch=not args.no_cfg_batch, dub_strength=args.dub_strength, dub_ref=args.dub_ref, crf=args.crf,
                audio_bitrate=args.audio_bitrate, progress=not args.quiet)


def _random_seed() -> int:
    import numpy as np

    return int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> np.uint64(1))


def run_single(args) -> int:
    problem = _validate_inputs(args)
    if problem:
        return _error(problem)
    if not args.ckpt_dir:
        return _error("--ckpt_dir is required")
    from talkverse.convert.errors import CheckpointError

    seed = args.base_seed if args.base_seed >= 0 else _random_seed()
    stem = Path(args.image or args.dub_video).stem
    size_tag = args.size.replace("*", "x") if args.size else args.size_bucket
    out = Path(args.save_file) if args.save_file else \
        Path(args.output_dir) / f"{stem}_{size_tag}_{args.infer_frames}f_{seed}.mp4"
    state = None
    device = _device(args)
    if args.dit_fsdp:
        return _error("--dit_fsdp is not implemented yet; use --ulysses_size (activations) or --convert_model_dtype")
    if args.ulysses_size > 1 or args.cfg_parallel:
        from talkverse.parallel.state import build_state, check_sizes

        try:
            check_sizes(int(os.environ.get("WORLD_SIZE", "1")), args.ulysses_size, args.cfg_parallel)
        except ValueError as e:
            return _error(str(e))
        if args.cfg_parallel and args.sample_guide_scale <= 1:
            return _error("--cfg_parallel needs CFG (--sample_guide_scale > 1)")
        state = build_state(args.ulysses_size, args.cfg_parallel, device)
    host = state is None or state.is_host
    try:
        pipe = _load(args, device, dit_only=not host)
        if state is not None:
            from talkverse.parallel.state import check_sizes

            check_sizes(state.world, args.ulysses_size, args.cfg_parallel, pipe.transformer.config.num_attention_heads)
    except (CheckpointError, OSError, ValueError) as e:
        return _error(str(e))
    pipe.parallel = state
    if host:
        print(f"seed {seed}", flush=True)
    chunks = []
    grab = (lambda fr: chunks.append(fr.permute(1, 2, 3, 0).cpu().numpy())) if args.save_frames_npy and host else None
    result = pipe(args.image, args.audio, args.prompt, args.neg_prompt, output_path=out, seed=seed,
                  dub_video=args.dub_video, free_text_encoder=True, frame_callback=grab, **_call_kwargs(args))
    if chunks:
        import numpy as np

        np.save(args.save_frames_npy, np.concatenate(chunks))
    if not host:
        import torch.distributed as dist

        dist.destroy_process_group()
        return 0
    if state is not None:
        import torch.distributed as dist

        dist.destroy_process_group()
    plan = result.plan
    print(f"wrote {result.video_path} ({plan.output_frames} frames, {plan.output_frames / 25:.2f} s, "
          f"{result.size[1]}x{result.size[0]}, {plan.num_clips} clips, seed {seed})", flush=True)
    return 0


def run_batch_mode(args) -> int:
    import torch
    import torch.distributed as dist

    from talkverse.batch import (BatchFileError, gather_summaries, item_seed, load_batch_file,
                                 make_run_id, run_batch)

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and args.device != "cpu" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend)
    try:
        items = load_batch_file(args.batch_file)
    except (BatchFileError, OSError) as e:
        return _error(str(e))
    if not args.ckpt_dir:
        return _error("--ckpt_dir is required")
    if args.size:
        from talkverse.video.buckets import parse_size

        try:
            parse_size(args.size)
        except ValueError as e:
            return _error(str(e))
    run_id = make_run_id() if world > 1 else None
    base_seed = args.base_seed if args.base_seed >= 0 else 0
    log = logging.getLogger("talkverse.batch")
    pipe = _load(args, _device(args))
    kwargs = _call_kwargs(args)
    kwargs["progress"] = False

    def generate_one(item, output_path: Path) -> None:
        from talkverse.audio.io import load_audio
        from talkverse.video.image import load_image

        load_image(item.image)  # clear one-line errors before any model work
        load_audio(item.audio)
        kw = dict(kwargs)
        if item.num_clips is not None:
            kw["num_clips"] = item.num_clips
        # VideoWriter is atomic itself: a temp file renamed onto output_path only after a complete write.
        pipe(item.image, item.audio, item.prompt or args.prompt, item.negative_prompt or args.neg_prompt,
             output_path=output_path, seed=item_seed(item, base_seed), dub_video=item.video, **kw)

    summary = run_batch(items, args.output_dir, generate_one, rank=rank, world_size=world, run_id=run_id,
                        overwrite=args.overwrite, logger=log)
    total = gather_summaries(summary)
    if rank == 0:
        print(total.line(), flush=True)
    if dist.is_initialized():
        dist.destroy_process_group()
    return total.exit_code


def check_ckpt(args) -> int:
    if not args.ckpt_dir:
        return _error("--check_ckpt needs --ckpt_dir")
    from talkverse import TalkVerseTransformer3DModel
    from talkverse.convert.errors import CheckpointError

    try:
        model = TalkVerseTransformer3DModel.from_wan(args.ckpt_dir, args.lora_ckpt, config=args.model_config,
                                                     lora_alpha=args.lora_alpha)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    n = sum(p.numel() for p in model.parameters())
    print(f"loaded TalkVerseTransformer3DModel: {n:,} parameters")
    return 0


def apply_task(args, parser) -> None:
    """Fill the demo task's defaults into every option the user left at its s2v-5B default."""
    from talkverse.pipelines.demo import DEMO_TASK, apply_demo_task

    bare = not (args.ckpt_dir or args.image or args.audio or args.batch_file or args.dub_video)
    apply_demo_task(args, parser, bare=bare)
    if args.task != DEMO_TASK:
        return
    if args.save_file is None and args.output_dir == parser.get_default("output_dir"):
        args.save_file = str(Path(args.output_dir) / f"demo_{args.base_seed}.mp4")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    apply_task(args, parser)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("httpx", "urllib3", "diffusers", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.check_ckpt:
        return check_ckpt(args)
    if args.batch_file:
        return run_batch_mode(args)
    return run_single(args)


if __name__ == "__main__":
    sys.exit(main())
