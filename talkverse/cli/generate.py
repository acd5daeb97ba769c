"""talkverse-generate (generate.py): (portrait image, speech audio, prompt) -> lip-synced mp4 with the audio muxed.

Without arguments it runs the shipped tiny demo model (CPU, no download). Single video:
    talkverse-generate --ckpt_dir ckpts/Wan2.2-TI2V-5B --lora_ckpt ckpts/talkverse_s2v_5b.safetensors \\
        --wav2vec_dir ckpts/wav2vec2-large-xlsr-53-english --image face.png --audio speech.wav \\
        --prompt "A woman talks to the camera." --convert_model_dtype

Batch (JSON array or JSONL of {image, audio, prompt, name?}; the reference's cond_image/cond_audio.person1 works):
    talkverse-generate --ckpt_dir ... --batch_file items.jsonl --output_dir outputs/
    torchrun --nproc_per_node=8 generate.py --ckpt_dir ... --batch_file items.jsonl --output_dir outputs/

The flag names are the reference TalkVerse generate.py's, so its commands keep working; the reference's batch mode is
only taken when --batch_file is given. --ckpt_dir takes the original Wan2.2-TI2V-5B directory, Wan2.2-TI2V-5B in the
Diffusers layout, or a folder saved by TalkVersePipeline.save_pretrained (no --lora_ckpt then).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..pipelines.prompts import DEFAULT_PROMPT
from .args import add_device_arguments, add_model_arguments, add_performance_arguments


def _num_clip(v: str):
    if v == "auto":
        return None
    n = int(v)
    if n <= 0:
        raise argparse.ArgumentTypeError("--num_clip must be 'auto' or a positive integer")
    return n


def _shift_frames(v: str):
    return None if v == "auto" else int(v)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="talkverse-generate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    m = p.add_argument_group("model")
    add_model_arguments(m, reference_compat=True,
                        task_help="s2v-5B: TalkVerse S2V-5B (needs --ckpt_dir); s2v-tiny-demo: the shipped tiny demo "
                                  "model (CPU, no download). Default: s2v-5B, or the demo when run without "
                                  "--ckpt_dir/--image/--audio/--batch_file")

    i = p.add_argument_group("inputs")
    i.add_argument("--image", help="reference portrait (any PIL-readable image; EXIF rotation applied)")
    i.add_argument("--audio", help="speech: any audio file or a video's audio track; the video covers all of it")
    i.add_argument("--prompt", default=DEFAULT_PROMPT, help="one prompt for the whole video")
    i.add_argument("--neg_prompt", "--negative_prompt", dest="neg_prompt", default=None,
                   help="negative prompt (default: the s2v-5B config's Chinese negative prompt)")
    i.add_argument("--dub_video", help="dubbing: regenerate this video (resampled to 25 fps) talking --audio")
    i.add_argument("--dub_strength", type=float, default=0.95, help="dubbing noise strength in (0, 1] (default 0.95)")
    i.add_argument("--dub_ref", default="first", choices=["first", "segment-random"],
                   help="dubbing reference frame: the first source frame, or a seeded random frame per clip")

    s = p.add_argument_group("size and length")
    s.add_argument("--size_bucket", default="fasttalk-720",
                   help="fasttalk-720 | fasttalk-480: the table entry closest to the image's aspect ratio; or a fixed "
                        "WxH, width first (multiples of 32), for small models such as the demo model")
    s.add_argument("--size", help="explicit W*H from the tables, width first, e.g. 1280*704 (overrides --size_bucket)")
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
    s.add_argument("--sync_shift_frames", type=_shift_frames, default=None,
                   help="silence (in 25 fps frames) prepended to the conditioning audio to cancel the video's lead; "
                        "auto (default) = 3 (0 with --start_from_ref); 0 = the reference")

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


def options_from_args(args):
    from ..runner import GenerationOptions

    return GenerationOptions(
        prompt=args.prompt, negative_prompt=args.neg_prompt, size_bucket=args.size_bucket, size=args.size,
        image_fit=args.image_fit, frames_per_clip=args.infer_frames, num_clips=args.num_clip,
        num_inference_steps=args.sample_steps, guidance_scale=args.sample_guide_scale, seed=args.base_seed,
        sync_shift_frames=args.sync_shift_frames, start_from_ref=args.start_from_ref,
        first_clip_motion=args.first_clip_motion, cfg_batch=not args.no_cfg_batch, dub_strength=args.dub_strength,
        dub_ref=args.dub_ref, crf=args.crf, audio_bitrate=args.audio_bitrate, progress=not args.quiet)


def _check_frames(args) -> str | None:
    from ..pipelines.timeline import ClipGeometry

    try:
        ClipGeometry(args.infer_frames).check("--infer_frames")
    except ValueError as e:
        return str(e)
    return None


def run_single(args) -> int:
    from ..convert.errors import CheckpointError
    from ..media.audio import AudioError
    from ..media.image import ImageError
    from ..media.video import VideoError
    from ..runner import default_output_path, generate_to_file, load_inputs

    problem = _check_frames(args)
    if problem:
        return _error(problem)
    try:
        options = options_from_args(args).check().resolved()
    except ValueError as e:
        return _error(str(e))
    if args.image is None and args.dub_video is None:
        return _error("--image is required (or --dub_video)")
    if args.audio is None:
        return _error("--audio is required")
    if not args.ckpt_dir:
        return _error("--ckpt_dir is required")
    if args.dit_fsdp:
        return _error("--dit_fsdp is not implemented yet; use --ulysses_size (activations) or --convert_model_dtype")
    state = None
    if args.ulysses_size > 1 or args.cfg_parallel:
        from ..parallel.distributed import launched_world_size
        from ..parallel.state import build_state, check_sizes

        try:
            check_sizes(launched_world_size(), args.ulysses_size, args.cfg_parallel)
        except ValueError as e:
            return _error(str(e))
        if args.cfg_parallel and args.sample_guide_scale <= 1:
            return _error("--cfg_parallel needs CFG (--sample_guide_scale > 1)")
        state = build_state(args.ulysses_size, args.cfg_parallel, args.device)
    host = state is None or state.is_host
    inputs = None
    if host:
        try:
            inputs = load_inputs(args.image, args.audio, args.dub_video)
        except (ImageError, AudioError, VideoError) as e:
            return _error(str(e))
    from ..parallel.distributed import close_distributed, default_device
    from .args import load_pipeline_from_args

    try:
        pipe = load_pipeline_from_args(args, default_device(args.device), dit_only=not host)
        if state is not None:
            from ..parallel.state import check_sizes

            check_sizes(state.world, args.ulysses_size, args.cfg_parallel, pipe.transformer.config.num_attention_heads)
            pipe.enable_parallel(state)
    except (CheckpointError, OSError, ValueError) as e:
        return _error(str(e))
    out = None
    embeds = None
    if host:
        stem = Path(args.image or args.dub_video).stem
        out = Path(args.save_file) if args.save_file else default_output_path(args.output_dir, stem, options)
        print(f"seed {options.seed}", flush=True)
        embeds = pipe.encode_prompt(options.prompt, options.negative_prompt)
        pipe.free_text_encoder()
    chunks = []
    grab = (lambda fr: chunks.append(fr.permute(1, 2, 3, 0).cpu().numpy())) if args.save_frames_npy and host else None
    try:
        result = generate_to_file(pipe, inputs, options, out, on_frames=grab, prompt_embeds=embeds)
    finally:
        if inputs is not None:
            inputs.close()
    if chunks:
        import numpy as np

        np.save(args.save_frames_npy, np.concatenate(chunks))
    close_distributed()
    if result is not None:
        print(result.line(), flush=True)
    return 0


def run_batch_mode(args) -> int:
    from ..batch import BatchFileError, gather_summaries, item_seed, load_batch_file, make_run_id, run_batch
    from ..parallel.distributed import close_distributed, init_distributed, world
    from ..runner import generate_to_file, load_inputs
    from .args import load_pipeline_from_args

    device = init_distributed(args.device)
    rank, world_size = world()
    try:
        items = load_batch_file(args.batch_file)
    except (BatchFileError, OSError) as e:
        return _error(str(e))
    if not args.ckpt_dir:
        return _error("--ckpt_dir is required")
    try:
        base = options_from_args(args).check()
    except ValueError as e:
        return _error(str(e))
    run_id = make_run_id() if world_size > 1 else None
    base_seed = args.base_seed if args.base_seed >= 0 else 0
    pipe = load_pipeline_from_args(args, device)
    from dataclasses import replace

    def generate_one(item, output_path: Path) -> None:
        options = replace(base, seed=item_seed(item, base_seed), progress=False, prompt=item.prompt or base.prompt,
                          negative_prompt=item.negative_prompt or base.negative_prompt,
                          num_clips=base.num_clips if item.num_clips is None else item.num_clips)
        inputs = load_inputs(item.image, item.audio, item.video)  # one-line errors before any model work
        try:
            generate_to_file(pipe, inputs, options, output_path)  # atomic: a temp file renamed when complete
        finally:
            inputs.close()

    summary = run_batch(items, args.output_dir, generate_one, rank=rank, world_size=world_size, run_id=run_id,
                        overwrite=args.overwrite, logger=logging.getLogger("talkverse.batch"))
    total = gather_summaries(summary)
    if rank == 0:
        print(total.line(), flush=True)
    close_distributed()
    return total.exit_code


def check_ckpt(args) -> int:
    if not args.ckpt_dir:
        return _error("--check_ckpt needs --ckpt_dir")
    from ..convert.errors import CheckpointError
    from ..loaders.transformer import load_transformer

    try:
        model = load_transformer(args.ckpt_dir, args.lora_ckpt, config=args.model_config, lora_alpha=args.lora_alpha)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    n = sum(p.numel() for p in model.parameters())
    print(f"loaded TalkVerseTransformer3DModel: {n:,} parameters")
    return 0


def apply_task(args, parser) -> None:
    """Fill the demo task's defaults into every option the user left at its s2v-5B default."""
    from .demo_task import DEMO_TASK, apply_demo_task

    bare = not (args.ckpt_dir or args.image or args.audio or args.batch_file or args.dub_video)
    apply_demo_task(args, parser, bare=bare)
    if args.task == DEMO_TASK and args.save_file is None and args.output_dir == parser.get_default("output_dir"):
        args.save_file = str(Path(args.output_dir) / f"demo_{args.base_seed}.mp4")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        apply_task(args, parser)
    except FileNotFoundError as e:
        return _error(str(e))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("httpx", "urllib3", "diffusers", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.check_ckpt:
        return check_ckpt(args)
    if args.batch_file:
        return run_batch_mode(args)
    return run_single(args)
