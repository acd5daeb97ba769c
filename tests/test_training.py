"""Training: strategies, objective, optimiser groups, checkpoints, and real runs (single process, DDP, FSDP2, resume)
on a tiny dataset written in the real format (mp4 with audio, CSV, DWPose npz, text embeddings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from helpers import REPO, load_script
from talkverse.manifest import build_meta_model
from talkverse.training.objective import noisy_latents, roi_mse, sample_timestep
from talkverse.training.optim import make_lr_scheduler, make_optimizer, param_groups
from talkverse.training.setup import apply_strategy, export_name, trainable_count


# --------------------------------------------------------------------------------------------------- setup
@pytest.mark.parametrize("strategy,count", [("new_modules", 705_143_065), ("framepack", 705_143_065),
                                            ("minimal", 772_610_521), ("lora", 1_047_861_721),
                                            ("full", 5_704_930_777)])
def test_trainable_counts_full_size(strategy, count):
    """training.md §5 table, on the meta device."""
    model = build_meta_model("s2v_5b")
    apply_strategy(model, strategy)
    assert trainable_count(model) == count


def test_lora_targets_and_export_names():
    model = build_meta_model("s2v_5b")
    apply_strategy(model, "lora")
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    lora = [export_name(n) for n in names if ".lora_" in n]
    assert len(lora) == 480 and not any(".v." in k for k in lora)
    assert "blocks.7.cross_attn.o.lora_B.weight" in lora and "blocks.29.ffn.2.lora_A.weight" in lora
    others = {export_name(n) for n in names if ".lora_" not in n}
    assert {"head.head.weight", "head.modulation", "time_embedding.0.weight", "time_projection.1.bias"} <= others
    assert all(not k.startswith("model.") for k in others)
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert any("attn1.to_v" in n for n in frozen) and not any(".lora_" in n for n in frozen)


def test_unknown_strategy():
    with pytest.raises(ValueError, match="unknown unfreeze strategy"):
        apply_strategy(build_meta_model("s2v_tiny"), "none")


# ------------------------------------------------------------------------------------------------ objective
def test_uniform_sigma_table():
    g = torch.Generator().manual_seed(0)
    seen = {}
    for _ in range(3000):
        t, s = sample_timestep("uniform", g)
        seen[t] = s
    assert min(seen) >= 0 and max(seen) <= 999
    for t, s in seen.items():
        assert s == pytest.approx(0.000999 * (t + 1), abs=0)
    t, s = sample_timestep("shifted:3", g)
    assert 0 < s < 1 and t == int(s * 1000)
    with pytest.raises(ValueError):
        sample_timestep("cosine", g)


def test_flow_matching_targets():
    x0, eps = torch.randn(2, 4, 3, 2, 2), torch.randn(2, 4, 3, 2, 2)
    sigma = torch.tensor([0.25, 0.9])
    x_t, v = noisy_latents(x0, eps, sigma)
    torch.testing.assert_close(x_t[1], 0.1 * x0[1] + 0.9 * eps[1])
    torch.testing.assert_close(v, eps - x0)


def test_roi_loss_batch_equals_mean_of_singles():
    g = torch.Generator().manual_seed(1)
    pred, tgt = torch.randn(2, 48, 3, 4, 4, generator=g), torch.randn(2, 48, 3, 4, 4, generator=g)
    w = 1 + torch.rand(2, 3, 4, 4, generator=g) * 3
    both = roi_mse(pred, tgt, w).mean()
    singles = (roi_mse(pred[:1], tgt[:1], w[:1]) + roi_mse(pred[1:], tgt[1:], w[1:])) / 2
    torch.testing.assert_close(both, singles.squeeze())
    # W == 1 is plain MSE; the weighting moves the loss toward the heavy region
    torch.testing.assert_close(roi_mse(pred, tgt, torch.ones_like(w)), ((pred - tgt) ** 2).flatten(1).mean(1))
    heavy = torch.ones_like(w)
    heavy[:, :, :2] = 7.0
    err = (pred - tgt) ** 2
    expected = (heavy[:, None] * err).flatten(1).mean(1) / (heavy.flatten(1).mean(1) + 1e-6)
    torch.testing.assert_close(roi_mse(pred, tgt, heavy), expected)


# ------------------------------------------------------------------------------------------------ optimiser
def test_param_groups_and_warmup():
    from talkverse.configs import model_config
    from talkverse.models.transformer_talkverse import TalkVerseTransformer3DModel

    model = TalkVerseTransformer3DModel(**model_config("s2v_tiny"))
    apply_strategy(model, "lora", 4, 4)
    groups = param_groups(model, 1e-5)
    by = {g["name"]: g for g in groups}
    assert set(by) == {"lora", "framepack", "base"}
    assert by["lora"]["lr"] == pytest.approx(1e-4) and by["framepack"]["lr"] == pytest.approx(1e-5)
    assert all(g["weight_decay"] == 0.01 for g in groups)
    assert sum(len(g["params"]) for g in groups) == sum(1 for p in model.parameters() if p.requires_grad)
    assert all(p.dtype == torch.float32 for g in groups for p in g["params"])
    opt = make_optimizer(groups)
    sched = make_lr_scheduler(opt, 4)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[2]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.0, 0.25e-5, 0.5e-5, 0.75e-5, 1e-5, 1e-5])


def test_str2bool_flags():
    from talkverse.cli.train import build_parser

    args = build_parser().parse_args(["--ckpt_dir", "x", "--enable_roi_loss", "false", "--enable_framepack",
                                      "False", "--gradient_checkpointing", "0"])
    assert args.enable_roi_loss is False and args.enable_framepack is False and args.gradient_checkpointing is False
    args = build_parser().parse_args(["--ckpt_dir", "x"])
    assert args.enable_roi_loss is True
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--ckpt_dir", "x", "--enable_roi_loss", "maybe"])
    help_text = build_parser().format_help()
    for flag in ("--ckpt_dir", "--output_path", "--batch_size", "--gradient_accumulation_steps", "--learning_rate",
                 "--unfreeze_strategy", "--enable_roi_loss", "--enable_framepack", "--distributed_policy",
                 "--metadata_csv", "--csv"):
        assert flag in help_text


def test_train_flags_are_the_config_defaults():
    """One set of defaults: every flag's default is TrainConfig's, and parsing no flags gives TrainConfig()."""
    from dataclasses import fields

    from talkverse.cli.train import build_parser
    from talkverse.training.config import TrainConfig

    args = vars(build_parser().parse_args(["--ckpt_dir", "x"]))
    assert TrainConfig(**args) == TrainConfig(ckpt_dir="x")
    assert set(args) == {f.name for f in fields(TrainConfig)}
    assert TrainConfig().max_steps == 10000 and TrainConfig().mixed_precision == "auto"
    assert TrainConfig().resolved("cpu").mixed_precision == "no" and TrainConfig().resolved("cuda").mixed_precision \
        == "bf16"
    parsed = TrainConfig(**vars(build_parser().parse_args(["--ckpt_dir", "x", "--unfreeze_strategy", "framepack",
                                                           "--metadata_csv", "a.csv", "b.csv"])))
    assert parsed.resolved("cpu").strategy == "new_modules" and parsed.csv == ["a.csv", "b.csv"]


# ------------------------------------------------------------------------------------------ real training runs
@pytest.fixture(scope="module")
def run_env(tmp_path_factory):
    """A toy dataset in the real format (2 clips of 100 frames at 128x128 + 2 broken rows), the tiny VAE/wav2vec2
    saved as folders, TI2V-layout bases for the tiny and small configs, and a latent cache from scripts/precache.py
    (8 main + 73 motion frames per window)."""
    from ckpt_builders import random_model, write_original_base
    from talkverse.configs import model_config
    from talkverse.models.transformer_talkverse import TalkVerseTransformer3DModel
    from talkverse.testing.tiny import tiny_pipeline
    from toy_data import write_toy_dataset

    root = tmp_path_factory.mktemp("train")
    csv = write_toy_dataset(root / "data", num_clips=2, size=(128, 128), frames=100, seed=0, text_dim=40, corrupt=2)
    pipe = tiny_pipeline()
    pipe.vae.save_pretrained(root / "vae")
    pipe.audio_encoder.save_pretrained(root / "w2v")
    pipe.feature_extractor.save_pretrained(root / "w2v")
    write_original_base(random_model(0), root / "base_tiny", shards=2)
    torch.manual_seed(0)
    write_original_base(TalkVerseTransformer3DModel(**model_config("s2v_small")), root / "base_small", shards=2)
    precache = load_script("precache")
    precache.main(["--csv", str(csv), "--data_root", str(root / "data"), "--text_cache",
                   str(root / "data" / "text_embeddings"), "--vae", str(root / "vae"), "--wav2vec_dir",
                   str(root / "w2v"), "--out", str(root / "latents"), "--bucket", "128x128", "--num_frames", "8",
                   "--dtype", "fp32"])
    one = root / "latents_one" / "videos"
    one.mkdir(parents=True)
    first = sorted((root / "latents" / "videos").glob("*.safetensors"))[0]
    (one / first.name).write_bytes(first.read_bytes())
    return {"root": root, "csv": csv, "pipe": pipe}


def _train_args(env, out, *extra, config="tiny", cache="latents"):
    root = env["root"]
    return ["--ckpt_dir", str(root / f"base_{config}"), "--model_config", f"s2v_{config}", "--latent_cache",
            str(root / cache), "--text_cache", str(root / "data" / "text_embeddings"), "--output_path", str(out),
            "--warmup_steps", "0", "--learning_rate", "1e-3", "--gradient_accumulation_steps", "1",
            "--lora_rank", "4", "--lora_alpha", "4", "--export_dtype", "fp32", "--device", "cpu", "--log_interval",
            "1", *extra]


def _run_cli(args, nproc=1, env_extra=None, timeout=600):
    cmd = [sys.executable, str(REPO / "train_s2v_5b.py")] if nproc == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
         str(REPO / "train_s2v_5b.py")]
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=env)


def _rel(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    num = sum(float((a[k].double() - b[k].double()).norm() ** 2) for k in a) ** 0.5
    den = sum(float(b[k].double().norm() ** 2) for k in b) ** 0.5
    return num / den


@pytest.mark.slow
def test_overfit_one_clip(run_env):
    """The small config (dim 256) overfits one clip: the validation loss at fixed timesteps/noise falls > 5x in 300
    optimizer steps (measured 1.62 -> 0.23, 7.1x, when written)."""
    from talkverse.cli.train import build_parser
    from talkverse.loaders.transformer import load_transformer
    from talkverse.training.config import TrainConfig
    from talkverse.training.data import build_batch_source
    from talkverse.training.setup import apply_strategy
    from talkverse.training.trainer import Trainer

    root = run_env["root"]
    args = build_parser().parse_args(_train_args(run_env, root / "overfit", config="small", cache="latents_one"))
    model = load_transformer(root / "base_small", None, config="s2v_small")
    apply_strategy(model, "full")
    cfg = TrainConfig(output_path=str(root / "overfit"), strategy="full", learning_rate=1e-3, warmup_steps=0,
                      gradient_accumulation_steps=1, max_steps=300, log_interval=50, save_steps=0,
                      gradient_checkpointing=False)
    source, null = build_batch_source(TrainConfig(**vars(args)), model.config, torch.device("cpu"), 0, 1)
    trainer = Trainer(model, cfg, source, null, torch.device("cpu"))
    batch = source.collate([source.dataset[0]])
    before = trainer.eval_loss(batch)
    trainer.train()
    after = trainer.eval_loss(batch)
    print(f"overfit: validation loss {before:.4f} -> {after:.4f} ({before / after:.2f}x)")
    assert before / after > 5.0, (before, after)
    logged = [json.loads(line)["loss"] for line in (root / "overfit" / "train_log.jsonl").read_text().splitlines()]
    assert logged[-1] < logged[0]


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["ddp", "fsdp"])
def test_distributed_equals_single_process(run_env, policy):
    """torchrun with 2 gloo ranks x batch 1 == one process x batch 2 on the same global batches, after 3 steps with
    gradient accumulation 2 (LoRA strategy)."""
    root = run_env["root"]
    common = ["--max_steps", "3", "--save_steps", "3", "--gradient_accumulation_steps", "2", "--resume", "none"]
    single = _run_cli(_train_args(run_env, root / f"single_{policy}", "--batch_size", "2", *common))
    assert single.returncode == 0, single.stderr[-3000:]
    multi = _run_cli(_train_args(run_env, root / f"multi_{policy}", "--batch_size", "1", "--distributed_policy",
                                 policy, *common), nproc=2)
    assert multi.returncode == 0, multi.stderr[-3000:]
    a = load_file(root / f"multi_{policy}" / "step-3.safetensors")
    b = load_file(root / f"single_{policy}" / "step-3.safetensors")
    base = load_file(root / "latents_one" / "videos" / sorted(os.listdir(root / "latents_one" / "videos"))[0])
    assert base  # the fixture is intact
    rel = _rel(a, b)
    print(f"{policy}: relative difference after 3 steps {rel:.3e}")
    assert rel <= 1e-5, rel
    # and training moved the weights (a run that does nothing would pass the equality trivially)
    init = _run_cli(_train_args(run_env, root / f"init_{policy}", "--batch_size", "2", "--max_steps", "1",
                                "--save_steps", "1", "--learning_rate", "0", "--resume", "none"))
    assert init.returncode == 0, init.stderr[-2000:]
    assert _rel(load_file(root / f"init_{policy}" / "step-1.safetensors"), b) > 1e-3


@pytest.mark.slow
def test_resume_after_kill_during_checkpoint_write(run_env):
    """A run killed while writing its step-4 state resumes from the valid step-2 state and ends equal to an
    uninterrupted 4-step run."""
    root = run_env["root"]
    common = ["--max_steps", "4", "--save_steps", "2", "--batch_size", "1", "--gradient_accumulation_steps", "2"]
    straight = _run_cli(_train_args(run_env, root / "straight", *common, "--resume", "none"))
    assert straight.returncode == 0, straight.stderr[-3000:]
    killed = _run_cli(_train_args(run_env, root / "killed", *common, "--resume", "auto"),
                      env_extra={"TALKVERSE_FAULT_INJECT": "kill_during_save:4"})
    assert killed.returncode == 137, (killed.returncode, killed.stderr[-2000:])
    states = root / "killed" / "checkpoints"
    assert (states / "latest").read_text().strip() == "step-00000002"
    assert list(states.glob(".tmp-step-00000004-*"))  # the interrupted write, never renamed
    resumed = _run_cli(_train_args(run_env, root / "killed", *common, "--resume", "auto"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stderr and "step 2" in resumed.stderr
    a = load_file(root / "killed" / "step-4.safetensors")
    b = load_file(root / "straight" / "step-4.safetensors")
    rel = _rel(a, b)
    print(f"resume: relative difference at step 4 {rel:.3e}")
    assert rel <= 1e-6
    logs = [json.loads(x) for x in (root / "killed" / "train_log.jsonl").read_text().splitlines()]
    ref = [json.loads(x) for x in (root / "straight" / "train_log.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in logs if r["step"] in (3, 4)][-2:] == [r["loss"] for r in ref if r["step"] in (3, 4)]


@pytest.mark.slow
def test_export_loads_in_the_inference_pipeline(run_env):
    """step-N.safetensors is a TalkVerse file: the inference loader reads it against the TI2V base, the S2V/time/head
    tensors arrive unchanged, and the pipeline's frames differ from the untrained model's."""
    import numpy as np

    from talkverse.loaders.transformer import load_transformer
    from talkverse.pipelines.pipeline_talkverse import TalkVersePipeline

    root = run_env["root"]
    out = root / "export_run"
    res = _run_cli(_train_args(run_env, out, "--max_steps", "3", "--save_steps", "3", "--resume", "none"))
    assert res.returncode == 0, res.stderr[-3000:]
    export = out / "step-3.safetensors"
    sd = load_file(export)
    assert any(k.endswith("lora_A.weight") for k in sd) and "head.head.weight" in sd
    assert not any(k.startswith("model.") for k in sd)
    trained = load_transformer(root / "base_tiny", export, config="s2v_tiny")
    untrained = load_transformer(root / "base_tiny", None, config="s2v_tiny")
    from talkverse.convert.wan_keys import original_to_diffusers

    ours = trained.state_dict()
    for k, v in sd.items():
        if ".lora_" not in k:
            torch.testing.assert_close(ours[original_to_diffusers(k)], v.float(), rtol=0, atol=0)
    pipe = run_env["pipe"]
    wave = (0.3 * np.sin(2 * np.pi * 200 * np.arange(2000) / 16000)).astype(np.float32)
    frames = {}
    for name, model in (("trained", trained), ("untrained", untrained)):
        p = TalkVersePipeline(transformer=model, vae=pipe.vae, scheduler=pipe.scheduler,
                              text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer,
                              audio_encoder=pipe.audio_encoder, feature_extractor=pipe.feature_extractor)
        p.set_progress_bar_config(disable=True)
        img = (np.random.default_rng(0).random((128, 128, 3)) * 255).astype(np.uint8)
        frames[name] = p(img, wave, height=128, width=128, frames_per_clip=8, num_inference_steps=2,
                         generator=torch.Generator().manual_seed(0), progress=False).frames
    assert np.abs(frames["trained"] - frames["untrained"]).mean() * 255 > 0.5


@pytest.mark.slow
def test_online_data_skips_broken_rows(run_env):
    """Training straight from the mp4/CSV/npz data (VAE + wav2vec2 online): the missing and the corrupt row are
    skipped with a warning and training finishes."""
    root = run_env["root"]
    out = root / "online"
    args = ["--ckpt_dir", root / "base_tiny", "--model_config", "s2v_tiny", "--csv", run_env["csv"], "--data_root",
            root / "data", "--text_cache", root / "data" / "text_embeddings", "--vae", root / "vae", "--wav2vec_dir",
            root / "w2v", "--size_bucket", "128x128", "--num_frames", "8", "--output_path", out, "--max_steps", "4",
            "--save_steps", "4", "--batch_size", "1", "--gradient_accumulation_steps", "1", "--lora_rank", "4",
            "--warmup_steps", "0", "--device", "cpu", "--resume", "none", "--log_interval", "1"]
    res = _run_cli(args)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "skipping clip" in res.stderr, res.stderr[-3000:]
    assert (out / "step-4.safetensors").is_file()
    assert len((out / "train_log.jsonl").read_text().splitlines()) == 4
    # captions through umT5 on the fly instead of the cache (a Diffusers text_encoder/ folder + tokenizer)
    pipe = run_env["pipe"]
    pipe.text_encoder.save_pretrained(root / "t5")
    pipe.tokenizer.save_pretrained(root / "tok")
    i = args.index("--text_cache")
    args2 = args[:i] + args[i + 2:] + ["--text_encoder", root / "t5", "--tokenizer", root / "tok"]
    args2[args2.index("--output_path") + 1] = root / "online_t5"
    args2[args2.index("--max_steps") + 1] = "1"
    args2[args2.index("--save_steps") + 1] = "1"
    res = _run_cli(args2)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (root / "online_t5" / "step-1.safetensors").is_file()


@pytest.mark.slow
def test_fine_tune_the_demo_then_generate_with_the_result(tmp_path):
    """The user's loop on the shipped demo model: precache one clip (scripts/precache.py --ckpt_dir <demo>: its VAE,
    wav2vec2 and umT5), train 3 LoRA steps from the demo folder with neither --model_config nor --text_cache (both come
    from the folder and the cache), then generate with --lora_ckpt on top of the saved pipeline: the frames differ
    from the untrained demo's."""
    import av
    import numpy as np

    from talkverse.demo import demo_model_dir
    from talkverse.testing.synthetic import write_synthetic_dataset

    demo = str(demo_model_dir())
    write_synthetic_dataset(tmp_path / "data", 1, size=128, seconds=(2.0, 2.0), seed=5, text_dim=40)
    pre = subprocess.run([sys.executable, str(REPO / "scripts" / "precache.py"), "--csv",
                          str(tmp_path / "data" / "metadata.csv"), "--data_root", str(tmp_path / "data"),
                          "--ckpt_dir", demo, "--bucket", "128x128", "--num_frames", "24", "--out",
                          str(tmp_path / "cache"), "--device", "cpu"], capture_output=True, text=True, timeout=300)
    assert pre.returncode == 0, pre.stderr[-3000:]
    assert (tmp_path / "cache" / "null.safetensors").is_file()
    train = _run_cli(["--ckpt_dir", demo, "--latent_cache", tmp_path / "cache", "--output_path", tmp_path / "run",
                      "--max_steps", "3", "--save_steps", "3", "--learning_rate", "1e-4", "--warmup_steps", "0",
                      "--device", "cpu"])
    assert train.returncode == 0, train.stderr[-3000:]
    trained = tmp_path / "run" / "step-3.safetensors"
    assert trained.is_file()

    def generate(name, *extra):
        out = tmp_path / f"{name}.mp4"
        proc = subprocess.run([sys.executable, str(REPO / "generate.py"), "--ckpt_dir", demo, "--audio",
                               str(tmp_path / "data" / "videos" / "clip_00000.mp4"), "--num_clip", "1", "-q",
                               "--save_file", str(out), *extra], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "model: the tiny demo model" in proc.stderr  # its settings (128x128, 24 frames, 20 steps), not 720p
        with av.open(str(out)) as c:
            return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(np.int16)

    base, tuned = generate("untrained"), generate("tuned", "--lora_ckpt", str(trained))
    assert base.shape == tuned.shape and base.shape[1:] == (128, 128, 3)
    diff = float(np.abs(base - tuned).mean())
    print(f"\nfine-tuned demo vs untrained: mean |diff| {diff:.2f} levels over {base.shape[0]} frames")
    assert diff > 1.0
