"""The web UI's model switch (``--extra_model``): a TalkVerse-5B and a Wan2.2-S2V-14B model behind one page, one loaded
at a time; the 14B takes a pose video and writes 16 fps, the 5B 25 fps."""

from __future__ import annotations

import av
import numpy as np
import soundfile as sf
import torch


def _png(path):
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    return path


def test_model_switch_generates_with_each_model(tmp_path):
    import gradio as gr

    from talkverse.app.model import ModelSwitch
    from talkverse.app.settings import AppSettings
    from talkverse.app.ui import build_ui, make_generate_fn
    from talkverse.media.writer import VideoWriter
    from talkverse.testing.tiny import tiny_pipeline

    loads = []

    def loader(model):
        def load():
            loads.append(model)
            pipe = tiny_pipeline(0, model=model)
            pipe.set_progress_bar_config(disable=True)
            return pipe
        return load

    switch = ModelSwitch({"talkverse": loader("s2v-5B"), "s2v14b": loader("s2v-14B")})
    models = {"talkverse": {"infer_frames": 8, "steps": 1, "guide_scale": 4.0, "pose": False},
              "s2v14b": {"infer_frames": 8, "steps": 1, "guide_scale": 4.5, "pose": True}}
    settings = AppSettings(output_dir=tmp_path / "out", size_bucket="128x128", models=models)
    page = build_ui(settings, switch)
    dropdown = next(b for b in page.blocks.values() if isinstance(b, gr.Dropdown) and b.label == "Model")
    assert dropdown.visible and dropdown.choices == [("talkverse", "talkverse"), ("s2v14b", "s2v14b")]

    sf.write(tmp_path / "a.wav", 0.1 * np.sin(np.arange(8000) / 10).astype(np.float32), 16000)  # 0.5 s
    with VideoWriter(tmp_path / "pose.mp4", fps=25, crf=0) as w:
        w.write(torch.linspace(-1, 1, 12).view(1, 12, 1, 1).expand(3, 12, 128, 128))
    fn = make_generate_fn(settings, switch)
    face = str(_png(tmp_path / "face.png"))
    rates = {}
    for name, pose in (("talkverse", None), ("s2v14b", str(tmp_path / "pose.mp4"))):
        path, *_ = fn(face, str(tmp_path / "a.wav"), "p", "", "128x128", 8, 1, 4.0, 0, 0, [], name, pose,
                      progress=lambda *a, **k: None)
        with av.open(path) as c:
            rates[name] = (c.streams.video[0].average_rate, len(c.streams.audio))
        assert switch.current == name and switch.is_loaded(name)
    assert not switch.is_loaded("talkverse")  # switching dropped the first model
    assert rates == {"talkverse": (25, 1), "s2v14b": (16, 1)} and loads == ["s2v-5B", "s2v-14B"]
    try:  # the 5B refuses a pose video with a readable message
        fn(face, str(tmp_path / "a.wav"), "p", "", "128x128", 8, 1, 4.0, 0, 0, [], "talkverse",
           str(tmp_path / "pose.mp4"), progress=lambda *a, **k: None)
        raise AssertionError("no error")
    except gr.Error as e:
        assert "takes no pose video" in str(e)
    try:  # the 14B's clip limit is 120 frames
        fn(face, str(tmp_path / "a.wav"), "p", "", "128x128", 124, 1, 4.0, 0, 0, [], "s2v14b", None,
           progress=lambda *a, **k: None)
        raise AssertionError("no error")
    except gr.Error as e:
        assert "[4, 120], got 124" in str(e) and "s2v-14B" in str(e)


def test_extra_model_flag_takes_the_folder_task(tmp_path):
    from talkverse.app import cli
    from talkverse.app.settings import settings_from_args
    from talkverse.testing.tiny import tiny_pipeline

    tiny_pipeline(0, model="s2v-14B").save_pretrained(str(tmp_path / "s2v14b"))
    a = cli.parse_args(["--ckpt_dir", str(tmp_path), "--extra_model", f"wan={tmp_path / 's2v14b'}", "--output_dir",
                        str(tmp_path / "o")])
    (extra,) = a.extra_models
    assert (extra.task, extra.infer_frames, extra.sample_steps, extra.sample_guide_scale) == ("s2v-14B", 80, 40, 4.5)
    assert a.task == "s2v-5B" and a.infer_frames == 120
    s = settings_from_args(a)
    assert list(s.models) == [tmp_path.resolve().name, "wan"] and s.models["wan"]["pose"]
