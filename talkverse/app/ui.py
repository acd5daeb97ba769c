"""The page: inputs, advanced settings, progress, the result with a download, and the gallery of recent results."""

from __future__ import annotations

import logging

import gradio as gr

from .components import portrait_image
from .enhancer import EnhancerError, PromptEnhancer
from .generation import generate_video
from .history import add_result
from .model import ModelCache
from .settings import AppSettings
from .validation import InputError, check_audio, check_image, check_settings

log = logging.getLogger("talkverse.app")

INTRO = """# TalkVerse
Upload a portrait and a speech recording (or record one), describe the scene, and generate a lip-synced talking
video that lasts as long as the speech. Model: {model}. Audio up to {max_s:g} s."""


def _plain(e: BaseException) -> str:
    """The first line of an unexpected error, shortened: enough to report it, never a stack trace."""
    line = (str(e).strip().splitlines() or [""])[0][:300]
    return f"{type(e).__name__}: {line}" if line else type(e).__name__


def make_generate_fn(settings: AppSettings, models: ModelCache):
    def generate(image, audio, prompt, negative_prompt, size_bucket, infer_frames, steps, guide_scale, seed,
                 num_clips, history, model=None, pose_video=None, progress=gr.Progress()):
        try:
            options = check_settings(size_bucket, infer_frames, steps, guide_scale, seed, num_clips)
            portrait = check_image(image)
            speech = check_audio(audio, settings.max_audio_seconds)
        except InputError as e:
            raise gr.Error(str(e), title="Input problem") from None
        try:
            switching = model is not None and hasattr(models, "is_loaded")
            if not (models.is_loaded(model) if switching else models.loaded):
                progress(0, desc="Loading the model (first request for it)")
            with (models.use(model) if switching else models.use()) as pipe:
                if pose_video and not pipe.family.pose:
                    raise gr.Error(f"The {pipe.family.name} model takes no pose video.", title="Input problem")
                try:  # the model's own clip limit (S2V-14B: 120 frames, its reference RoPE slot)
                    pipe.geometry(options["infer_frames"]).check("Frames per clip")
                except ValueError as e:
                    raise gr.Error(f"{e} (the {pipe.family.name} model).", title="Input problem") from None
                progress(0, desc="Encoding the image, prompt and audio")
                result = generate_video(pipe, portrait, speech, prompt, negative_prompt, options,
                                        settings.output_dir, report=lambda done, desc: progress(done, desc=desc),
                                        pose_video=pose_video or None)
        except gr.Error:
            raise
        except Exception as e:  # noqa: BLE001 - one line on the page and in the log; the traceback at debug level
            log.error("generation failed: %s", _plain(e))
            log.debug("generation failed", exc_info=True)
            raise gr.Error(f"Generation failed ({_plain(e)}). Run the app with --log_level debug for the details.",
                           title="Generation failed") from None
        path = str(result.video_path)
        history = add_result(history, path, result.caption(), settings.history)
        return path, path, result.summary(), history, history

    return generate


def make_enhance_fn(enhancer: PromptEnhancer):
    def enhance(prompt):
        try:
            return enhancer.enhance(prompt)
        except EnhancerError as e:
            raise gr.Error(str(e), title="Prompt enhancer") from None
        except Exception as e:  # noqa: BLE001
            log.error("prompt enhancement failed: %s", _plain(e))
            log.debug("prompt enhancement failed", exc_info=True)
            raise gr.Error(f"The prompt enhancer failed ({_plain(e)}).", title="Prompt enhancer") from None

    return enhance


def build_ui(settings: AppSettings, models: ModelCache, enhancer: PromptEnhancer | None = None) -> gr.Blocks:
    with gr.Blocks(title="TalkVerse", analytics_enabled=False) as demo:
        gr.Markdown(INTRO.format(model=settings.model_name or "TalkVerse", max_s=settings.max_audio_seconds))
        history = gr.State([])
        with gr.Row():
            with gr.Column():
                image = portrait_image(label="Portrait", type="filepath", sources=["upload", "clipboard"],
                                      elem_id="portrait", height=300)
                audio = gr.Audio(label=f"Speech (up to {settings.max_audio_seconds:g} s)",
                                 sources=["upload", "microphone"], type="filepath", elem_id="speech")
                prompt = gr.Textbox(label="Prompt", value=settings.prompt, lines=3, elem_id="prompt")
                enhance = gr.Button("Enhance prompt", visible=enhancer is not None, elem_id="enhance", size="sm")
                negative = gr.Textbox(label="Negative prompt", value=settings.negative_prompt, lines=2,
                                      elem_id="negative-prompt")
                with gr.Accordion("Advanced settings", open=False, elem_id="advanced"):
                    size_bucket = gr.Dropdown(settings.size_buckets, value=settings.size_bucket, label="Size bucket",
                                              allow_custom_value=True,
                                              info="fasttalk-720 / fasttalk-480 pick the size from the image's "
                                                   "aspect ratio; WxH (width first, multiples of 32) fixes it")
                    frames = gr.Number(settings.infer_frames, label="Frames per clip", precision=0, minimum=4,
                                       maximum=160, step=4, info="a multiple of 4")
                    steps = gr.Slider(1, 100, value=settings.steps, step=1, label="Steps per clip")
                    guide = gr.Slider(0, 15, value=settings.guide_scale, step=0.5, label="Guide scale",
                                      info="CFG for text and audio together; 1 or less turns CFG off")
                    seed = gr.Number(settings.seed, label="Seed", precision=0, info="-1 = a random seed")
                    clips = gr.Number(0, label="Number of clips", precision=0, minimum=0,
                                      info="0 = enough clips for the whole audio")
                choices = settings.models or {}
                first = next(iter(choices.values()), {})
                model = gr.Dropdown(list(choices), value=next(iter(choices), None), label="Model", elem_id="model",
                                    visible=len(choices) > 1, info="one model is loaded at a time")
                pose = gr.Video(label="Pose video (S2V-14B, optional)", sources=["upload"], elem_id="pose",
                                visible=bool(first.get("pose")))
                run = gr.Button("Generate", variant="primary", elem_id="generate")
            with gr.Column():
                video = gr.Video(label="Result", elem_id="result", interactive=False, height=420)
                download = gr.File(label="Download mp4", elem_id="download", interactive=False)
                status = gr.Markdown(elem_id="status")
        gallery = gr.Gallery(label=f"Last {settings.history} results", columns=6, fit_columns=False, height=220,
                             object_fit="contain", elem_id="gallery", interactive=False, preview=False,
                             visible=settings.history > 0)
        run.click(make_generate_fn(settings, models),
                  [image, audio, prompt, negative, size_bucket, frames, steps, guide, seed, clips, history, model, pose],
                  [video, download, status, gallery, history], api_name="generate", concurrency_id="gpu")
        if len(choices) > 1:  # switching models puts its own settings on the page
            def switch(name):
                d = choices[name]
                return d["infer_frames"], d["steps"], d["guide_scale"], gr.update(visible=d["pose"], value=None)

            model.change(switch, [model], [frames, steps, guide, pose])
        if enhancer is not None:
            enhance.click(make_enhance_fn(enhancer), [prompt], [prompt], api_name="enhance_prompt")
    return demo
