"""LoRA checkpoint parity (``lora/``): the merged state dict and the merged model's forward."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import load_file

from ..convert.wan_keys import diffusers_to_original
from ..loaders.transformer import load_transformer
from .common import CaseResult, register
from .dit import TOL, case_inputs

MERGE_TOL = 1e-6  # max abs on merged weights (the bf16-rounded delta is reproduced bit-exactly)


def _fixture_config(fixtures: Path) -> dict:
    args = json.loads((fixtures / "dit_tiny" / "config.json").read_text())["constructor_args"]
    from ..configs import model_config

    cfg = model_config("s2v_tiny")
    cfg.update(num_attention_heads=args["num_heads"], attention_head_dim=args["dim"] // args["num_heads"],
               text_dim=args["text_dim"], text_len=args["text_len"], ffn_dim=args["ffn_dim"],
               num_layers=args["num_layers"], audio_dim=args["audio_dim"],
               audio_inject_layers=list(args["audio_inject_layers"]))
    return cfg


@register("lora", "lora", "talkverse_tiny_lora.safetensors")
def run(fixtures: Path, folder: Path) -> Iterator[CaseResult]:
    ckpt = folder / "talkverse_tiny_lora.safetensors"
    manifest = json.loads((folder / "manifest.json").read_text()) if (folder / "manifest.json").exists() else {}
    cfg = _fixture_config(fixtures)
    forward = load_file(folder / "case_lora_forward.safetensors") if (folder / "case_lora_forward.safetensors").exists() \
        else {}
    for alpha in manifest.get("alphas", [8]):
        res = CaseResult(f"lora/alpha{alpha:g}")
        try:
            model = load_transformer(folder / "base", ckpt, config=cfg, lora_alpha=alpha)
            ours = {diffusers_to_original(k): v for k, v in model.state_dict().items()}
            exp_file = folder / ("merged_expected.safetensors" if alpha == manifest.get("alphas", [8])[0]
                                 else f"merged_expected_alpha{alpha:g}_lora_targets.safetensors")
            if exp_file.exists():
                expected = load_file(exp_file)
                res.details.append((f"{exp_file.name} keys", 0.0 if set(expected) <= set(ours) else float("inf"), 0))
                for k, v in expected.items():
                    res.check_abs(f"merged.{k}", ours.get(k, torch.full_like(v, float("nan"))), v, MERGE_TOL)
            key = f"out.x_alpha{alpha:g}"
            if key in forward:
                inputs, _ = case_inputs(fixtures / "dit_tiny", "b_later_clip")
                captured = {}
                # "mid.block.0.out" is block 0 before its audio injection (the block calls its injector itself)
                j0 = model.audio_injector.block_to_injector.get(0)
                h = model.blocks[0].register_forward_hook(lambda m, a, o: captured.__setitem__("block0", o)) \
                    if j0 is None else model.audio_injector.register_forward_pre_hook(
                        lambda m, a: captured.__setitem__("block0", a[1]) if a[0] == j0 else None)
                with torch.no_grad():
                    out = model(**inputs).sample[0]
                    e, _ = model.embed_time(inputs["timestep"])
                h.remove()
                res.check(key, out, forward[key], TOL)
                if "mid.time.e" in forward and alpha == manifest.get("alphas", [8])[0]:
                    res.check("mid.time.e", e[0], forward["mid.time.e"], TOL)
                    res.check("mid.block.0.out", captured["block0"], forward["mid.block.0.out"], TOL)
        except Exception as exc:
            res.error = f"{type(exc).__name__}: {exc}"
        yield res
