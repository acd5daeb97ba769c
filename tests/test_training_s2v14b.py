"""LoRA training with Wan2.2-S2V-14B (tiny config): the pose branch trains with the S2V modules, steps lower the loss,
and the export loads back on top of the official-layout folder with the LoRA merged (docs/s2v14b.md, "Train")."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from ckpt_builders import original_state
from talkverse.loaders.transformer import load_transformer
from talkverse.testing.tiny import tiny_transformer
from talkverse.training.checkpoint import export_meta, export_talkverse
from talkverse.training.objective import noisy_latents, roi_mse
from talkverse.training.setup import apply_strategy


def _batch(model, g):
    c = model.config
    f, h, w = 2, 8, 8
    return dict(x0=torch.randn(1, c.in_channels, f, h, w, generator=g),
                ref=torch.randn(1, c.in_channels, 1, h, w, generator=g),
                motion=torch.randn(1, c.in_channels, c.motion_latents, h, w, generator=g),
                pose=torch.randn(1, c.cond_dim, f, h, w, generator=g),
                context=torch.randn(1, 5, c.text_dim, generator=g),
                audio=torch.randn(1, c.audio_num_layers, c.audio_dim, 4 * f, generator=g))


def _loss(model, b, g):
    eps = torch.randn(b["x0"].shape, generator=g)
    sigma = torch.tensor([0.6])
    xt, target = noisy_latents(b["x0"], eps, sigma)
    pred = model(hidden_states=xt, timestep=sigma * 1000, encoder_hidden_states=b["context"], ref_latents=b["ref"],
                 audio_features=b["audio"], motion_latents=b["motion"], cond_states=b["pose"]).sample
    return roi_mse(pred, target)


def test_lora_training_step_and_export_reload(tmp_path):
    base = tiny_transformer(0, "s2v_14b_tiny")
    # the official layout: the whole model (S2V modules included) in a shard with its index
    root = tmp_path / "Wan2.2-S2V-14B"
    root.mkdir()
    sd = original_state(base)
    save_file(sd, root / "diffusion_pytorch_model-00001-of-00001.safetensors")
    (root / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {k: "diffusion_pytorch_model-00001-of-00001.safetensors" for k in sd}}))

    model = load_transformer(root, config="s2v_14b_tiny")
    apply_strategy(model, "lora", lora_rank=4, lora_alpha=4.0)
    model.train()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(".lora_A." in n for n in trainable) and "cond_encoder.weight" in trainable
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    g = torch.Generator().manual_seed(0)
    batch = _batch(model, g)
    losses = []
    for _ in range(6):
        loss = _loss(model, batch, torch.Generator().manual_seed(1))
        opt.zero_grad()
        loss.backward()
        assert model.cond_encoder.weight.grad.abs().sum() > 0
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    out = export_talkverse(model, tmp_path / "step-6.safetensors", export_meta("lora", 6, 4, 4.0),
                           dtype=torch.float32)
    model.eval()
    merged = load_transformer(root, out, config="s2v_14b_tiny")
    with torch.no_grad():
        g2 = torch.Generator().manual_seed(1)
        a = _loss(model, batch, g2)
        b = _loss(merged, batch, torch.Generator().manual_seed(1))
    assert b.item() == pytest.approx(a.item(), rel=1e-4)
