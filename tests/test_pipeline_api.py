"""TalkVersePipeline speaks diffusers' dialect (output types, return_dict, generator, callback_on_step_end, argument
checks, the iterator form), and the runner decodes every input file once per video."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from talkverse.pipelines.pipeline_talkverse import TalkVersePipeline


@pytest.fixture(scope="module")
def pipe():
    from talkverse.testing.tiny import tiny_pipeline

    p = tiny_pipeline()
    p.set_progress_bar_config(disable=True)
    return p


@pytest.fixture(scope="module")
def image():
    from skimage.data import astronaut

    return Image.fromarray(astronaut()).resize((96, 96))


WAVE = (0.3 * np.sin(2 * np.pi * 220 * np.arange(8000) / 16000)).astype(np.float32)  # 0.5 s: 13 frames, 2 clips of 8


def _kw(seed=0, **kw):
    return dict(height=128, width=128, frames_per_clip=8, num_inference_steps=2, progress=False,
                generator=torch.Generator().manual_seed(seed), **kw)


def test_output_types_and_return_dict(pipe, image):
    np_out = pipe(image, WAVE, **_kw()).frames
    assert np_out.shape == (1, 13, 128, 128, 3) and np_out.dtype == np.float32
    assert 0.0 <= np_out.min() and np_out.max() <= 1.0 and np_out.std() > 0.01
    pt = pipe(image, WAVE, output_type="pt", **_kw()).frames
    assert pt.shape == (1, 13, 3, 128, 128)
    np.testing.assert_array_equal(pt.permute(0, 1, 3, 4, 2).numpy(), np_out)
    pil = pipe(image, WAVE, output_type="pil", **_kw()).frames
    assert len(pil) == 1 and len(pil[0]) == 13 and pil[0][0].size == (128, 128)
    np.testing.assert_array_equal(np.asarray(pil[0][5]), (np_out[0, 5] * 255).round().astype(np.uint8))
    (tup,) = pipe(image, WAVE, return_dict=False, **_kw())
    np.testing.assert_array_equal(tup, np_out)
    with pytest.raises(ValueError, match="^output_type"):
        pipe(image, WAVE, output_type="latent", **_kw())
    # a float [3, H, W] tensor in [0, 1] is the same portrait as the PIL image
    t = torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255
    np.testing.assert_array_equal(pipe(t, WAVE, **_kw()).frames, np_out)


def test_generator_seeds_each_clip(pipe, image):
    """One generator with initial seed s is the list [s, s + 1, ...]: clip r's noise never depends on clip r - 1."""
    one = pipe(image, WAVE, **_kw(seed=7)).frames
    per_clip = pipe(image, WAVE, **{**_kw(), "generator": [torch.Generator().manual_seed(7 + r) for r in range(2)]})
    np.testing.assert_array_equal(per_clip.frames, one)
    other = pipe(image, WAVE, **_kw(seed=8)).frames
    assert np.abs(other - one).mean() > 1e-3


def test_iterator_yields_each_clip_and_embeddings_match_prompts(pipe, image):
    whole = pipe(image, WAVE, prompt="a man talking", output_type="pt", **_kw()).frames[0]  # [T, 3, H, W]
    clips = list(pipe.iter_clips(image, WAVE, prompt="a man talking", **_kw()))
    assert [c.shape[1] for c in clips] == [5, 8]  # clip 0: 8 - 3 frames; clip 1: trimmed to the 13 audio frames
    video = torch.cat(clips, dim=1).permute(1, 0, 2, 3)
    torch.testing.assert_close((video / 2 + 0.5).clamp(0, 1), whole, rtol=0, atol=0)
    ctx, ctx_null = pipe.encode_prompt("a man talking")
    embedded = pipe(image, WAVE, prompt_embeds=ctx, negative_prompt_embeds=ctx_null, output_type="pt", **_kw())
    torch.testing.assert_close(embedded.frames[0], whole, rtol=0, atol=0)
    plan = pipe.plan_video(len(WAVE), frames_per_clip=8)
    feats = pipe.encode_audio(WAVE, plan)  # [1, 25, C, R F]
    from_features = pipe(image, audio_features=feats, prompt="a man talking", output_type="pt", **_kw()).frames[0]
    assert from_features.shape[0] == plan.produced_frames == 13 and torch.equal(from_features, whole)


def test_callback_on_step_end_sees_every_step_and_can_replace_latents(pipe, image):
    seen = []

    def record(p, i, t, tensors):
        seen.append((p.current_clip, p.num_clips, i, int(t), sorted(tensors)))
        assert tensors["latents"].shape == (1, 48, 2, 8, 8) and tensors["noise_pred_uncond"] is not None
        return {}

    base = pipe(image, WAVE, callback_on_step_end=record,
                callback_on_step_end_tensor_inputs=["latents", "noise_pred_uncond"], **_kw())
    assert [(c, n, i) for c, n, i, _, _ in seen] == [(0, 2, 0), (0, 2, 1), (1, 2, 0), (1, 2, 1)]
    assert all(names == ["latents", "noise_pred_uncond"] for *_, names in seen)
    zeroed = pipe(image, WAVE, callback_on_step_end=lambda p, i, t, d: {"latents": torch.zeros_like(d["latents"])},
                  **_kw())
    assert np.abs(zeroed.frames - base.frames).mean() > 1e-3
    with pytest.raises(ValueError, match="^callback_on_step_end_tensor_inputs"):
        pipe(image, WAVE, callback_on_step_end=record, callback_on_step_end_tensor_inputs=["x"], **_kw())


@pytest.mark.parametrize("bad, argument", [
    (dict(image=None), "image"),
    (dict(audio=None), "audio"),
    (dict(audio_features=torch.zeros(1, 25, 36, 16)), "audio"),  # both audio and audio_features
    (dict(height=100), "height"),
    (dict(width=None), "height/width"),
    (dict(frames_per_clip=6), "frames_per_clip"),
    (dict(frames_per_clip=164), "frames_per_clip"),
    (dict(num_clips=0), "num_clips"),
    (dict(num_inference_steps=0), "num_inference_steps"),
    (dict(guidance_scale=float("nan")), "guidance_scale"),
    (dict(sync_shift_frames=-1), "sync_shift_frames"),
    (dict(first_clip_motion="keep"), "first_clip_motion"),
    (dict(image_fit="stretch"), "image_fit"),
    (dict(dub_strength=1.5), "dub_strength"),
    (dict(dub_ref="last"), "dub_ref"),
    (dict(prompt_embeds=torch.zeros(3, 40)), "negative_prompt_embeds"),
    (dict(generator=7), "generator"),
])
def test_check_inputs_names_the_argument(pipe, image, bad, argument):
    args = {"image": image, "audio": WAVE, **_kw(), **bad}
    with pytest.raises(ValueError) as e:
        pipe(**args)
    assert str(e.value).startswith(argument), str(e.value)


def test_pipeline_without_encoders_needs_embeddings(pipe, image):
    bare = TalkVersePipeline(transformer=pipe.transformer, vae=pipe.vae, scheduler=pipe.scheduler)
    with pytest.raises(ValueError, match="^audio: this pipeline has no audio encoder"):
        bare(image, WAVE, **_kw())
    feats = pipe.encode_audio(WAVE, pipe.plan_video(len(WAVE), frames_per_clip=8))
    with pytest.raises(ValueError, match="^prompt: this pipeline has no text encoder"):
        bare(image, audio_features=feats, **_kw())
    ctx, ctx_null = pipe.encode_prompt("a man talking")
    out = bare(image, audio_features=feats, prompt_embeds=ctx, negative_prompt_embeds=ctx_null, **_kw()).frames
    assert out.shape == (1, 13, 128, 128, 3)


# ------------------------------------------------------------------------------------------ the runner
class OpenCounter:
    """Counts how often each of ``paths`` is opened: by path through PyAV, libsndfile or PIL (the three decoders in
    use), or as a file object by talkverse.media.audio (which decodes from one open file)."""

    def __init__(self, monkeypatch, paths):
        import av
        import PIL.Image
        import soundfile

        import talkverse.media.audio

        self.paths = {str(Path(p).resolve()): 0 for p in paths}
        for module, name in ((av, "open"), (soundfile, "SoundFile"), (soundfile, "info"), (PIL.Image, "open")):
            monkeypatch.setattr(module, name, self._wrap(getattr(module, name)))
        monkeypatch.setattr(talkverse.media.audio, "open", self._wrap(open), raising=False)  # shadows the builtin

    def _wrap(self, fn):
        def counted(path, *a, **kw):
            key = str(Path(str(path)).resolve()) if isinstance(path, (str, Path)) else None
            if key in self.paths:
                self.paths[key] += 1
            return fn(path, *a, **kw)

        return counted


def test_each_input_is_opened_and_decoded_once(pipe, image, tmp_path, monkeypatch):
    from talkverse.media.writer import VideoWriter
    from talkverse.runner import GenerationOptions, generate_to_file, load_inputs

    png, wav, src = tmp_path / "face.png", tmp_path / "speech.wav", tmp_path / "source.mp4"
    image.save(png)
    sf.write(wav, WAVE, 16000)
    with VideoWriter(src, fps=30) as w:
        w.write(np.full((15, 96, 96, 3), 128, np.uint8))
    options = GenerationOptions(size_bucket="128x128", frames_per_clip=8, num_inference_steps=1, seed=3,
                                progress=False)
    counter = OpenCounter(monkeypatch, [png, wav, src])
    inputs = load_inputs(png, wav)
    result = generate_to_file(pipe, inputs, options, tmp_path / "out.mp4")
    assert result.frames == 13 and (tmp_path / "out.mp4").is_file()
    assert counter.paths == {str(png.resolve()): 1, str(wav.resolve()): 1, str(src.resolve()): 0}
    # dubbing without a portrait: the source is opened once, and its first frame is the portrait
    inputs = load_inputs(None, wav, src)
    generate_to_file(pipe, inputs, options, tmp_path / "dub.mp4")
    inputs.close()
    assert counter.paths == {str(png.resolve()): 1, str(wav.resolve()): 2, str(src.resolve()): 1}
