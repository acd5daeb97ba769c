"""Tiny-DiT parity (``dit_tiny/``): output and every stored intermediate of the reference forward."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import load_file

from ..convert.wan_keys import original_to_diffusers
from ..models.rope import rope_tables, token_positions
from ..models.transformer_talkverse import TalkVerseTransformer3DModel
from .common import MODELS, CaseResult, register

TOL = 1e-4  # relative, fp32
ZERO_TOL = 1e-6  # max abs, where the expected tensor is all zeros


def model_from_fixture(folder: Path) -> TalkVerseTransformer3DModel:
    """The tiny model of ``dit_tiny/config.json`` with ``weights.safetensors`` (reference names), fp32, eval."""
    cfg = json.loads((folder / "config.json").read_text())
    args, fixed = cfg["constructor_args"], cfg["hard_coded_in_reference"]
    # The 5B lists cond_dim among its unused arguments (no cond_encoder); the 14B's pose branch uses it.
    cond_dim = None if "cond_dim" in fixed.get("unused_args", []) else args.get("cond_dim")
    model = TalkVerseTransformer3DModel(
        patch_size=tuple(args["patch_size"]), num_attention_heads=args["num_heads"],
        attention_head_dim=args["dim"] // args["num_heads"], in_channels=args["in_dim"], out_channels=args["out_dim"],
        text_dim=args["text_dim"], text_len=args["text_len"], freq_dim=args["freq_dim"], ffn_dim=args["ffn_dim"],
        num_layers=args["num_layers"], eps=args["eps"], audio_dim=args["audio_dim"],
        audio_tokens_per_frame=args["num_audio_token"], audio_inject_layers=tuple(args["audio_inject_layers"]),
        ref_rope_t=fixed["ref_rope_temporal_index"], cond_dim=cond_dim,
    )
    weights = load_file(folder / "weights.safetensors")
    model.load_state_dict({original_to_diffusers(k): v for k, v in weights.items()}, strict=True)
    return model.eval()


def case_inputs(folder: Path, name: str) -> tuple[dict, dict]:
    """(inputs, expected) of a case; inputs a case does not store are taken from case b (README)."""
    data = load_file(folder / f"case_{name}.safetensors")
    base = load_file(folder / "case_b_later_clip.safetensors") if name != "b_later_clip" else data
    get = lambda k: data[k] if k in data else base[k]  # noqa: E731
    drop = bool(get("in.drop_motion_frames").item())
    inputs = dict(
        hidden_states=get("in.x")[None], timestep=get("in.t").to(torch.float32),
        encoder_hidden_states=get("in.context")[None], ref_latents=get("in.ref_latents")[None],
        audio_features=get("in.audio"), motion_latents=None if drop else get("in.motion_latents")[None],
    )
    if "in.cond_states" in data or "in.cond_states" in base:  # S2V-14B: the pose latents (zeros without a pose)
        inputs["cond_states"] = get("in.cond_states")[None]
    return inputs, data


class _Recorder:
    """Forward hooks that record the intermediates the fixtures store, under the fixtures' names."""

    def __init__(self, model: TalkVerseTransformer3DModel):
        self.model, self.seen, self.handles = model, {}, []
        self._inject_calls: list[int] = []
        ce = model.condition_embedder
        self._hook(model.casual_audio_encoder.encoder, pre=lambda a: {"audio.mixed": a[0]})
        self._hook(model.casual_audio_encoder, post=lambda o: {"audio.local_full": o[0], "audio.global_full": o[1]})
        self._hook(ce.text_embedder, post=lambda o: {"text.context_emb": o})
        self._hook(ce.time_embedder, pre=lambda a: {"time.sinusoid": a[0][0]}, post=lambda o: {"time.e": o[0]})
        self._hook(ce.time_proj, post=lambda o: {"time.e0": o[0].unflatten(-1, (6, -1))})
        self._hook(model.frame_packer, post=lambda o: {"framepack.tokens": o})
        # patch_embedding runs on the noisy latents, then on the reference: record both, flattened (f, h, w).
        self._patch_calls = 0
        self._hook(model.patch_embedding, post=self._post_patch)
        if model.cond_encoder is not None:
            self._hook(model.cond_encoder, post=lambda o: {"embed.cond": o.flatten(2).transpose(1, 2)})
        self._hook(model.blocks[0], pre=lambda a: {"tokens": a[0]})
        inj = model.audio_injector
        # A block calls its injector at the end of its forward: "block.i.out" is then the injector's input, and the
        # block's output is "block.i.post" (the same tensor as "block.i.out" for a block without an injector).
        for i, block in enumerate(model.blocks):
            self._hook(block, post=lambda o, i=i: {f"block.{i}.post": o} if i in inj.block_to_injector else
                       {f"block.{i}.out": o, f"block.{i}.post": o})
        self._hook(inj, pre=self._pre_inject, post=self._post_inject, with_args=True)
        for j in range(len(inj.injector)):  # the 5B fixtures store injector 0, the 14B ones every injector
            self._hook(inj.injector_adain_layers[j], post=lambda o, j=j: {f"inject.{j}.adain_out": o})
            self._hook(inj.injector[j], post=lambda o, j=j: {f"inject.{j}.attn_out": o})
        self._hook(model.proj_out, post=lambda o: {"head.out": o})

    def _post_patch(self, out):
        self._patch_calls += 1
        return {("embed.noisy" if self._patch_calls == 1 else "embed.ref"): out.flatten(2).transpose(1, 2)}

    def _pre_inject(self, args):
        block = {j: b for b, j in self.model.audio_injector.block_to_injector.items()}[args[0]]
        return {f"block.{block}.out": args[1]}

    def _post_inject(self, args, out):
        block = {j: b for b, j in self.model.audio_injector.block_to_injector.items()}[args[0]]
        return {f"block.{block}.post": out}

    def _hook(self, module, pre=None, post=None, with_args=False):
        if pre is not None:
            self.handles.append(module.register_forward_pre_hook(lambda m, a: self.seen.update(pre(a))))
        if post is not None:
            fn = (lambda m, a, o: self.seen.update(post(a, o))) if with_args else \
                (lambda m, a, o: self.seen.update(post(o)))
            self.handles.append(module.register_forward_hook(fn))

    def close(self):
        for h in self.handles:
            h.remove()


def run_case(model: TalkVerseTransformer3DModel, folder: Path, name: str) -> tuple[CaseResult, torch.Tensor]:
    res = CaseResult(f"dit/{name}")
    inputs, data = case_inputs(folder, name)
    rec = _Recorder(model)
    try:
        with torch.no_grad():
            out = model(**inputs).sample[0]
            local, glob = model.encode_audio(inputs["audio_features"])
            b, c, f, h, w = inputs["hidden_states"].shape
            motion = inputs["motion_latents"] is not None
            if not motion:  # the reference still packs 19 zero latents before removing them
                rec.seen["framepack.tokens"] = model.frame_packer(torch.zeros(1, c, model.config.motion_latents, h, w))
    finally:
        rec.close()
    seen = dict(rec.seen, **{"audio.local": local, "audio.global": glob})
    res.check("out.x", out, data["out.x"], TOL)
    for key, expected in data.items():
        if not key.startswith("mid.") or key.startswith(("mid.rope", "mid.token_mask", "mid.original_seq_len")):
            continue
        name_ = key[4:]
        if name_ not in seen:
            res.details.append((key + " (not produced)", float("inf"), TOL))
            continue
        ours = seen[name_].reshape(expected.shape) if seen[name_].numel() == expected.numel() else seen[name_]
        if expected.abs().max() == 0:
            res.check_abs(key, ours, expected, ZERO_TOL)
        else:
            res.check(key, ours, expected, TOL)
    # Token layout, RoPE positions (exact) and float64 tables (1e-12).
    pos = token_positions(f, h, w, motion, model.config.ref_rope_t, tuple(model.config.framepack_buckets))
    if "mid.rope.pos" in data:
        res.check_exact("mid.rope.pos", torch.from_numpy(pos), data["mid.rope.pos"])
    if "mid.rope.freqs" in data:
        cos, sin = rope_tables(pos, model.config.attention_head_dim, model.config.rope_theta, dtype=torch.float64)
        ours = torch.stack([cos[0, :, 0, 0::2], sin[0, :, 0, 0::2]], dim=-1)
        res.check_abs("mid.rope.freqs", ours, data["mid.rope.freqs"], 1e-12)
    if "mid.token_mask" in data:
        res.check_exact("mid.token_mask", model.token_roles(f, h, w, motion), data["mid.token_mask"])
    if "mid.original_seq_len" in data:
        n = model.token_counts(f, h, w, motion)[0]
        res.check_exact("mid.original_seq_len", torch.tensor([n]), data["mid.original_seq_len"])
    return res, out


@register("dit", "dit_tiny", "weights.safetensors", models=MODELS)
def run(fixtures: Path, folder: Path) -> Iterator[CaseResult]:
    model = model_from_fixture(folder)
    outs = {}
    for f in sorted(folder.glob("case_*.safetensors")):
        name = f.stem[len("case_"):]
        try:
            res, outs[name] = run_case(model, folder, name)
        except Exception as e:  # report, don't abort the other cases
            res = CaseResult(f"dit/{name}", error=f"{type(e).__name__}: {e}")
        if name == "e_null_branch" and "b_later_clip" in outs and name in outs:
            data = load_file(f)
            for key in data:
                if key.startswith("out.cfg_combined_g"):
                    g = float(key[len("out.cfg_combined_g"):].replace("p", "."))
                    e_, b_ = outs[name], outs["b_later_clip"]
                    res.check(key, e_ + g * (b_ - e_), data[key], TOL)
        yield res
