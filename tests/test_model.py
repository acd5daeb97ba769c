"""TalkVerseTransformer3DModel behaviour on CPU: geometry, RoPE positions, audio encoder, batching, autograd,
validation, host syncs, gradient checkpointing, save/load and dtypes.

Uses the tiny preset (random init) and the full preset on the meta device only. Independent of ../shared.
Expected values come from ../shared/docs/architecture.md (§4.1, §4.2, §4.3, §6), written out by hand here.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

from talkverse.configs import model_config
from talkverse.models.rope import rope_tables, token_positions
from talkverse.models.transformer_talkverse import TalkVerseTransformer3DModel

TINY = model_config("s2v_tiny")
D_TINY = TINY["num_attention_heads"] * TINY["attention_head_dim"]  # 32


def tiny_model(seed: int = 0) -> TalkVerseTransformer3DModel:
    torch.manual_seed(seed)
    return TalkVerseTransformer3DModel(**TINY).eval()


def full_meta_model() -> TalkVerseTransformer3DModel:
    with torch.device("meta"):
        return TalkVerseTransformer3DModel(**model_config("s2v_5b"))


def make_inputs(b: int = 2, f: int = 2, h: int = 8, w: int = 12, motion: bool = True, seed: int = 1) -> dict:
    """Inputs of the tiny model: latent grid h x w (non-square, so h/w mix-ups show), F = 4 f audio columns."""
    g = torch.Generator().manual_seed(seed)
    c, audio_dim, text_dim = TINY["in_channels"], TINY["audio_dim"], TINY["text_dim"]
    return dict(
        hidden_states=torch.randn(b, c, f, h, w, generator=g),
        timestep=torch.rand(b, generator=g) * 999.0,
        encoder_hidden_states=torch.randn(b, 10, text_dim, generator=g),
        ref_latents=torch.randn(b, c, 1, h, w, generator=g),
        audio_features=torch.randn(b, 25, audio_dim, 4 * f, generator=g),
        motion_latents=torch.randn(b, c, 19, h, w, generator=g) if motion else None,
    )


def select(inputs: dict, i: int) -> dict:
    return {k: (v[i : i + 1] if v is not None else None) for k, v in inputs.items()}


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


# ---------------------------------------------------------------------------------------------- token geometry (§4.2)
@pytest.mark.parametrize("f_lat, with_motion, total", [(30, True, 28_580), (30, False, 27_280),
                                                       (20, True, 19_780), (20, False, 18_480)])
def test_token_counts_full_config(f_lat, with_motion, total):
    model = full_meta_model()
    noisy, ref, motion = model.token_counts(f_lat, 44, 80, with_motion)  # 704 x 1280 -> latent 44 x 80
    assert noisy == f_lat * 880 and ref == 880
    assert motion == (880 + 220 + 200 if with_motion else 0)
    assert noisy + ref + motion == total
    roles = model.token_roles(f_lat, 44, 80, with_motion)
    assert roles.tolist() == [0] * noisy + [1] * ref + [2] * motion


# ---------------------------------------------------------------------------------------------- RoPE positions (§4.3)
def _grid(ts, hs, ws):
    return [(t, h, w) for t in ts for h in hs for w in ws]


def _spec_positions(f_lat: int, with_motion: bool) -> list[tuple[int, int, int]]:
    """§4.3 table for 704 x 1280 (patch grid 22 x 40), written out by hand."""
    h_full, w_full = range(22), range(40)
    rows = _grid(range(f_lat), h_full, w_full) + _grid([40], h_full, w_full)
    if with_motion:
        h2 = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 21]
        w2 = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 39]
        h4 = [0, 5, 10, 15, 21]
        w4 = [0, 4, 8, 13, 17, 21, 26, 30, 34, 39]
        rows += _grid([-1], h_full, w_full) + _grid([-3], h2, w2) + _grid([-19, -14, -9, -4], h4, w4)
    return rows


@pytest.mark.parametrize("with_motion", [True, False])
def test_rope_positions_match_spec_table(with_motion):
    pos = token_positions(30, 44, 80, with_motion, ref_t=40, buckets=(1, 2, 16))
    expected = _spec_positions(30, with_motion)
    assert pos.shape == (len(expected), 3)
    assert len(expected) == (28_580 if with_motion else 27_280)
    assert [tuple(int(v) for v in row) for row in pos] == expected


def _decode_first_pair(cos: torch.Tensor, sin: torch.Tensor, channel: int, search: int = 64) -> torch.Tensor:
    """Integer position from the k = 0 pair of an axis (theta = 1, so angle = position, known modulo 2 pi)."""
    angle = torch.atan2(sin[:, channel].double(), cos[:, channel].double())  # [L]
    cand = torch.arange(-search, search + 1, dtype=torch.float64)
    dist = torch.remainder(angle[:, None] - cand[None, :] + math.pi, 2 * math.pi) - math.pi  # wrapped difference
    dist = dist.abs()
    best = dist.argmin(dim=1)
    best_dist = dist.gather(1, best[:, None]).squeeze(1)
    assert best_dist.max() < 1e-5  # an exact integer angle
    second = dist.scatter(1, best[:, None], float("inf")).min(dim=1).values
    assert second.min() > 1e-2  # and an unambiguous one over [-64, 64]
    return cand[best].long()


def test_rope_positions_decode_from_tables():
    head_dim = 128
    pos = token_positions(30, 44, 80, True, ref_t=40, buckets=(1, 2, 16))
    cos, sin = rope_tables(pos, head_dim, 10000.0)
    assert cos.shape == sin.shape == (1, 28_580, 1, head_dim)
    assert cos.dtype == sin.dtype == torch.float32
    cos, sin = cos[0, :, 0], sin[0, :, 0]
    # Interleaved pairs: channels 2k and 2k+1 share one angle.
    assert torch.equal(cos[:, 0::2], cos[:, 1::2]) and torch.equal(sin[:, 0::2], sin[:, 1::2])

    # Real widths t 44 | h 42 | w 42: the first pair of each axis starts at channel 0, 44, 86.
    decoded = torch.stack([_decode_first_pair(cos, sin, c) for c in (0, 44, 86)], dim=1)
    assert decoded.tolist() == [list(p) for p in _spec_positions(30, True)]

    # Every pair follows its axis' own ladder: theta_t,k = 1e4^(-2k/44) (k < 22), theta_h,k = theta_w,k = 1e4^(-2k/42).
    p = decoded.double()
    ladders = [(p[:, 0], 44), (p[:, 1], 42), (p[:, 2], 42)]
    ang = torch.cat([q[:, None] * 10000.0 ** (-torch.arange(0, n, 2, dtype=torch.float64) / n) for q, n in ladders], 1)
    assert ang.shape[1] == 64
    torch.testing.assert_close(cos[:, 0::2].double(), torch.cos(ang), atol=1e-6, rtol=0)
    torch.testing.assert_close(sin[:, 0::2].double(), torch.sin(ang), atol=1e-6, rtol=0)


def test_model_rotary_emb_uses_spec_positions():
    model = tiny_model()
    cos, sin = model.rotary_emb(2, 8, 12, True, torch.device("cpu"))
    n = sum(model.token_counts(2, 8, 12, True))
    assert cos.shape == (1, n, 1, TINY["attention_head_dim"])
    pos = token_positions(2, 8, 12, True, ref_t=40, buckets=(1, 2, 16))
    ref_cos, ref_sin = rope_tables(pos, TINY["attention_head_dim"])
    assert torch.equal(cos, ref_cos) and torch.equal(sin, ref_sin)
    # Patch grid 4 x 6 = 24 tokens per frame: noisy t 0, 1 | reference t = 40 | motion 1x t = -1, 2x -3, 4x -19..-4.
    assert pos[:, 0].tolist() == [0] * 24 + [1] * 24 + [40] * 24 + [-1] * 24 + [-3] * 6 + [-19, -14, -9, -4]


# ---------------------------------------------------------------------------------------------- audio encoder (§4.1)
def test_audio_encoder_output_lengths():
    model = tiny_model()
    feats = torch.randn(2, 25, TINY["audio_dim"], 12)  # F = 12 -> 3 latent frames
    with torch.no_grad():
        local, glob = model.encode_audio(feats)
        raw_local, raw_glob = model.casual_audio_encoder(torch.randn(2, 25, TINY["audio_dim"], 73 + 12))
    assert local.shape == (2, 3, 5, D_TINY) and glob.shape == (2, 3, 1, D_TINY)
    assert local.dtype == glob.dtype == torch.float32
    assert raw_local.shape[1] == raw_glob.shape[1] == math.ceil((73 + 12) / 4) == 19 + 3


def test_audio_receptive_field():
    """Changing clip-local audio frame k moves exactly the latent frames i with 4i-5 <= k <= 4i+3."""
    model = tiny_model()
    f = 16
    g = torch.Generator().manual_seed(3)
    base = torch.randn(1, 25, TINY["audio_dim"], f, generator=g)
    with torch.no_grad():
        local0, glob0 = model.encode_audio(base)
        for k in range(f):
            pert = base.clone()
            pert[..., k] += 3.0 * torch.randn(25, TINY["audio_dim"], generator=g)
            local, glob = model.encode_audio(pert)
            for i in range(f // 4):
                diff = max((local[:, i] - local0[:, i]).abs().max().item(), (glob[:, i] - glob0[:, i]).abs().max().item())
                if 4 * i - 5 <= k <= 4 * i + 3:
                    assert diff > 1e-3, f"frame {k} should move latent {i}"
                else:
                    assert diff == 0.0, f"frame {k} moved latent {i} (diff {diff})"


def test_audio_padding_token_slot():
    model = tiny_model()
    with torch.no_grad():
        model.casual_audio_encoder.encoder.padding_tokens.normal_()
        local, _ = model.encode_audio(torch.randn(2, 25, TINY["audio_dim"], 8))
    pad = model.casual_audio_encoder.encoder.padding_tokens.reshape(D_TINY)
    assert torch.equal(local[:, :, 4], pad.expand(2, 2, D_TINY))
    assert not torch.equal(local[:, :, 3], pad.expand(2, 2, D_TINY))


def test_audio_layer_mix_is_silu_normalised_not_softmax():
    enc = tiny_model().casual_audio_encoder
    feats = torch.randn(2, 25, TINY["audio_dim"], 8, dtype=torch.float64)

    # Default init 0.01 everywhere: equal weights, i.e. the plain mean over the 25 states (never 0/0).
    torch.testing.assert_close(enc.mix_layers(feats).double(), feats.mean(dim=1).transpose(1, 2), atol=1e-6, rtol=0)

    with torch.no_grad():
        enc.weights.copy_(torch.linspace(0.1, 3.0, 25).reshape(1, 25, 1, 1))
    w = enc.weights.detach().reshape(25).double()
    silu = w * torch.sigmoid(w)
    expected = torch.einsum("l,blct->btc", silu / silu.sum(), feats)
    softmax = torch.einsum("l,blct->btc", torch.softmax(w, 0), feats)
    got = enc.mix_layers(feats).double()
    assert got.shape == (2, 8, TINY["audio_dim"])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    assert (got - softmax).abs().max() > 1e-2


# ---------------------------------------------------------------------------------------------- forward
def test_forward_shape_and_dtype():
    model = tiny_model()
    inputs = make_inputs()
    with torch.no_grad():
        out = model(**inputs).sample
        (tup,) = model(**inputs, return_dict=False)
    assert out.shape == inputs["hidden_states"].shape and out.dtype == torch.float32
    assert torch.isfinite(out).all() and torch.equal(out, tup)


@pytest.mark.parametrize("motion", [True, False], ids=["motion", "no_motion"])
def test_batch_of_two_equals_single_runs(motion):
    model = tiny_model()
    inputs = make_inputs(b=2, motion=motion)
    with torch.no_grad():
        both = model(**inputs).sample
        singles = torch.cat([model(**select(inputs, i)).sample for i in range(2)])
    assert rel_err(both, singles) <= 1e-5


def test_motion_none_differs_from_zero_motion():
    """Removing the motion tokens is not the same as feeding zero motion latents (§3)."""
    model = tiny_model()
    inputs = make_inputs(b=1, motion=False)
    with torch.no_grad():
        removed = model(**inputs).sample
        zeros = model(**{**inputs, "motion_latents": torch.zeros(1, 48, 19, 8, 12)}).sample
    assert (removed - zeros).abs().max() > 1e-4


def _loss_and_grads(model: TalkVerseTransformer3DModel, inputs: dict) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    out = model(**inputs).sample
    (out.square().mean()).backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def test_backward_reaches_s2v_modules():
    model = tiny_model().train()
    grads = _loss_and_grads(model, make_inputs())
    for name in ("casual_audio_encoder.weights", "frame_packer.proj_4x.weight", "trainable_cond_mask.weight"):
        assert name in grads, f"no gradient for {name}"
        assert torch.isfinite(grads[name]).all() and grads[name].abs().max() > 0, name
    assert all(torch.isfinite(g).all() for g in grads.values())


def test_gradient_checkpointing_same_grads():
    model = tiny_model().train()
    inputs = make_inputs()
    reference = _loss_and_grads(model, inputs)

    ckpt = copy.deepcopy(model)
    ckpt.enable_gradient_checkpointing()
    assert ckpt.gradient_checkpointing
    calls = []
    inner = ckpt._gradient_checkpointing_func

    def counting(*args, **kwargs):
        calls.append(1)
        return inner(*args, **kwargs)

    ckpt._gradient_checkpointing_func = counting
    grads = _loss_and_grads(ckpt, inputs)
    assert len(calls) == TINY["num_layers"]  # every block (with its injector) ran checkpointed
    assert grads.keys() == reference.keys()
    for name, g in grads.items():
        ref = reference[name]
        assert (g - ref).abs().max() <= 1e-5 * max(1.0, ref.abs().max().item()), name


# ---------------------------------------------------------------------------------------------- validation (§3, §8.26)
def test_audio_length_must_match_latent_frames():
    model = tiny_model()
    inputs = make_inputs(b=1, f=2)
    with torch.no_grad():
        for cols in (7, 9, 4):
            bad = {**inputs, "audio_features": torch.randn(1, 25, TINY["audio_dim"], cols)}
            with pytest.raises(ValueError, match="frame columns"):
                model(**bad)
        with pytest.raises(ValueError):
            model(**{**inputs, "audio_features": None})


def test_too_many_latent_frames_rejected():
    model = tiny_model()
    with torch.no_grad():
        ok = make_inputs(b=1, f=40, h=8, w=8, motion=False)
        assert model(**ok).sample.shape[2] == 40  # F = 160 is the limit
        bad = make_inputs(b=1, f=41, h=8, w=8, motion=False)
        with pytest.raises(ValueError, match="40"):
            model(**bad)


# ---------------------------------------------------------------------------------------------- no host syncs (§4.6)
_SYNCING = ("item", "tolist", "__bool__", "__int__", "__float__", "__index__", "numpy")


def test_forward_makes_no_host_sync(monkeypatch):
    model = tiny_model()  # fresh: the RoPE cache is cold, so its construction is covered too
    inputs = make_inputs(b=2)

    def forbid(name):
        def raiser(self, *args, **kwargs):
            raise AssertionError(f"host sync inside forward: Tensor.{name}()")
        return raiser

    with torch.no_grad():
        with monkeypatch.context() as mp:
            for name in _SYNCING:
                mp.setattr(torch.Tensor, name, forbid(name))
            with pytest.raises(AssertionError, match="host sync"):
                torch.ones(()).item()  # the patch is live
            out_motion = model(**inputs).sample
            out_first = model(**{**inputs, "motion_latents": None}).sample
        assert torch.ones(()).item() == 1.0  # restored
    assert torch.isfinite(out_motion).all() and torch.isfinite(out_first).all()


# ---------------------------------------------------------------------------------------------- save / load / dtype (§6)
def test_save_load_round_trip_bit_exact(tmp_path):
    model = tiny_model()
    with torch.no_grad():
        model.casual_audio_encoder.encoder.padding_tokens.normal_()  # make every tensor non-trivial
    model.save_pretrained(tmp_path)
    loaded = TalkVerseTransformer3DModel.from_pretrained(tmp_path).eval()
    strip = lambda cfg: {k: v for k, v in dict(cfg).items() if k != "_name_or_path"}  # noqa: E731
    assert strip(loaded.config) == strip(model.config)
    sd0, sd1 = model.state_dict(), loaded.state_dict()
    assert list(sd0) == list(sd1)
    for k in sd0:
        assert sd1[k].dtype == sd0[k].dtype and torch.equal(sd0[k], sd1[k]), k
    inputs = make_inputs()
    with torch.no_grad():
        assert torch.equal(model(**inputs).sample, loaded(**inputs).sample)


FP32_ISLANDS = ("condition_embedder.time_embedder.", "condition_embedder.time_proj.", "proj_out.",
                "casual_audio_encoder.")


def test_bf16_load_keeps_fp32_islands(tmp_path):
    model = tiny_model()
    model.save_pretrained(tmp_path)
    loaded = TalkVerseTransformer3DModel.from_pretrained(tmp_path, torch_dtype=torch.bfloat16).eval()
    params = dict(loaded.named_parameters())
    islands = [n for n in params if n.startswith(FP32_ISLANDS) or n.split(".")[-1] == "scale_shift_table"]
    assert "scale_shift_table" in islands and "blocks.0.scale_shift_table" in islands
    assert len([n for n in islands if n.startswith("casual_audio_encoder.")]) == 12
    wrong = [(n, params[n].dtype) for n in islands if params[n].dtype != torch.float32]
    assert not wrong, f"fp32 islands cast to low precision: {wrong}"
    # The bulk is bf16.
    for name in ("patch_embedding.weight", "blocks.0.attn1.to_q.weight", "blocks.3.ffn.net.2.weight",
                 "audio_injector.injector.0.q.weight", "frame_packer.proj_4x.weight",
                 "condition_embedder.text_embedder.linear_1.weight"):
        assert params[name].dtype == torch.bfloat16, name

    inputs = make_inputs()
    with torch.no_grad():
        out16 = loaded(**inputs).sample
        out32 = model(**inputs).sample
    assert out16.dtype == torch.float32 and torch.isfinite(out16).all()
    assert ((out16 - out32).norm() / out32.norm()).item() < 3e-2
