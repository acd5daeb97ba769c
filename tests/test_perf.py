"""Performance work (issue 8): the FLOP model, the block's parity with diffusers', and every switchable optimisation
checked on the CPU against its absence (stated tolerances; the GPU-only effects are measured by benchmarks/)."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest
import torch
from PIL import Image

from talkverse.configs import model_config
from talkverse.models.transformer_talkverse import TalkVerseTransformer3DModel, TalkVerseTransformerBlock
from talkverse.perf import optimize as O
from talkverse.perf.flops import DiTShape, dit_forward_flops, dit_shape_from_config


# ----------------------------------------------------------------------------------------------------- FLOP model
@pytest.mark.parametrize("f, h, w, motion, tokens, total_tf", [
    (30, 44, 80, True, 28_580, 566.2),  # continuation clip 704x1280
    (30, 44, 80, False, 27_280, 527.9),  # first clip
    (30, 28, 56, True, 12_726, 178.1),  # 448x896
])
def test_flops_reproduce_the_spec_table(f, h, w, motion, tokens, total_tf):
    shape = dit_shape_from_config(model_config("s2v_5b"), f, h, w, motion)
    assert shape.num_tokens == tokens and shape.num_noisy == f * (h // 2) * (w // 2)
    fl = dit_forward_flops(shape)
    assert fl["total"] / 1e12 == pytest.approx(total_tf, abs=0.1)
    assert dit_forward_flops(shape, batch=2)["total"] == pytest.approx(2 * fl["total"])


def test_flops_terms_at_28580_tokens():
    fl = {k: v / 1e12 for k, v in dit_forward_flops(DiTShape(num_tokens=28_580, num_noisy=26_400)).items()}
    assert fl["self_attn"] == pytest.approx(301.1, abs=0.05)
    assert fl["cross_attn"] == pytest.approx(5.4, abs=0.05)
    assert fl["total"] - fl["self_attn"] - fl["cross_attn"] == pytest.approx(259.7, abs=0.05)


# ----------------------------------------------------------------------------- block vs diffusers' WanTransformerBlock
def test_block_equals_diffusers_block_forward_and_backward():
    """With both modulation rows equal our two-segment block is diffusers' block: bit-identical outputs and
    gradients (the in-place segment updates are autograd-safe)."""
    from diffusers.models.transformers.transformer_wan import WanTransformerBlock

    torch.manual_seed(0)
    dim, heads, ffn, n, split = 32, 2, 64, 40, 25
    ours = TalkVerseTransformerBlock(dim, ffn, heads, "rms_norm_across_heads", True, 1e-6)
    ref = WanTransformerBlock(dim, ffn, heads, "rms_norm_across_heads", True, 1e-6)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, n, dim)
    ctx = torch.randn(2, 7, dim)
    temb = torch.randn(2, 6, dim)
    rope = (torch.randn(1, n, 1, dim // heads), torch.randn(1, n, 1, dim // heads))
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ta, tb = temb.clone().requires_grad_(), temb.clone().requires_grad_()
    ya = ours(xa, ctx, ta[:, None].expand(2, 2, 6, dim), rope, split)
    yb = ref(xb, ctx, tb, rope)
    assert torch.equal(ya, yb)
    g = torch.randn_like(ya)
    (ya * g).sum().backward()
    (yb * g).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ta.grad, tb.grad, rtol=1e-5, atol=1e-6)
    for (na, pa), (_, pb) in zip(ours.named_parameters(), ref.named_parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, rtol=1e-5, atol=1e-6, msg=na)


# ---------------------------------------------------------------------------------------------- the tiny DiT
def _tiny_model(seed: int = 0) -> TalkVerseTransformer3DModel:
    torch.manual_seed(seed)
    m = TalkVerseTransformer3DModel(**model_config("s2v_tiny")).eval()
    with torch.no_grad():  # non-zero everywhere (the spec init leaves the head at zero)
        for p in m.parameters():
            p.copy_(torch.randn_like(p) / (p[0].numel() if p.ndim > 1 else p.numel()) ** 0.5)
    return m


def _inputs(f=3, h=8, w=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    return dict(hidden_states=torch.randn(1, 48, f, h, w, generator=g), timestep=torch.tensor([700.0]),
                encoder_hidden_states=torch.randn(1, 5, 40, generator=g),
                ref_latents=torch.randn(1, 48, 1, h, w, generator=g),
                audio_features=torch.randn(1, 25, 36, 4 * f, generator=g),
                motion_latents=torch.randn(1, 48, 19, h, w, generator=g))


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


@pytest.fixture(scope="module")
def eager_out():
    with torch.no_grad():
        return _tiny_model()(**_inputs()).sample


def test_rope_tables_fp32_cached_once_per_geometry():
    from talkverse.models.rope import rope_tables, token_positions

    m = _tiny_model()
    a = m.rotary_emb(3, 8, 8, True, torch.device("cpu"))
    b = m.rotary_emb(3, 8, 8, True, torch.device("cpu"))
    assert a[0] is b[0] and a[1] is b[1] and len(m._rope_cache) == 1  # a cache hit
    assert a[0].dtype == torch.float32 and a[0].shape == (1, sum(m.token_counts(3, 8, 8, True)), 1, 16)
    with torch.no_grad():
        m(**_inputs())
        m(**_inputs(seed=2))
    assert len(m._rope_cache) == 1 and m._rope_cache[(3, 8, 8, True, "cpu")][0] is a[0]  # forwards reuse it
    m.rotary_emb(3, 8, 8, False, torch.device("cpu"))
    assert len(m._rope_cache) == 2  # a new geometry builds a new table
    # fp32 storage vs float64: below fp32 rounding of values in [-1, 1]
    pos = token_positions(30, 44, 80, True)
    c32, s32 = rope_tables(pos, 128, dtype=torch.float32)
    c64, s64 = rope_tables(pos, 128, dtype=torch.float64)
    assert (c32.double() - c64).abs().max() < 1e-7 and (s32.double() - s64).abs().max() < 1e-7


_SYNC = re.compile(r"\.item\(\)|\.tolist\(\)|\.cpu\(\)|\.numpy\(\)|torch\.cuda\.synchronize|\.nonzero\(")


def test_forward_path_has_no_host_syncs():
    """Statically: no .item()/.tolist()/.cpu()/.numpy()/nonzero in the forward path; dynamically: dynamo captures
    the whole forward in one graph (a data-dependent branch or a host sync would be a graph break)."""
    from talkverse.models import audio_encoder, audio_injector, frame_packer

    m = TalkVerseTransformer3DModel
    fns = [m.forward, m._run_block, m.embed_tokens, m.embed_time, m.embed_text, m.encode_audio,
           TalkVerseTransformerBlock.forward, TalkVerseTransformerBlock._modulate, TalkVerseTransformerBlock._gate,
           audio_injector.AudioInjector.forward, audio_injector.AudioCrossAttention.forward,
           frame_packer.FramePackMotioner.forward, audio_encoder.CausalAudioEncoder.forward,
           audio_encoder.CausalAudioConvStack.forward]
    for fn in fns:
        src = inspect.getsource(fn)
        assert not _SYNC.search(src), (fn.__qualname__, _SYNC.search(src).group())
    model = _tiny_model()
    with torch.no_grad():
        model(**_inputs())  # build the RoPE table (numpy, once per geometry) outside the traced call
        explained = torch._dynamo.explain(model)(**_inputs())
    assert explained.graph_break_count == 0, explained.break_reasons
    assert explained.graph_count == 1


def test_compiled_repeated_blocks_match_eager(eager_out):
    """compile_repeated_blocks(fullgraph=True) on our ``_repeated_blocks``; the aot_eager backend keeps the CPU test
    fast (dynamo capture + AOT autograd tracing; inductor codegen is measured by bench_transformer --compile)."""
    torch._dynamo.reset()
    m = _tiny_model()
    m.compile_repeated_blocks(fullgraph=True, dynamic=False, backend="aot_eager")
    with torch.no_grad():
        out = m(**_inputs()).sample
    assert all(type(b).__name__ == "TalkVerseTransformerBlock" and b._compiled_call_impl is not None for b in m.blocks)
    assert _rel(out, eager_out) < 1e-6
    torch._dynamo.reset()


def test_bf16_weights_keep_fp32_islands(eager_out):
    m = O.cast_dit(_tiny_model(), torch.bfloat16)
    assert m.blocks[0].attn1.to_q.weight.dtype == torch.bfloat16
    assert m.blocks[0].scale_shift_table.dtype == torch.float32 and m.proj_out.weight.dtype == torch.float32
    assert m.condition_embedder.time_embedder.linear_1.weight.dtype == torch.float32
    with torch.no_grad():
        out = m(**_inputs()).sample
    assert out.dtype == torch.float32 and _rel(out, eager_out) < 0.02  # measured 6.4e-3


def test_fp8_layerwise_casting(eager_out):
    m = _tiny_model()
    O.enable_fp8(m)
    assert m.blocks[0].attn1.to_q.weight.dtype == torch.float8_e4m3fn
    assert m.blocks[0].ffn.net[2].weight.dtype == torch.float8_e4m3fn
    for keep in (m.patch_embedding.weight, m.proj_out.weight, m.blocks[0].norm2.weight,
                 m.casual_audio_encoder.encoder.conv3.conv.weight, m.frame_packer.proj.weight,
                 m.condition_embedder.time_proj.weight):
        assert keep.dtype == torch.float32
    with torch.no_grad():
        out = m(**_inputs()).sample
    assert _rel(out, eager_out) < 0.05  # measured 2.3e-2 (e4m3 has a 3-bit mantissa)


def test_group_offload_block_level_api(eager_out):
    """On the CPU (onload = offload device) only the hook path runs: the output must be identical."""
    from talkverse.pipelines.pipeline_talkverse import TalkVersePipeline

    m = _tiny_model()
    O.enable_group_offload(m, "cpu")
    assert O.onload_device(m) == torch.device("cpu")
    hooked = [n for n, mod in m.named_modules() if getattr(mod, "_diffusers_hook", None) is not None
              and mod._diffusers_hook.get_hook("group_offloading") is not None]
    assert "blocks.0" in hooked and "audio_injector.injector.0" in hooked and "casual_audio_encoder" in hooked
    with torch.no_grad():
        assert torch.equal(m(**_inputs()).sample, eager_out)
        local, _ = m.encode_audio(_inputs()["audio_features"])  # outside the forward too
    assert local.shape[:3] == (1, 3, 5)
    pipe = TalkVersePipeline(transformer=m, vae=None, scheduler=None)
    assert pipe.exec_device == torch.device("cpu")


def test_attention_backends_on_cpu(eager_out):
    avail = O.available_attention_backends("cpu")
    assert "sdpa" in avail and "math" in avail
    assert O.best_attention_backend("cpu") == "sdpa"
    for name in [n for n in avail if n != "sdpa"]:
        m = _tiny_model()
        assert O.set_attention_backend(m, name) == name
        with torch.no_grad():
            out = m(**_inputs()).sample
        assert _rel(out, eager_out) < 1e-5, name
    with pytest.raises(ValueError, match="attention backend"):
        O.set_attention_backend(_tiny_model(), "nope")


def test_profiles():
    low = O.resolve_profile("low_vram")
    assert low.fp8 and low.group_offload and low.t5_cpu and low.offload_encoders and low.dtype == "bf16"
    assert O.resolve_profile(None) == O.PerfOptions()
    assert O.resolve_profile("default", fp8=True, compile=False).fp8
    with pytest.raises(ValueError, match="profile"):
        O.resolve_profile("turbo")


# ------------------------------------------------------------------------------------------- the pipeline
def _image(size=128):
    return Image.fromarray((np.random.default_rng(0).random((size, size, 3)) * 255).astype(np.uint8))


def _wave(seconds):
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def _kw(size, seed):
    return dict(height=size, width=size, frames_per_clip=8, generator=torch.Generator().manual_seed(seed),
                progress=False)


def test_encoders_run_once_per_video(tmp_path):
    """2 clips x 3 steps with CFG: umT5 runs once (prompt + negative prompt together), wav2vec2 once, the DiT's
    audio encoder once per clip (both CFG branches in one call), the DiT once per step (batched CFG)."""
    from talkverse.testing.tiny import tiny_pipeline

    pipe = tiny_pipeline()
    calls = {"t5": 0, "w2v": 0, "audio_tokens": 0, "dit": 0}

    def count(key):
        def hook(*_):
            calls[key] += 1
        return hook

    pipe.text_encoder.register_forward_hook(count("t5"))
    pipe.audio_encoder.encoder.layers[0].register_forward_hook(count("w2v"))
    pipe.transformer.casual_audio_encoder.register_forward_hook(count("audio_tokens"))
    pipe.transformer.register_forward_hook(count("dit"))
    pipe(_image(), _wave(0.3), num_inference_steps=3, **_kw(128, 0))
    assert pipe.num_clips == 2
    assert calls == {"t5": 1, "w2v": 1, "audio_tokens": 2, "dit": 2 * 3}


def test_low_vram_profile_runs_the_pipeline_close_to_default(tmp_path):
    """The 24 GB profile's code path (bf16 + fp8 storage + block-level group offloading + encoder offload) on the
    CPU, one clip: the decoded frames stay close to the fp32 default's."""
    from talkverse.testing.tiny import tiny_pipeline

    wave = _wave(0.12)
    ref = tiny_pipeline()(_image(64), wave, num_inference_steps=2, **_kw(64, 3)).frames * 255
    pipe = tiny_pipeline().enable_optimizations("low_vram", device="cpu")
    assert pipe.t5_cpu and pipe.offload_encoders and pipe.perf_options.group_offload
    assert pipe.transformer.blocks[0].attn1.to_q.weight.dtype == torch.float8_e4m3fn
    low = pipe(_image(64), wave, num_inference_steps=2, **_kw(64, 3)).frames * 255
    assert low.shape == ref.shape
    assert np.abs(low - ref).mean() < 4.0  # uint8 levels; measured in benchmarks/RESULTS.md


def test_cli_loader_applies_profile_and_flags(tmp_path):
    """generate.py's loader path (load_pipeline_from_args: --profile sets the loader flags it needs) on a saved tiny
    pipeline."""
    from argparse import Namespace

    from talkverse.cli.args import load_pipeline_from_args
    from talkverse.testing.tiny import tiny_pipeline

    tiny_pipeline().save_pretrained(str(tmp_path / "p"))
    args = Namespace(ckpt_dir=str(tmp_path / "p"), profile="low_vram", convert_model_dtype=False, t5_cpu=False,
                     offload_model=False, attention_backend=None, compile=False, fp8=False, group_offload=False)
    pipe = load_pipeline_from_args(args, torch.device("cpu"))
    tr = pipe.transformer
    assert pipe.t5_cpu and pipe.offload_encoders and pipe.perf_options.group_offload
    assert tr.blocks[0].attn1.to_q.weight.dtype == torch.float8_e4m3fn
    assert tr.proj_out.weight.dtype == torch.float32  # fp32 island kept through the bf16 cast
    assert tr.blocks[0]._diffusers_hook.get_hook("group_offloading") is not None
    plain = load_pipeline_from_args(Namespace(ckpt_dir=str(tmp_path / "p"), fp8=True), torch.device("cpu"))
    assert plain.transformer.blocks[0].attn1.to_q.weight.dtype == torch.float8_e4m3fn
    assert not plain.perf_options.group_offload and not plain.t5_cpu
