"""talkverse-generate (generate.py): (portrait image, speech audio, prompt) -> lip-synced mp4 with the audio muxed.

Without --ckpt_dir it runs the shipped tiny demo model (CPU, no download), on the demo inputs or on --image/--audio.
Single video:
    talkverse-generate --ckpt_dir ckpts/Wan2.2-TI2V-5B --lora_ckpt ckpts/talkverse_s2v_5b.safetensors \\
        --wav2vec_dir ckpts/wav2vec2-large-xlsr-53-english --image face.png --audio speech.wav \\
        --prompt "A woman talks to the camera." --convert_model_dtype

Batch (JSON array or JSONL of {image, audio, prompt, name?, pose_video? (s2v-14B)}; the reference's
cond_image/cond_audio.person1 works):
    talkverse-generate --ckpt_dir ... --batch_file items.jsonl --output_dir outputs/
    torchrun --nproc_per_node=8 generate.py --ckpt_dir ... --batch_file items.jsonl --output_dir outputs/

Wan2.2-S2V-14B (Apache-2.0 weights; 16 fps, pose control; docs/s2v14b.md):
    talkverse-generate --task s2v-14B --size 1024*704 --ckpt_dir ckpts/Wan2.2-S2V-14B --image face.png \
        --audio speech.wav --pose_video pose.mp4 --prompt "A man sings." --offload_model True --convert_model_dtype

The flag names are the reference TalkVerse generate.py's (and, for --task s2v-14B, Wan2.2's generate.py's), so their
commands keep working; the reference's batch mode is only taken when --batch_file is given. --ckpt_dir takes the original Wan2.2-TI2V-5B directory, Wan2.2-TI2V-5B in the
Diffusers layout, or a folder saved by TalkVersePipeline.save_pretrained (--lora_ckpt is then merged on top).
Every input, flag and the output path are checked before a model loads; nothing is written on an error.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..pipelines.prompts import DEFAULT_PROMPT
from .args import add_device_arguments, add_model_arguments, add_performance_arguments, add_switches
from .checks import EXIT_STATUS_HELP, FAILED, INTERRUPTED, OK, USAGE, OneLineParser, UsageError

log = logging.getLogger("talkverse.generate")


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
    p = OneLineParser(prog="talkverse-generate", description=__doc__, epilog=EXIT_STATUS_HELP,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    m = p.add_argument_group("model")
    add_model_arguments(m, reference_compat=True,
                        task_help="s2v-5B: TalkVerse S2V-5B (needs --ckpt_dir); s2v-14B: Wan2.2-S2V-14B (config "
                                  "s2v_14b, 80 frames, 40 steps, shift 3, guide 4.5, 16 fps); s2v-tiny-demo: the "
                                  "shipped tiny demo model (CPU, no download). Default: s2v-14B for an S2V-14B "
                                  "--ckpt_dir, s2v-5B for another, else the demo")

    i = p.add_argument_group("inputs")
    i.add_argument("--image", help="reference portrait (any PIL-readable image; EXIF rotation applied)")
    i.add_argument("--audio", help="speech: any audio file or a video's audio track; the video covers all of it")
    i.add_argument("--prompt", default=DEFAULT_PROMPT, help="one prompt for the whole video")
    i.add_argument("--neg_prompt", "--negative_prompt", dest="neg_prompt", default=None,
                   help="negative prompt (default: the model config's Chinese negative prompt)")
    i.add_argument("--pose_video", help="s2v-14B: a DWPose skeleton video driving the pose (read at 16 fps from its "
                                        "start; black past its end); without it the pose input is zero")
    i.add_argument("--dub_video", help="dubbing: regenerate this video (resampled to the model's fps) talking --audio")
    for flag in ("--use_prompt_extend", "--enable_tts"):
        i.add_argument(flag, action="store_true", help="accepted for Wan2.2's CLI; not supported (an error if given)")
    for flag in ("--prompt_extend_method", "--prompt_extend_model", "--prompt_extend_target_lang",
                 "--tts_prompt_audio", "--tts_prompt_text", "--tts_text"):
        i.add_argument(flag, default=None, help="accepted for Wan2.2's CLI; unused")
    i.add_argument("--dub_strength", type=float, default=0.95, help="dubbing noise strength in (0, 1] (default 0.95)")
    i.add_argument("--dub_ref", default="first", choices=["first", "segment-random"],
                   help="dubbing reference frame: the first source frame, or a seeded random frame per clip")
    i.add_argument("--dub_region", default="full", choices=["full", "face", "mouth"],
                   help="dubbing: regenerate the whole frame (default), or only the face / the mouth region, pasted "
                        "back into the source at its own resolution (docs/inference.md 'Dubbing only the face')")
    i.add_argument("--dub_face_index", type=int, default=0,
                   help="with several faces: which one to dub, counted in --dub_face_order (default 0)")
    i.add_argument("--dub_face_order", default="left-to-right", choices=["left-to-right", "size"],
                   help="how --dub_face_index counts faces: left to right (default) or largest first")
    i.add_argument("--dub_track", help="the face track: a DWPose-layout npz (keypoints_info), an npz/npy of boxes "
                                       "[T, 4] or [T, K, 4], or a json box list; default: mediapipe's face detector")
    i.add_argument("--dub_feather", type=float, default=16.0,
                   help="paste-back feather width in source pixels, inside the dilated region (default 16)")

    s = p.add_argument_group("size and length")
    s.add_argument("--size_bucket", default="fasttalk-720",
                   help="fasttalk-720 | fasttalk-480: the table entry closest to the image's aspect ratio; or a fixed "
                        "WxH, width first (multiples of 32), for small models such as the demo model")
    s.add_argument("--size", help="explicit W*H from the tables, width first, e.g. 1280*704 (overrides --size_bucket)")
    s.add_argument("--image_fit", default="cover", choices=["cover", "pad-compat"],
                   help="cover-resize + centre crop (default), or the reference's letterboxing")
    s.add_argument("--infer_frames", type=int, default=120, help="frames per clip (multiple of 4, 4..160; s2v-14B: "
                                                                 "default 80, 4..120)")
    s.add_argument("--num_clip", type=_num_clip, default=None,
                   help="'auto' (default): enough clips for the whole audio; an integer caps the clip count")
    s.add_argument("--frame_num", type=int, default=None, help="accepted for the reference's CLI; unused by s2v")
    add_switches(s, [("--start_from_ref", "clip 0 continues from the reference image")])
    s.add_argument("--first_clip_motion", default=None, choices=["drop", "zeros", "reference"],
                   help="first clip: drop the motion tokens (the reference), pack 19 zero latents (as in training), or "
                        "encode the still portrait as the motion history; default: the model's setting (drop for "
                        "s2v-5B, reference for the demo model)")
    s.add_argument("--sync_shift_frames", type=_shift_frames, default=None,
                   help="silence (in 25 fps frames) prepended to the conditioning audio to cancel the video's lead; "
                        "auto (default) = 3 (0 with --start_from_ref); 0 = the reference")

    g = p.add_argument_group("sampling")
    g.add_argument("--sample_solver", default="unipc", choices=["unipc", "dpm++"], help="sampler (unipc = reference)")
    g.add_argument("--sample_steps", type=int, default=50, help="denoising steps per clip (s2v-14B: 40)")
    g.add_argument("--sample_shift", type=float, default=5.0, help="flow shift of the sigma schedule (s2v-14B: 3)")
    g.add_argument("--sample_guide_scale", type=float, default=6.5, help="CFG scale for text and audio together "
                                                                         "(<= 1 disables CFG; s2v-14B: 4.5)")
    g.add_argument("--cfg_truncation", type=float, default=1.0,
                   help="CFG truncation: the fraction of each clip's steps, from the first, that run the "
                        "unconditional pass (default 1 = every step; 0.5 halves the unconditional passes)")
    g.add_argument("--cache", default="none", choices=["none", "first_block", "mag", "taylorseer"],
                   help="training-free step caching (diffusers hooks; one state per CFG branch, reset every clip; "
                        "docs/performance.md): first_block skips the other blocks while block 0's residual changes "
                        "by less than --cache_threshold (default 0.1); mag skips steps by MagCache's magnitude ratios "
                        "(--cache_mag_ratios; threshold default 0.06); taylorseer extrapolates all but every "
                        "--cache_interval-th step (default 3) after 3 warm-up steps")
    g.add_argument("--cache_threshold", type=float, default=None, help="first_block / mag threshold (see --cache)")
    g.add_argument("--cache_interval", type=int, default=None, help="taylorseer: one full step every N (default 3)")
    g.add_argument("--cache_mag_ratios", default=None,
                   help="mag: comma-separated per-step magnitude ratios (MagCacheConfig(calibrate=True) prints them)")
    g.add_argument("--base_seed", type=int, default=-1, help="seed; clip r uses seed + r; -1 = random (printed and "
                                                             "written to the mp4 metadata)")

    d = p.add_argument_group("device and memory")
    add_device_arguments(d)
    d.add_argument("--ulysses_size", type=int, default=1,
                   help="Ulysses sequence parallelism: split every DiT forward over N ranks (torchrun "
                        "--nproc_per_node=N[x2]); N must divide the attention heads (24 for s2v-5B, 40 for s2v-14B)")
    add_switches(d, [
        ("--cfg_parallel", "run the conditional and unconditional CFG branches on two rank groups (2 x ulysses_size "
                           "ranks)"),
        ("--dit_fsdp", "shard the DiT weights with FSDP2 over the ranks of one video (each rank holds 1/N of them "
                       "and gathers one block at a time); with --ulysses_size and/or --cfg_parallel"),
        ("--t5_fsdp", "accepted for the reference's CLI; umT5 runs on rank 0 only"),
        ("--no_cfg_batch", "run the CFG branches one after the other (less memory)")])

    f = p.add_argument_group("performance (docs/performance.md)")
    add_performance_arguments(f)

    o = p.add_argument_group("output")
    o.add_argument("--save_file", help="output mp4 (default: <output_dir>/<image-stem>_<size>_<F>f_<seed>.mp4)")
    o.add_argument("--output_dir", default="outputs", help="folder for outputs (default: outputs)")
    o.add_argument("--save_frames_npy", help="also save the written frames as float32 [T, H, W, 3] in [-1, 1] "
                                             "(.npy; for comparing runs before the uint8/H.264 rounding)")
    o.add_argument("--crf", type=int, default=10, help="H.264 quality, 0-51 (lower = better; default 10)")
    o.add_argument("--audio_bitrate", default="192k", help="AAC bitrate (default 192k)")
    o.add_argument("--batch_file", default=None, help="JSON/JSONL list of items; runs batch mode (sharded across "
                                                      "torchrun ranks with a dynamic queue)")
    add_switches(o, [("--overwrite", "replace an existing output (single video) or regenerate items whose output "
                                     "exists (batch); without it nothing is ever overwritten")])
    o.add_argument("-q", "--quiet", action="store_true", help="no progress bars (the loading bars included)")
    o.add_argument("-v", "--verbose", action="store_true", help="per-clip stage timings and full tracebacks")
    return p


def _fps(args) -> int:
    from ..pipelines.family import FAMILIES

    return FAMILIES["s2v-14B" if args.task == "s2v-14B" else "s2v-5B"].fps


def _error(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return USAGE


def options_from_args(args):
    from ..runner import GenerationOptions

    return GenerationOptions(
        prompt=args.prompt, negative_prompt=args.neg_prompt, size_bucket=args.size_bucket, size=args.size,
        image_fit=args.image_fit, frames_per_clip=args.infer_frames, num_clips=args.num_clip,
        num_inference_steps=args.sample_steps, guidance_scale=args.sample_guide_scale, seed=args.base_seed,
        sync_shift_frames=args.sync_shift_frames, start_from_ref=args.start_from_ref,
        first_clip_motion=args.first_clip_motion, cfg_batch=not args.no_cfg_batch, cfg_truncation=args.cfg_truncation,
        dub_strength=args.dub_strength, dub_ref=args.dub_ref, dub_region=args.dub_region,
        dub_face_index=args.dub_face_index, dub_face_order=args.dub_face_order, dub_track=args.dub_track,
        dub_feather=args.dub_feather, crf=args.crf, audio_bitrate=args.audio_bitrate, progress=not args.quiet)


def checked_options(args, parser):
    """The generation options, every flag and the model folder checked (no heavy import)."""
    from .checks import check_device, check_flag_combinations, check_model_flags
    from .values import check_values

    check_values(args)
    check_flag_combinations(args, parser)
    check_device(args.device)
    if not args.ckpt_dir:
        raise UsageError(f"--ckpt_dir is required for --task {args.task} (without --task the tiny demo model runs)")
    if not Path(args.ckpt_dir).exists():
        raise UsageError(f"--ckpt_dir {args.ckpt_dir}: not found")
    check_model_flags(args, parser)
    try:
        return options_from_args(args).check()
    except ValueError as e:
        raise UsageError(str(e)) from None


def _load(args, dit_only: bool = False):
    """The pipeline, after every check passed; says which model when it is the demo's."""
    from ..parallel.distributed import default_device
    from .args import load_pipeline_from_args
    from .demo_task import DEMO_TASK

    if args.task == DEMO_TASK:
        from ..demo import demo_model_dir

        which = f"the tiny demo model ({args.ckpt_dir}); --ckpt_dir picks another" \
            if Path(args.ckpt_dir) == demo_model_dir() else \
            f"{args.ckpt_dir}, at the tiny demo model's settings (--task s2v-tiny-demo: 128x128, 24 frames, 20 steps)"
        print(f"model: {which}", file=sys.stderr, flush=True)
    return load_pipeline_from_args(args, default_device(args.device), dit_only=dit_only)


def _print_clip_seconds(clip: int, num_clips: int, sec: dict) -> None:
    print(f"clip {clip + 1}/{num_clips}: motion encode {sec['motion']:.2f} s, denoise {sec['denoise']:.2f} s, "
          f"decode {sec['decode']:.2f} s, write {sec['write']:.2f} s", file=sys.stderr, flush=True)


def run_single(args, parser) -> int:
    from ..facedub import load_face_track
    from ..media.audio import AudioError
    from ..media.image import ImageError
    from ..media.video import VideoError
    from ..parallel.distributed import launched_rank, launched_world_size
    from ..pipelines.face_track import FaceTrackError
    from ..runner import OutputError, check_output_path, default_output_path, face_dub, load_inputs

    options = checked_options(args, parser).resolved()
    if args.image is None and args.dub_video is None:
        raise UsageError("--image is required (or --dub_video)")
    if args.audio is None:
        raise UsageError("--audio is required")
    if args.pose_video is not None and args.task != "s2v-14B":
        raise UsageError(f"--pose_video only applies to --task s2v-14B (this is {args.task}, which has no pose input)")
    parallel = args.ulysses_size > 1 or args.cfg_parallel
    host = not parallel or launched_rank() == 0
    inputs = out = None
    if parallel:
        from ..parallel.distributed import check_sizes

        try:
            check_sizes(launched_world_size(), args.ulysses_size, args.cfg_parallel)
        except ValueError as e:
            raise UsageError(str(e)) from None
    if host:
        stem = Path(args.image or args.dub_video).stem
        target = Path(args.save_file) if args.save_file else default_output_path(args.output_dir, stem, options)
        try:
            out = check_output_path(target, args.overwrite)
            inputs = load_inputs(args.image, args.audio, args.dub_video, args.pose_video, fps=_fps(args))
            if face_dub(inputs, options):  # the face to dub is found (or not) before any model loads
                load_face_track(inputs, options)
        except (ImageError, AudioError, VideoError, OutputError, FaceTrackError) as e:
            raise UsageError(str(e)) from None
    try:
        return _generate(args, options, inputs, out, host)
    finally:
        if inputs is not None:
            inputs.close()


def _generate(args, options, inputs, out, host: bool) -> int:
    from ..convert.errors import CheckpointError
    from ..parallel.distributed import close_distributed
    from ..pipelines.timeline import audio_frames
    from ..runner import generate_to_file, input_warnings
    from .checks import check_cuda_with_torch

    if host:
        frames = audio_frames(len(inputs.audio.waveform()), fps=inputs.fps)
        for warning in input_warnings(inputs, options, frames):
            print(f"warning: {warning}", file=sys.stderr)
    check_cuda_with_torch(args.device)
    state = None
    if args.ulysses_size > 1 or args.cfg_parallel:
        from ..parallel.state import build_state

        state = build_state(args.ulysses_size, args.cfg_parallel, args.device, shard_weights=args.dit_fsdp)
    try:
        pipe = _load(args, dit_only=not host)
        if state is not None:
            from ..parallel.distributed import check_sizes

            check_sizes(state.world, args.ulysses_size, args.cfg_parallel, pipe.transformer.config.num_attention_heads)
            pipe.enable_parallel(state)
    except (CheckpointError, OSError, ValueError) as e:
        raise UsageError(str(e)) from None
    embeds = None
    if host:
        print(f"seed {options.seed}", flush=True)
        embeds = pipe.encode_prompt(options.prompt, options.negative_prompt)
        pipe.free_text_encoder()
    chunks = []
    grab = (lambda fr: chunks.append(fr.permute(1, 2, 3, 0).cpu().numpy())) if args.save_frames_npy and host else None
    result = generate_to_file(pipe, inputs, options, out, on_frames=grab, prompt_embeds=embeds,
                              on_clip=_print_clip_seconds if args.verbose else None)
    if chunks:
        import numpy as np

        np.save(args.save_frames_npy, np.concatenate(chunks))
    close_distributed()
    if result is not None:
        print(result.line(), flush=True)
    return OK


def run_batch_mode(args, parser) -> int:
    from dataclasses import replace

    from ..batch import BatchFileError, gather_summaries, item_seed, make_run_id, read_batch_file, run_batch
    from ..parallel.distributed import close_distributed, init_distributed, world
    from ..runner import generate_to_file, load_inputs

    base = checked_options(args, parser)
    try:
        items, invalid = read_batch_file(args.batch_file)
    except BatchFileError as e:
        raise UsageError(str(e)) from None
    init_distributed(args.device)
    rank, world_size = world()
    run_id = make_run_id() if world_size > 1 else None
    base_seed = args.base_seed if args.base_seed >= 0 else 0
    pipe = _load(args)

    def generate_one(item, output_path: Path) -> None:
        options = replace(base, seed=item_seed(item, base_seed), progress=False, prompt=item.prompt or base.prompt,
                          negative_prompt=item.negative_prompt or base.negative_prompt,
                          num_clips=base.num_clips if item.num_clips is None else item.num_clips)
        if item.pose_video is not None and not pipe.family.pose:
            raise ValueError(f"pose_video {item.pose_video}: the {pipe.family.name} model has no pose input")
        inputs = load_inputs(item.image, item.audio, item.video, item.pose_video, fps=pipe.family.fps)
        try:
            generate_to_file(pipe, inputs, options, output_path)  # atomic: a temp file renamed when complete
        finally:
            inputs.close()

    summary = run_batch(items, args.output_dir, generate_one, rank=rank, world_size=world_size, run_id=run_id,
                        overwrite=args.overwrite, logger=logging.getLogger("talkverse.batch"), invalid=invalid)
    total = gather_summaries(summary)
    if rank == 0:
        print(total.line(), flush=True)
    close_distributed()
    return FAILED if total.failed else OK


def check_ckpt(args) -> int:
    if not args.ckpt_dir:
        raise UsageError("--check_ckpt needs --ckpt_dir")
    from ..convert.errors import CheckpointError
    from ..loaders.transformer import load_transformer

    try:
        model = load_transformer(args.ckpt_dir, args.lora_ckpt, config=args.model_config, lora_alpha=args.lora_alpha)
    except CheckpointError as e:
        raise UsageError(str(e)) from None
    print(f"loaded TalkVerseTransformer3DModel: {sum(p.numel() for p in model.parameters()):,} parameters")
    return OK


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose or not args.quiet else logging.WARNING, format="%(message)s")
    for noisy in ("httpx", "urllib3", "diffusers", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        from .demo_task import apply_demo_task

        apply_demo_task(args, parser, bare=not args.ckpt_dir)
        if args.check_ckpt:
            return check_ckpt(args)
        return run_batch_mode(args, parser) if args.batch_file else run_single(args, parser)
    except UsageError as e:
        return _error(str(e))
    except FileNotFoundError as e:  # the demo model missing from this installation
        return _error(str(e))
    except KeyboardInterrupt:
        print("interrupted; nothing written", file=sys.stderr)
        return INTERRUPTED
    except Exception as e:  # noqa: BLE001 - one line; the traceback with -v
        if args.verbose:
            raise
        msg = " ".join(str(e).split())
        print(f"error: generation failed: {type(e).__name__}: {msg} (-v shows the traceback)", file=sys.stderr)
        return FAILED


if __name__ == "__main__":
    sys.exit(main())
