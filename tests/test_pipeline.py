"""TalkVersePipeline: clip bookkeeping and A/V sync, parity of the clip loop, save/load, real mp4 end to end."""

from __future__ import annotations

import subprocess
import sys

import av
import numpy as np
import pytest
import soundfile as sf
import torch

from helpers import REPO
from talkverse.media.audio import load_audio
from talkverse.media.image import load_image
from talkverse.models.geometry import ClipGeometry
from talkverse.pipelines.timeline import (
    audio_frames,
    auto_num_clips,
    clip_output_range,
    conditioning_column,
    frames_produced,
    plan_clips,
    video_lead_frames,
)

G = ClipGeometry  # G(F): the 5B's clip geometry with F frames per clip


# ------------------------------------------------------------------------------------------------ bookkeeping
@pytest.mark.parametrize("frames", [4, 8, 120])
@pytest.mark.parametrize("start_from_ref", [False, True])
def test_sync_bookkeeping_every_output_frame(frames, start_from_ref):
    """inference.md §9 (a): after the sync shift, output frame p shows content conditioned on audio frame p.

    ``conditioning_column`` is derived from the decode structure (clip 0 latent 0 -> 1 frame, latent i -> frames
    4i-3..4i; a continuation keeps whole 4-frame groups), independently of the shift rule it is checked against."""
    shift = video_lead_frames(G(frames), start_from_ref)
    assert shift == (0 if start_from_ref else 3)
    n = frames_produced(5, G(frames), start_from_ref)
    cols = [conditioning_column(p, G(frames), start_from_ref) - shift for p in range(n)]
    assert cols == list(range(n))
    # without the shift (the reference) the video leads by 3 frames everywhere
    if not start_from_ref:
        assert all(conditioning_column(p, G(frames)) - p == 3 for p in range(n))


def test_clip_ranges_tile_the_output():
    for f in (8, 120):
        ranges = [clip_output_range(r, G(f)) for r in range(6)]
        assert ranges[0] == (0, f - 3)
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
        assert ranges[-1][1] == frames_produced(6, G(f))


def test_plan_covers_the_audio_and_ends_with_it():
    sr = 16000
    for seconds in (0.1, 1.0, 4.68, 4.8, 4.92, 60.0):
        n = int(round(seconds * sr))
        plan = plan_clips(n, G(120))
        a0 = audio_frames(n)
        assert plan.produced_frames >= a0 and plan.output_frames == a0
        assert plan.num_clips == auto_num_clips(a0, G(120))
        assert frames_produced(plan.num_clips - 1, G(120)) < a0  # no clip driven only by padded silence
        # conditioning waveform: shift + audio + padding = exactly R*F feature columns
        assert plan.conditioning_samples == max(plan.num_clips * 120 * 640, 3 * 640 + n)
    assert plan_clips(60 * sr, G(120)).num_clips == 13  # A0 = 1500 -> ceil(1503 / 120)
    capped = plan_clips(60 * sr, G(120), num_clips=2)
    assert capped.num_clips == 2 and capped.output_frames == 237 and capped.capped
    with pytest.raises(ValueError, match="multiple of 4"):
        plan_clips(sr, G(118))


# ----------------------------------------------------------------------------------------------------- parity
def test_pipeline_parity(parity_dir):
    from talkverse.parity import get_suite

    results = list(get_suite("pipeline")(parity_dir))
    assert [r.name for r in results] == ["pipeline/stages", "pipeline/decode_motion", "pipeline/e2e"]
    for r in results:
        assert r.passed, (r.line(), r.error, [d for d in r.details if d[1] > d[2]])
    e2e = results[-1]
    names = {d[0] for d in e2e.details}
    assert {"out.video", "out.num_frames", "clip2.latents", "clip1.motion_latents"} <= names


# ------------------------------------------------------------------------------------------ tiny pipeline runs
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from talkverse.testing.tiny import tiny_pipeline

    pipe = tiny_pipeline()
    pipe.set_progress_bar_config(disable=True)
    folder = tmp_path_factory.mktemp("tinypipe")
    pipe.save_pretrained(str(folder))
    return pipe, folder


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """A real photo (skimage astronaut) and an espeak-ng sentence."""
    from PIL import Image
    from skimage.data import astronaut

    d = tmp_path_factory.mktemp("media")
    Image.fromarray(astronaut()).save(d / "astronaut.png")
    subprocess.run(["espeak-ng", "-w", str(d / "speech.wav"), "Hello there, this is a test."], check=True)
    return d


def _short_wav(path, seconds=0.12, sr=22050):
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr)
    return path


def _run(pipe, image, wav, seed, size=(64, 64), frames=8, steps=2, **kw):
    """The pipeline on decoded files (a portrait path or None, a wav path), as uint8 [T, H, W, 3]."""
    out = pipe(load_image(image) if image is not None else None, load_audio(wav), height=size[0], width=size[1],
               frames_per_clip=frames, num_inference_steps=steps, generator=torch.Generator().manual_seed(seed),
               progress=False, **kw).frames
    return (out[0] * 255).round().astype(np.uint8)


def test_save_pretrained_roundtrip_identical_frames(tiny, media, tmp_path):
    from talkverse.pipelines.pipeline_talkverse import TalkVersePipeline

    pipe, folder = tiny
    wav = _short_wav(tmp_path / "a.wav")
    a = _run(pipe, media / "astronaut.png", wav, 5)
    reloaded = TalkVersePipeline.from_pretrained(str(folder))
    reloaded.set_progress_bar_config(disable=True)
    b = _run(reloaded, media / "astronaut.png", wav, 5)
    assert a.shape == (audio_frames(int(0.12 * 16000)), 64, 64, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    c = _run(pipe, media / "astronaut.png", wav, 6)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 0.5  # the seed matters


def test_first_clip_motion_default_is_saved_with_the_pipeline(tiny, media, tmp_path):
    """``first_clip_motion`` registered at construction goes to model_index.json and is the __call__ default.
    (128x128: the frame packer's 16x bucket needs a latent of at least 8x8.)"""
    from talkverse.pipelines.pipeline_talkverse import TalkVersePipeline

    pipe, _ = tiny
    wav = _short_wav(tmp_path / "a.wav")
    img = media / "astronaut.png"
    assert pipe.config.first_clip_motion == "drop"  # the reference's behaviour stays the default
    drop = _run(pipe, img, wav, 2, size=(128, 128))
    zeros = _run(pipe, img, wav, 2, size=(128, 128), first_clip_motion="zeros")
    assert np.abs(drop.astype(int) - zeros.astype(int)).mean() > 0.5  # the setting matters
    c = pipe.components
    TalkVersePipeline(**c, first_clip_motion="zeros").save_pretrained(str(tmp_path / "z"))
    reloaded = TalkVersePipeline.from_pretrained(str(tmp_path / "z"))
    reloaded.set_progress_bar_config(disable=True)
    assert reloaded.config.first_clip_motion == "zeros"
    np.testing.assert_array_equal(_run(reloaded, img, wav, 2, size=(128, 128)), zeros)
    with pytest.raises(ValueError, match="first_clip_motion"):
        TalkVersePipeline(**c, first_clip_motion="none")
    with pytest.raises(ValueError, match="64x64 is too small for motion tokens"):
        _run(pipe, img, wav, 2, size=(64, 64), first_clip_motion="zeros")


def test_first_clip_motion_reference_encodes_the_still_portrait(tiny, media, tmp_path):
    """"reference": the first clip's 19 motion latents are the VAE encoding of 73 copies of the fitted portrait (the
    pixels the reference latent is made from), not zeros; the output differs from "zeros"."""
    pipe, _ = tiny
    wav = _short_wav(tmp_path / "a.wav")
    img = load_image(media / "astronaut.png")
    seen = {}

    def grab(p, step, t, kw):
        seen.setdefault(p.current_clip, kw["motion_latents"].clone())
        return {}

    ref = _run(pipe, media / "astronaut.png", wav, 2, size=(128, 128), first_clip_motion="reference",
               callback_on_step_end=grab, callback_on_step_end_tensor_inputs=["motion_latents"])
    zeros = _run(pipe, media / "astronaut.png", wav, 2, size=(128, 128), first_clip_motion="zeros")
    embeds = torch.zeros(1, pipe.transformer.config.text_dim)
    _, ref_px = pipe.prepare_conditioning(img, load_audio(wav), None, None, 128, 128, "fasttalk-720", "cover", 8, None,
                                          None, False, embeds, embeds, None)
    expected = pipe.encode_video(ref_px[:, :, :1].expand(-1, -1, 73, -1, -1))
    torch.testing.assert_close(seen[0], expected.to(seen[0]), rtol=0, atol=1e-5)
    assert seen[0].abs().mean() > 0.1
    assert np.abs(ref.astype(int) - zeros.astype(int)).mean() > 0.5


def test_cfg_batch_equals_sequential(tiny, media, tmp_path):
    pipe, _ = tiny
    wav = _short_wav(tmp_path / "a.wav")
    a = _run(pipe, media / "astronaut.png", wav, 1, cfg_batch=True)
    b = _run(pipe, media / "astronaut.png", wav, 1, cfg_batch=False)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


@pytest.mark.slow
def test_generate_cli_end_to_end_mp4(tiny, media, tmp_path):
    """generate.py on a real photo + espeak-ng speech: H.264 25 fps + audio, duration = audio's within 1 frame,
    frame size = the bucket (astronaut is square -> 640x640 in fasttalk-480)."""
    _, folder = tiny
    out = tmp_path / "out" / "talk.mp4"
    proc = subprocess.run([sys.executable, str(REPO / "generate.py"), "--ckpt_dir", str(folder), "--image",
                           str(media / "astronaut.png"), "--audio", str(media / "speech.wav"), "--size_bucket",
                           "fasttalk-480", "--infer_frames", "64", "--sample_steps", "2", "--base_seed", "7",
                           "--save_file", str(out), "-q"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"wrote {out}" in proc.stdout and "seed 7" in proc.stdout
    audio_s = sf.info(media / "speech.wav").duration
    with av.open(str(out)) as c:
        v, a = c.streams.video, c.streams.audio
        assert len(v) == 1 and len(a) == 1
        assert v[0].codec_context.name == "h264" and v[0].average_rate == 25
        assert (v[0].codec_context.height, v[0].codec_context.width) == (640, 640)
        n = sum(1 for _ in c.decode(video=0))
    assert abs(n / 25.0 - audio_s) <= 1 / 25.0, (n, audio_s)
    assert not list(out.parent.glob(".*partial*"))  # the temp file was renamed away


# ----------------------------------------------------------------------------------------------- CLI behaviour
def _gen(*args, timeout=120):
    return subprocess.run([sys.executable, str(REPO / "generate.py"), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_generate_help_documents_every_flag():
    from talkverse.cli.generate import build_parser

    parser = build_parser()
    flags = [a for a in parser._actions if a.option_strings and a.dest != "help"]
    assert all(a.help and len(a.help) > 10 for a in flags), [a.dest for a in flags if not a.help]
    out = _gen("--help").stdout
    reference = ["--task", "--ckpt_dir", "--lora_ckpt", "--image", "--audio", "--prompt", "--size", "--infer_frames",
                 "--num_clip", "--sample_steps", "--sample_shift", "--sample_guide_scale", "--base_seed",
                 "--offload_model", "--t5_cpu", "--convert_model_dtype", "--batch_file", "--output_dir", "--save_file"]
    for flag in reference:
        assert flag in out, flag


def _video_without_audio(path):
    from talkverse.media.writer import VideoWriter

    with VideoWriter(path) as w:
        w.write(np.zeros((3, 64, 64, 3), np.uint8))
    return path


def test_generate_bad_inputs_one_clear_line(tiny, media, tmp_path):
    _, folder = tiny
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    silent_video = _video_without_audio(tmp_path / "noaudio.mp4")
    img, wav = media / "astronaut.png", media / "speech.wav"
    cases = [
        (["--image", tmp_path / "missing.png", "--audio", wav], ["missing.png", "not found"]),
        (["--image", text, "--audio", wav], ["notes.txt", "image"]),
        (["--image", img, "--audio", silent_video], ["noaudio.mp4", "audio"]),
        (["--image", img, "--audio", wav, "--size", "1000*1000"], ["1000*1000", "not in"]),
    ]
    for args, needles in cases:
        proc = _gen("--ckpt_dir", folder, *args)
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        assert proc.returncode == 2, proc.stderr
        assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
        assert "Traceback" not in proc.stderr
        for needle in needles:
            assert needle in lines[0], (needle, lines[0])


@pytest.mark.slow
def test_batch_two_workers_failure_and_resume(tiny, media, tmp_path):
    """4 items on 2 torchrun workers, one with a missing audio file and one without an "audio" key at all: 2 mp4s,
    2 logged failures, exit != 0 (the bad items fail alone); a rerun skips the 2 done items."""
    import json

    _, folder = tiny
    wav = _short_wav(tmp_path / "a.wav", seconds=0.2)  # 5 frames: above the 4-frame minimum
    items = [{"image": str(media / "astronaut.png"), "audio": str(wav), "prompt": "a man talking", "name": "one"},
             {"cond_image": str(media / "astronaut.png"), "cond_audio": {"person1": str(wav)}, "prompt": "a woman"},
             {"image": str(media / "astronaut.png"), "audio": str(tmp_path / "nope.wav"), "name": "broken"},
             {"image": str(media / "astronaut.png"), "prompt": "no speech given", "name": "no_audio"}]
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps(items))
    out = tmp_path / "outs"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(REPO / "generate.py"),
           "--ckpt_dir", str(folder), "--batch_file", str(batch), "--output_dir", str(out), "--size", "640*640",
           "--infer_frames", "8", "--sample_steps", "2", "--device", "cpu", "-q"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert first.returncode != 0
    mp4s = sorted(p.name for p in out.glob("*.mp4"))
    assert mp4s == ["00001_astronaut.mp4", "one.mp4"], (mp4s, first.stdout[-2000:], first.stderr[-8000:])
    logs = first.stdout + first.stderr
    assert "2 done, 0 skipped, 2 failed" in logs, logs[-3000:]
    assert "broken" in logs and "nope.wav" in logs and "item 3" in logs and "'audio'" in logs
    for p in out.glob("*.mp4"):
        with av.open(str(p)) as c:
            assert len(c.streams.video) == 1 and len(c.streams.audio) == 1
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode != 0
    assert "0 done, 2 skipped, 2 failed" in again.stdout + again.stderr, (again.stdout + again.stderr)[-3000:]


# --------------------------------------------------------------------------------------- original-layout loading
def test_load_pipeline_original_layout(tiny, media, tmp_path):
    """--ckpt_dir in the original Wan2.2-TI2V-5B layout (sharded DiT, Wan2.2_VAE.pth, umT5 .pth, google/umt5-xxl/,
    wav2vec2 folder inside) + the TalkVerse file: every component loads with identical weights and generates."""
    from ckpt_builders import write_original_base, write_talkverse
    from talkverse.convert.errors import CheckpointError
    from talkverse.convert.t5_keys import TIED_KEY, transformers_to_original
    from talkverse.convert.vae_keys import diffusers_to_original
    from talkverse.pipelines.loading import load_pipeline
    from talkverse.testing.tiny import TINY_VAE, tiny_tokenizer

    pipe, _ = tiny
    root = write_original_base(pipe.transformer, tmp_path / "Wan2.2-TI2V-5B", shards=2)
    tv = write_talkverse(pipe.transformer, tmp_path / "talkverse.safetensors")
    nrb = TINY_VAE["num_res_blocks"]
    torch.save({diffusers_to_original(k, nrb): v for k, v in pipe.vae.state_dict().items()}, root / "Wan2.2_VAE.pth")
    torch.save({transformers_to_original(k): v.to(torch.bfloat16) for k, v in pipe.text_encoder.state_dict().items()
                if k != TIED_KEY}, root / "models_t5_umt5-xxl-enc-bf16.pth")
    tiny_tokenizer(root / "google" / "umt5-xxl")
    w2v = root / "wav2vec2-large-xlsr-53-english"
    pipe.audio_encoder.save_pretrained(w2v)
    pipe.feature_extractor.save_pretrained(w2v)
    vae_cfg = {**pipe.vae.config}
    t5_cfg = pipe.text_encoder.config.to_dict()
    loaded = load_pipeline(root, tv, config="s2v_tiny", vae_config=vae_cfg, t5_config=t5_cfg)
    for name in ("transformer", "vae", "audio_encoder"):
        a, b = getattr(pipe, name).state_dict(), getattr(loaded, name).state_dict()
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    ta, tb = pipe.text_encoder.state_dict(), loaded.text_encoder.state_dict()
    assert all(torch.equal(ta[k].to(torch.bfloat16), tb[k]) for k in tb)
    loaded.set_progress_bar_config(disable=True)
    frames = _run(loaded, media / "astronaut.png", _short_wav(tmp_path / "a.wav"), 0, steps=1)
    assert frames.shape[1:] == (64, 64, 3)
    # an incomplete directory names what is missing
    (root / "Wan2.2_VAE.pth").unlink()
    with pytest.raises(CheckpointError, match="Wan2.2_VAE.pth"):
        load_pipeline(root, tv, config="s2v_tiny", vae_config=vae_cfg, t5_config=t5_cfg)


# ----------------------------------------------------------------------------------------------------- dubbing
def test_dubbing_resamples_source_and_follows_new_audio(tiny, tmp_path):
    """A 30 fps source video + new audio: the output covers the new audio (not the source's length), at 25 fps,
    reproducibly from the seed, for both reference-frame modes."""
    from talkverse.media.video import iter_frames
    from talkverse.media.writer import VideoWriter

    pipe, _ = tiny
    src = tmp_path / "src.mp4"
    with VideoWriter(src, fps=30) as w:  # a fade from black to white
        w.write(torch.linspace(-1, 1, 20).view(1, 20, 1, 1).expand(3, 20, 96, 96))
    wav = _short_wav(tmp_path / "new.wav", seconds=0.5)

    def dub(source, **kw):
        return _run(pipe, None, wav, 2, size=(128, 128), steps=4, dub_video=iter_frames(source, 25),
                    dub_strength=0.8, **kw)

    a = dub(src)
    assert a.shape[0] == audio_frames(8000)  # 13 frames of new audio; the source has 20 frames at 30 fps
    np.testing.assert_array_equal(a, dub(src))
    c = dub(src, dub_ref="segment-random")
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 0.05  # another reference frame (a small effect here)
    # the source content matters: a different source changes the result
    src2 = tmp_path / "src2.mp4"
    with VideoWriter(src2, fps=30) as w:
        w.write(torch.linspace(1, -1, 20).view(1, 20, 1, 1).expand(3, 20, 96, 96))
    assert np.abs(a.astype(int) - dub(src2).astype(int)).mean() > 0.5


def test_sync_shift_moves_the_conditioning_audio_by_three_frames(tiny):
    """Constructed case for inference.md §9: a speech burst at video frames 40-44 of otherwise silent audio. In the
    pipeline's conditioning features (the wav2vec2 conv/positional state, which is local), the burst peaks 3 columns
    later with the default shift than with shift 0 (the reference), so output frame p (conditioned on column p + 3,
    see test_sync_bookkeeping_every_output_frame) sees the original audio of frame p."""
    pipe, _ = tiny
    sr, n = 16000, 16000 * 4
    t = np.arange(n) / sr
    wave = np.zeros(n, np.float32)
    burst = slice(40 * 640, 45 * 640)
    wave[burst] = (0.5 * np.sin(2 * np.pi * 300 * t[burst]) * np.hanning(5 * 640)).astype(np.float32)

    def peak(shift: int) -> int:
        plan = pipe.plan_video(n, frames_per_clip=8, sync_shift_frames=shift)
        feats = pipe.encode_audio(wave, plan)[0, 0]  # state 0: [C, R F]
        silent = pipe.encode_audio(np.zeros_like(wave), plan)[0, 0]
        return int((feats - silent).norm(dim=0).argmax())

    p0, p3 = peak(0), peak(3)
    assert abs(p0 - 42) <= 1, p0
    assert p3 - p0 == 3
