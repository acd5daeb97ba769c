"""The web app's pieces without a browser: upload validation, settings, CLI flags, model cache, progress, gallery."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from talkverse.app.validation import InputError, check_audio, check_image, check_settings

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- validation
def test_check_image_accepts_a_photo_and_rejects_text(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((40, 30, 3), 128, np.uint8)).save(tmp_path / "face.png")
    assert check_image(tmp_path / "face.png").size == (30, 40)
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(InputError) as e:
        check_image(tmp_path / "notes.png")
    assert str(e.value) == ("The file “notes.png” is not an image that can be read. Please upload a PNG, JPEG or "
                            "WebP photo.")
    assert str(tmp_path) not in str(e.value)  # the server's paths stay out of the page


def test_check_image_missing_and_too_small(tmp_path):
    from PIL import Image

    with pytest.raises(InputError, match="Please upload a portrait image."):
        check_image(None)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "tiny.png")
    with pytest.raises(InputError, match="“tiny.png” is too small; it needs at least 16 pixels"):
        check_image(tmp_path / "tiny.png")


def test_check_audio_duration_and_errors(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(22050 * 2, np.float32), 22050)
    ok = check_audio(tmp_path / "a.wav", max_seconds=5)
    assert ok.seconds == pytest.approx(2.0, abs=1e-3) and ok.waveform().dtype == np.float32 and ok.sample_rate == 22050
    with pytest.raises(InputError) as e:
        check_audio(tmp_path / "a.wav", max_seconds=1.5)
    assert str(e.value).startswith("The audio “a.wav” is 2.0 seconds long; this page accepts at most 1.5 seconds.")
    (tmp_path / "notes.wav").write_text("not audio")
    with pytest.raises(InputError, match="The file “notes.wav” is not audio that can be read. Please upload a WAV"):
        check_audio(tmp_path / "notes.wav", max_seconds=5)
    with pytest.raises(InputError, match="Please upload a speech recording"):
        check_audio(None, max_seconds=5)


def test_check_audio_video_without_audio_track(tmp_path):
    import torch

    from talkverse.media.writer import VideoWriter

    with VideoWriter(tmp_path / "silent.mp4", fps=25) as w:
        w.write(torch.zeros(3, 4, 32, 32))
    with pytest.raises(InputError, match="“silent.mp4” has no audio track"):
        check_audio(tmp_path / "silent.mp4", max_seconds=5)


def test_check_settings():
    kw = check_settings("128x128", 24, 20, 4.0, 0, 0)
    assert kw == dict(size_bucket="128x128", infer_frames=24, num_inference_steps=20, guidance_scale=4.0, seed=0,
                      num_clips=None)
    assert check_settings("fasttalk-480", 120.0, 50, 6.5, -1, 2)["seed"] is None
    assert check_settings("fasttalk-480", 120, 50, 6.5, -1, 2)["num_clips"] == 2
    for bad, msg in [(("100x100", 24, 20, 4, 0, 0), "size bucket “100x100” is not valid"),
                     (("128x128", 22, 20, 4, 0, 0), "multiple of 4 between 4 and 160, not 22"),
                     (("128x128", 24, 0, 4, 0, 0), "Steps must be between 1 and 1000"),
                     (("128x128", 24, 20, "x", 0, 0), "Guide scale must be a number"),
                     (("128x128", 24, 20, 4, 1.5, 0), "Seed must be a whole number"),
                     (("128x128", 24, 20, 4, 0, -1), "Number of clips must be 0")]:
        with pytest.raises(InputError, match=msg):
            check_settings(*bad)


# ---------------------------------------------------------------- CLI and settings
def test_help_explains_every_flag():
    from talkverse.app.cli import build_parser

    proc = subprocess.run([sys.executable, "-m", "talkverse.app", "--help"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for action in build_parser()._actions:
        assert action.help, f"{action.option_strings} has no help"
        for flag in action.option_strings:
            assert flag in proc.stdout
    for flag in ("--ckpt_dir", "--lora_ckpt", "--host", "--port", "--max_audio_seconds", "--history", "--enhancer"):
        assert flag in proc.stdout
    assert "127.0.0.1" in proc.stdout and "120" in proc.stdout


def test_args_demo_defaults_and_real_model(tmp_path, monkeypatch, capsys):
    import talkverse.demo as demo_assets
    from talkverse.app import cli
    from talkverse.app.settings import settings_from_args

    a = cli.parse_args(["--ckpt_dir", str(tmp_path), "--task", "s2v-tiny-demo", "--output_dir",
                        str(tmp_path / "out")])
    assert (a.host, a.port, a.max_audio_seconds, a.history) == ("127.0.0.1", 7860, 120.0, 8)
    s = settings_from_args(a)
    assert (s.size_bucket, s.infer_frames, s.steps, s.guide_scale, s.seed) == ("128x128", 24, 20, 4.0, 0)
    assert a.ckpt_dir == str(tmp_path) and s.output_dir == tmp_path / "out" and s.output_dir.is_dir()
    assert s.size_buckets[0] == "128x128"

    b = cli.parse_args(["--ckpt_dir", str(tmp_path), "--sample_steps", "8", "--history", "3"])
    s = settings_from_args(b)
    assert b.task == "s2v-5B" and (s.size_bucket, s.infer_frames, s.steps, s.guide_scale, s.seed, s.history) == \
        ("fasttalk-720", 120, 8, 6.5, -1, 3)

    # No --ckpt_dir: the shipped demo model (talkverse.demo), or one clear line when it is absent.
    fake = tmp_path / "demo-model"
    monkeypatch.setattr(demo_assets, "demo_model_dir", lambda: fake)
    with pytest.raises(SystemExit):
        cli.parse_args([])
    assert "tiny demo model is not in this installation" in capsys.readouterr().err
    fake.mkdir()
    c = cli.parse_args([])
    assert c.task == "s2v-tiny-demo" and c.ckpt_dir == str(fake)
    assert settings_from_args(c).model_name == "the tiny demo model"


def test_args_errors(tmp_path, capsys):
    from talkverse.app import cli

    for argv, msg in [(["--ckpt_dir", str(tmp_path / "nope")], "not found"),
                      (["--ckpt_dir", str(tmp_path), "--enhancer", str(tmp_path / "nope")], "not a folder"),
                      (["--ckpt_dir", str(tmp_path), "--max_audio_seconds", "0"], "must be positive")]:
        with pytest.raises(SystemExit):
            cli.parse_args(argv)
        assert msg in capsys.readouterr().err


# ---------------------------------------------------------------- model cache, gallery, progress
def test_model_cache_loads_once_across_threads():
    from talkverse.app.model import ModelCache

    calls = []

    def loader():
        calls.append(1)
        time.sleep(0.2)
        return object()

    cache = ModelCache(loader)
    assert not cache.loaded
    got = []
    threads = [threading.Thread(target=lambda: got.append(cache.get())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and cache.loads == 1 and len({id(g) for g in got}) == 1
    with cache.use() as value:
        assert value is got[0]


def test_history_keeps_the_newest():
    from talkverse.app.history import add_result

    h = []
    for i in range(5):
        h = add_result(h, f"v{i}.mp4", f"c{i}", limit=3)
    assert h == [("v4.mp4", "c4"), ("v3.mp4", "c3"), ("v2.mp4", "c2")]
    assert add_result(h, "x.mp4", "x", limit=0) == []


def test_generate_video_reports_clips_and_steps(tmp_path):
    """generate_video on the tiny random pipeline: an mp4 with AAC audio, one report per clip and step (through the
    pipeline's callback_on_step_end), and the pipeline instance left unpatched."""
    import av

    from talkverse.app.generation import generate_video
    from talkverse.testing.tiny import tiny_pipeline

    pipe = tiny_pipeline()
    pipe.set_progress_bar_config(disable=True)
    sf.write(tmp_path / "a.wav", 0.1 * np.sin(np.arange(8000) / 10).astype(np.float32), 16000)  # 0.5 s: 13 frames
    img = check_image(_png(tmp_path / "face.png"))
    audio = check_audio(tmp_path / "a.wav", 10)
    reports = []
    opts = check_settings("128x128", 8, 2, 4.0, 3, 0)  # the motion packer needs >= 8x8 latents
    res = generate_video(pipe, img, audio, "A person is speaking.", None, opts, tmp_path,
                         report=lambda done, desc: reports.append((done, desc)))
    assert "denoise_clip" not in pipe.__dict__
    assert res.num_clips == 2 and res.frames == 13 and res.seed == 3 and res.size == (128, 128)
    steps = [r for r in reports if "step" in r[1]]
    assert [d for _, d in steps] == ["Clip 1/2 · step 1/2", "Clip 1/2 · step 2/2", "Clip 2/2 · step 1/2",
                                     "Clip 2/2 · step 2/2"]
    assert [done for done, _ in steps] == [(0, 4), (1, 4), (2, 4), (3, 4)]
    assert reports[-1][1] == "Clip 2/2 · writing frames 13/13"
    with av.open(str(res.video_path)) as c:
        assert c.streams.video[0].codec_context.name == "h264" and c.streams.audio[0].codec_context.name == "aac"
    assert res.video_path.parent == tmp_path and "seed 3" in res.caption() and "2 clips" in res.summary()


def _png(path):
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    return path


# ---------------------------------------------------------------- the page (built, not served)
def test_page_hides_the_enhancer_without_a_model(tmp_path):
    import gradio as gr

    from talkverse.app.model import ModelCache
    from talkverse.app.settings import AppSettings
    from talkverse.app.ui import build_ui

    demo = build_ui(AppSettings(output_dir=tmp_path, size_bucket="128x128"), ModelCache(lambda: None))
    buttons = {b.value: b for b in demo.blocks.values() if isinstance(b, gr.Button)}
    assert buttons["Enhance prompt"].visible is False and buttons["Generate"].visible is True
    labels = {getattr(b, "label", None) for b in demo.blocks.values()}
    assert {"Portrait", "Speech (up to 120 s)", "Prompt", "Negative prompt", "Size bucket", "Steps per clip",
            "Guide scale", "Seed", "Number of clips", "Result", "Download mp4", "Last 8 results"} <= labels
    audio = next(b for b in demo.blocks.values() if isinstance(b, gr.Audio))
    assert audio.sources == ["upload", "microphone"]


# ---------------------------------------------------------------- failures and shutdown
def test_a_failed_request_logs_one_line_and_the_traceback_only_at_debug(tmp_path, caplog):
    """An unexpected error in a request: the page gets one readable message, the log one line at error level; the
    traceback is logged at debug level only."""
    import logging

    import gradio as gr

    from talkverse.app.model import ModelCache
    from talkverse.app.settings import AppSettings
    from talkverse.app.ui import make_generate_fn

    def broken_loader():
        raise RuntimeError("CUDA out of memory\nsecond line of the message")

    sf.write(tmp_path / "a.wav", 0.1 * np.sin(np.arange(8000) / 10).astype(np.float32), 16000)
    fn = make_generate_fn(AppSettings(output_dir=tmp_path / "out"), ModelCache(broken_loader))
    args = (str(_png(tmp_path / "face.png")), str(tmp_path / "a.wav"), "p", "", "128x128", 8, 2, 4.0, 0, 0, [])
    for level, expect in ((logging.INFO, 1), (logging.DEBUG, 2)):
        caplog.clear()
        with caplog.at_level(level, logger="talkverse.app"), pytest.raises(gr.Error) as err:
            fn(*args, progress=lambda *a, **k: None)
        records = [r for r in caplog.records if r.name == "talkverse.app"]
        assert len(records) == expect, [r.getMessage() for r in records]
        assert records[0].levelno == logging.ERROR and records[0].exc_info is None
        assert records[0].getMessage() == "generation failed: RuntimeError: CUDA out of memory"
        assert "Traceback" not in str(err.value) and "second line" not in str(err.value)
    assert records[1].levelno == logging.DEBUG and records[1].exc_info is not None


@pytest.mark.slow
def test_the_server_removes_its_temporary_folder_on_sigterm(tmp_path):
    """Without --output_dir the app writes into a new temporary folder; stopping the server (SIGTERM, as systemd or
    docker stop do) removes it."""
    import signal
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, TMPDIR=str(tmp_path), GRADIO_ANALYTICS_ENABLED="False")
    proc = subprocess.Popen([sys.executable, "-m", "talkverse.app", "--port", str(port)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                time.sleep(0.5)
        made = list(tmp_path.glob("talkverse-app-*"))
        assert len(made) == 1 and made[0].is_dir()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-2000:]
    assert not made[0].exists() and "Traceback" not in out
