"""Training correctness of the reference path (issue 18): the copy task, through the real train -> generate loop.

Still clips (``write_synthetic_dataset(still=True)``): every frame is the identity's reference image, trained without
motion tokens (``--enable_framepack false``; generation: ``first_clip_motion="drop"``), so the reference latent is
the only source of the picture. At 64x64 (4x4 latents, 2x2 tokens per frame) the copy is learnt in 1,500 steps (~1.5
min on 2 cores); at 128x128 300 steps left a 4.6 dB gap. The path is the user's: mp4 clips -> ``scripts/precache.py``
(the demo pipeline's VAE, wav2vec2 and umT5) -> ``train_s2v_5b.py`` (strategy full, from a randomly initialised
saved pipeline of the copy config) ->
``load_pipeline(folder, step file)`` -> ``TalkVersePipeline`` on each reference image.

The generated frame must reproduce the reference within 1 dB of what the VAE itself reconstructs of it. The control
is the same training run with every reference latent zeroed by the trainer (``--ref_dropout 1``): a trainer that
feeds no usable reference. It must fail the same bar by far (it can only learn the average face).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers import REPO, load_script

SIZE = 64  # 4x4 latents, 2x2 tokens per frame: the copy is learnt in a few hundred steps
MAIN_FRAMES = 4  # one latent frame per clip
IDENTITIES = 8
STEPS = int(os.environ.get("TALKVERSE_COPY_STEPS", 1500))
MARGIN_DB = 1.0


def _copy_config() -> dict:
    from talkverse.configs import model_config

    return model_config("s2v_small")


@pytest.fixture(scope="module")
def copy_env(tmp_path_factory):
    """Still clips, their latent cache (precache with the demo pipeline's encoders) and a random base pipeline."""
    from talkverse.demo import demo_model_dir
    from talkverse.models.transformer_talkverse import TalkVerseTransformer3DModel
    from talkverse.pipelines.loading import load_pipeline
    from talkverse.testing.synthetic import write_synthetic_dataset

    root = tmp_path_factory.mktemp("copy")
    csv = write_synthetic_dataset(root / "data", IDENTITIES, size=SIZE, seconds=(0.4, 0.4), seed=11, still=True)
    load_script("precache").main(["--csv", str(csv), "--data_root", str(root / "data"), "--ckpt_dir",
                                  str(demo_model_dir()), "--out", str(root / "latents"), "--bucket", f"{SIZE}x{SIZE}",
                                  "--num_frames", str(MAIN_FRAMES), "--dtype", "fp32", "--device", "cpu"])
    pipe = load_pipeline(demo_model_dir())
    torch.manual_seed(0)
    pipe.register_modules(transformer=TalkVerseTransformer3DModel(**_copy_config()))
    pipe.save_pretrained(root / "base")
    return {"root": root, "data": root / "data"}


def _train(env, name: str, *extra: str) -> object:
    out = env["root"] / name
    cmd = [sys.executable, str(REPO / "train_s2v_5b.py"), "--ckpt_dir", str(env["root"] / "base"), "--latent_cache",
           str(env["root"] / "latents"), "--output_path", str(out), "--unfreeze_strategy", "full",
           "--learning_rate", "2e-3", "--warmup_steps", "20", "--weight_decay", "0", "--batch_size", "4",
           "--gradient_accumulation_steps", "1", "--max_steps", str(STEPS), "--save_steps", str(STEPS),
           "--log_interval", "50", "--gradient_checkpointing", "false", "--export_dtype", "fp32", "--device", "cpu",
           "--resume", "none", "--enable_framepack", "false", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / f"step-{STEPS}.safetensors"


def _reproduction(env, step_file) -> list[tuple[float, float]]:
    """(PSNR of the generated frame, PSNR of the VAE reconstruction) against each identity's reference image."""
    from talkverse.eval.demo import clips_of, ground_truth_frames, vae_round_trip
    from talkverse.eval.fidelity import psnr_per_frame
    from talkverse.pipelines.loading import load_pipeline

    pipe = load_pipeline(env["root"] / "base", step_file)
    pipe.set_progress_bar_config(disable=True)
    pipe.register_to_config(first_clip_motion="drop")  # no motion tokens, as trained
    out = []
    for _, _, gt in clips_of(env["data"]):
        reference = ground_truth_frames(gt, SIZE)[0][0]
        embeds = torch.zeros(1, pipe.transformer.config.text_dim)
        frames = pipe(reference, None, height=SIZE, width=SIZE, frames_per_clip=MAIN_FRAMES, num_inference_steps=20,
                      guidance_scale=1.0, audio_features=torch.zeros(1, 25, pipe.transformer.config.audio_dim,
                                                                     MAIN_FRAMES),
                      prompt_embeds=embeds, negative_prompt_embeds=embeds, generator=torch.Generator().manual_seed(0),
                      output_type="np").frames[0]
        generated = (frames[0] * 255).round().astype(np.uint8)
        out.append((float(psnr_per_frame(generated, reference)[0]),
                    float(psnr_per_frame(vae_round_trip(pipe, reference[None])[0], reference)[0])))
    return out


def test_training_and_the_pipeline_make_the_same_reference_latent(tmp_path):
    """The reference latent a training window carries (dataset cover crop -> ``encode_raw_sample``, what precache
    stores) equals the one the pipeline makes when that same frame is the portrait (``prepare_conditioning``), on a
    160x160 source fitted to the 128x128 bucket (so the resize path is exercised)."""
    from talkverse.data.dataset import TalkVerseDataset
    from talkverse.data.rows import read_rows
    from talkverse.media.video import open_clip
    from talkverse.testing.synthetic import write_synthetic_dataset
    from talkverse.testing.tiny import tiny_pipeline
    from talkverse.training.batch import encode_raw_sample

    csv = write_synthetic_dataset(tmp_path, 1, size=160, seconds=(1.0, 1.0), seed=3)
    ds = TalkVerseDataset(read_rows([str(csv)], str(tmp_path)), bucket="128x128", num_frames=8, seed=0)
    item = ds.load_row(0, ds.rng_for(0, 0, 0))
    pipe = tiny_pipeline()
    sample = encode_raw_sample(item, pipe.vae_codec, pipe.audio_codec, 8, 73)
    video = open_clip(ds.rows[0].video_path)
    portrait = video.read([item["ref_index"]])[0]  # the same frame, decoded as a user's portrait would be
    video.close()
    embeds = torch.zeros(1, pipe.transformer.config.text_dim)
    cond, ref_px = pipe.prepare_conditioning(portrait, None, None, None, 128, 128, "128x128", "cover", 8, None, None,
                                             False, embeds, embeds, sample["audio"][None])
    assert torch.equal(ref_px[0], item["ref"])
    assert torch.equal(cond.ref_latents[0], sample["ref"])


@pytest.mark.slow
def test_model_copies_the_reference_and_a_zeroed_reference_cannot(copy_env):
    trained = _reproduction(copy_env, _train(copy_env, "copy"))
    gaps = [vae - gen for gen, vae in trained]
    print("copy task, generated vs VAE PSNR per identity:", [f"{g:.2f}/{v:.2f}" for g, v in trained])
    assert np.median(gaps) <= MARGIN_DB and max(gaps) <= 2 * MARGIN_DB, trained
    control = _reproduction(copy_env, _train(copy_env, "control", "--ref_dropout", "1"))
    control_gaps = [vae - gen for gen, vae in control]
    print("control (reference zeroed in training):", [f"{g:.2f}/{v:.2f}" for g, v in control])
    assert np.median(control_gaps) > 3 * MARGIN_DB, control
