"""Training: strategies, objective, optimiser groups, checkpoints, and real runs (single process, DDP, FSDP2, resume)
on a tiny dataset written in the real format (mp4 with audio, CSV, DWPose npz, text embeddings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import REPO
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
    from talkverse.models import TalkVerseTransformer3DModel

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
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_cli", REPO / "train_s2v_5b.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    args = mod.build_parser().parse_args(["--ckpt_dir", "x", "--enable_roi_loss", "false", "--enable_framepack",
                                          "False", "--gradient_checkpointing", "0"])
    assert args.enable_roi_loss is False and args.enable_framepack is False and args.gradient_checkpointing is False
    args = mod.build_parser().parse_args(["--ckpt_dir", "x"])
    assert args.enable_roi_loss is True
    with pytest.raises(SystemExit):
        mod.build_parser().parse_args(["--ckpt_dir", "x", "--enable_roi_loss", "maybe"])
    help_text = mod.build_parser().format_help()
    for flag in ("--ckpt_dir", "--output_path", "--batch_size", "--gradient_accumulation_steps", "--learning_rate",
                 "--unfreeze_strategy", "--enable_roi_loss", "--enable_framepack", "--distributed_policy"):
        assert flag in help_text
