"""generate.py --task s2v-14B on a saved tiny S2V-14B pipeline: an H.264 mp4 at 16 fps with the speech, with and without
--pose_video; the task is recognised from the folder; 2-rank gloo sequence parallelism writes the 1-rank frames."""

from __future__ import annotations

import subprocess
import sys

import av
import numpy as np
import pytest
import soundfile as sf
import torch

from helpers import REPO


@pytest.fixture(scope="module")
def saved14(tmp_path_factory):
    from PIL import Image

    from talkverse.media.writer import VideoWriter
    from talkverse.testing.tiny import tiny_pipeline

    root = tmp_path_factory.mktemp("s2v14b")
    tiny_pipeline(0, model="s2v-14B").save_pretrained(str(root / "pipe"))
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (80, 64, 3), dtype=np.uint8)).save(root / "face.png")
    t = np.arange(16000) / 16000
    sf.write(root / "a.wav", (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32),
             16000)
    with VideoWriter(root / "pose.mp4", fps=25, crf=0) as w:  # a bright bar sweeping over black: a "skeleton"
        frames = -torch.ones(3, 30, 64, 64)
        for k in range(30):
            frames[:, k, :, 2 * k:2 * k + 6] = 1.0
        w.write(frames)
    return root


def _generate(root, out, nproc: int = 1, *extra):
    cmd = [sys.executable, str(REPO / "generate.py")] if nproc == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
         str(REPO / "generate.py")]
    cmd += ["--ckpt_dir", str(root / "pipe"), "--image", str(root / "face.png"), "--audio", str(root / "a.wav"),
            "--size_bucket", "64x64", "--infer_frames", "8", "--sample_steps", "2", "--base_seed", "5", "--device",
            "cpu", "-q", "--save_file", str(out), "--save_frames_npy", str(out.with_suffix(".npy")), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def _probe(path):
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio
        n = sum(1 for _ in c.decode(video=0))
        return v.codec_context.name, v.average_rate, len(a), n


@pytest.mark.slow
def test_generate_s2v14b_with_and_without_pose(saved14):
    """1 s of speech at 16 fps = 16 frames: 3 clips of 8 ((8-3) + 8 + 8 = 21 produced, trimmed to 16)."""
    plain = _generate(saved14, saved14 / "plain.mp4", 1, "--task", "s2v-14B")
    assert plain.returncode == 0, plain.stderr[-3000:]
    posed = _generate(saved14, saved14 / "posed.mp4", 1, "--pose_video", saved14 / "pose.mp4")  # task recognised
    assert posed.returncode == 0, posed.stderr[-3000:]
    for name in ("plain", "posed"):
        codec, rate, audio_streams, n = _probe(saved14 / f"{name}.mp4")
        assert (codec, rate, audio_streams, n) == ("h264", 16, 1, 16), (name, codec, rate, audio_streams, n)
    a, b = np.load(saved14 / "plain.npy"), np.load(saved14 / "posed.npy")
    assert a.shape == b.shape == (16, 64, 64, 3)
    assert np.abs(a - b).mean() > 1e-3  # the pose latents reach the DiT


def test_pose_video_refused_for_the_5b(saved14, tmp_path):
    res = _generate(saved14, tmp_path / "x.mp4", 1, "--task", "s2v-5B", "--pose_video", saved14 / "pose.mp4")
    assert res.returncode == 2 and "--pose_video only applies to --task s2v-14B" in res.stderr, res.stderr[-2000:]
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.slow
def test_generate_s2v14b_two_rank_sp_equals_one(saved14):
    single = saved14 / "single.mp4"
    res = _generate(saved14, single, 1, "--task", "s2v-14B", "--pose_video", saved14 / "pose.mp4")
    assert res.returncode == 0, res.stderr[-3000:]
    res = _generate(saved14, saved14 / "sp.mp4", 2, "--task", "s2v-14B", "--pose_video", saved14 / "pose.mp4",
                    "--ulysses_size", "2")
    assert res.returncode == 0, res.stderr[-3000:]
    a, b = np.load(saved14 / "sp.npy").astype(np.float64), np.load(single.with_suffix(".npy")).astype(np.float64)
    assert a.shape == b.shape
    assert float(((a - b) ** 2).sum() ** 0.5 / (b ** 2).sum() ** 0.5) <= 1e-4


@pytest.mark.slow
def test_batch_s2v14b_with_a_pose_item(saved14, tmp_path):
    """A batch of two items, one with its own pose_video: both written at 16 fps with audio."""
    import json

    items = [{"image": str(saved14 / "face.png"), "audio": str(saved14 / "a.wav"), "name": "plain"},
             {"image": str(saved14 / "face.png"), "audio": str(saved14 / "a.wav"), "name": "posed",
              "pose_video": str(saved14 / "pose.mp4")}]
    (tmp_path / "items.jsonl").write_text("\n".join(json.dumps(i) for i in items))
    res = subprocess.run([sys.executable, str(REPO / "generate.py"), "--ckpt_dir", str(saved14 / "pipe"),
                          "--batch_file", str(tmp_path / "items.jsonl"), "--output_dir", str(tmp_path / "out"),
                          "--size_bucket", "64x64", "--infer_frames", "8", "--sample_steps", "1", "--device", "cpu",
                          "-q"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    for name in ("plain", "posed"):
        assert _probe(tmp_path / "out" / f"{name}.mp4") == ("h264", 16, 1, 16)


def test_dubbing_with_s2v14b():
    """Dubbing a 16 fps source with the tiny S2V-14B: the output covers the new audio at 16 fps (1 s -> 16 frames)
    and starts from the source (two different sources give different dubs; the same one, the same dub)."""
    from talkverse.testing.tiny import tiny_pipeline

    pipe = tiny_pipeline(0, model="s2v-14B")
    pipe.set_progress_bar_config(disable=True)
    wave = (0.1 * np.sin(np.arange(16000) / 10)).astype(np.float32)
    outs = []
    for level in (30, 220, 220):
        src = [np.full((64, 64, 3), level, np.uint8) for _ in range(20)]
        out = pipe(None, wave, height=64, width=64, frames_per_clip=8, num_inference_steps=2, dub_video=iter(src),
                   dub_strength=0.1, generator=torch.Generator().manual_seed(0), progress=False).frames
        assert out.shape == (1, 16, 64, 64, 3)
        outs.append(out)
    assert np.abs(outs[1] - outs[0]).mean() > 1e-2 and np.array_equal(outs[1], outs[2])


def test_low_vram_profile_runs_s2v14b():
    """The low_vram profile (bf16, fp8 weight storage, block-level group offloading) on the tiny S2V-14B: the same
    video within the lossy-storage tolerance of the fp32 run."""
    from talkverse.testing.tiny import tiny_pipeline

    pipe = tiny_pipeline(0, model="s2v-14B")
    pipe.set_progress_bar_config(disable=True)
    wave = (0.1 * np.sin(np.arange(16000) / 10)).astype(np.float32)
    img = np.full((64, 64, 3), 100, np.uint8)
    kw = dict(height=64, width=64, frames_per_clip=8, num_inference_steps=2, progress=False)
    a = pipe(img, wave, generator=torch.Generator().manual_seed(0), **kw).frames
    pipe.enable_optimizations(profile="low_vram", device="cpu")
    b = pipe(img, wave, generator=torch.Generator().manual_seed(0), **kw).frames
    assert a.shape == b.shape == (1, 16, 64, 64, 3) and np.abs(a - b).mean() < 0.02
