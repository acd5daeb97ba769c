#!/usr/bin/env python
"""DiT speed: forward and forward+backward (LoRA, as in training) of the S2V-5B transformer with random bf16 weights.

CUDA (the real model, configs/s2v_5b.yaml): first clip (27,280 tokens) and continuation clip (28,580 tokens) at
704x1280, batch 1 (2 = batched CFG with --batch 2). Reports ms (median, min-max), achieved TFLOP/s from the analytic
FLOP model (talkverse/perf/flops.py), MFU against a bf16 GEMM loop measured in the same run and against the 989 TF/s
datasheet peak, peak memory. One row per attention backend (--attention_backend, comma list; default: every usable one).

CPU (automatic, or --tiny): a reduced model (benchmarks/common.py CPU_DIT, 404/320 tokens) in fp32, plus the block
comparison: our TalkVerseTransformerBlock against diffusers' WanTransformerBlock with the same weights at the same
shape, timed interleaved, ratio ours/diffusers (acceptance: <= 1.1).

    python benchmarks/bench_transformer.py --table benchmarks/results_transformer.md
    python benchmarks/bench_transformer.py --attention_backend cudnn,flash --mode fwd --compile
"""

from __future__ import annotations

import torch

import common  # noqa: F401  (repo on sys.path)
from talkverse.configs import model_config
from talkverse.perf.flops import dit_forward_flops, dit_shape_from_config
from talkverse.perf.optimize import ATTENTION_BACKENDS, available_attention_backends, enable_fp8, set_attention_backend
from talkverse.perf.timing import (
    Reporter,
    environment,
    gemm_peak_tflops,
    interleaved,
    peak_memory_gb,
    reset_peak,
    stats,
    time_once,
)

DATASHEET_BF16 = 989e12


def parse():
    p = common.base_parser(__doc__)
    p.add_argument("--mode", default="both", choices=["fwd", "fwdbwd", "both"])
    p.add_argument("--clips", default="both", choices=["first", "later", "both"],
                   help="first clip (no motion tokens), later clip (motion tokens), or both")
    p.add_argument("--batch", type=int, default=1, help="2 = the batched CFG forward")
    p.add_argument("--attention_backend", default=None,
                   help=f"comma list of {', '.join(ATTENTION_BACKENDS)} (default: all usable on the device)")
    p.add_argument("--compile", action="store_true", help="also time compile_repeated_blocks (inductor)")
    p.add_argument("--fp8", action="store_true", help="also time fp8 layerwise weight casting (forward)")
    p.add_argument("--lora_rank", type=int, default=128)
    p.add_argument("--no_ac", action="store_true", help="forward+backward without activation checkpointing")
    p.add_argument("--block_compare", default="auto", choices=["auto", "on", "off"],
                   help="ours vs diffusers' WanTransformerBlock (auto: on the CPU)")
    p.add_argument("--block_shape", default="256,1024,1024",
                   help="dim,ffn,tokens of the block comparison (CPU default 256,1024,1024)")
    return p.parse_args()


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def block_compare(rep: Reporter, dev: torch.device, args) -> None:
    """Our block vs diffusers' on the same weights and shape (both modulation rows equal: identical outputs)."""
    from diffusers.models.transformers.transformer_wan import WanTransformerBlock

    from talkverse.models.transformer_talkverse import TalkVerseTransformerBlock

    dim, ffn, n = (int(v) for v in args.block_shape.split(","))
    heads = max(1, dim // 64)
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    torch.manual_seed(0)
    ours = TalkVerseTransformerBlock(dim, ffn, heads, "rms_norm_across_heads", True, 1e-6).to(dev).eval()
    ref = WanTransformerBlock(dim, ffn, heads, "rms_norm_across_heads", True, 1e-6).to(dev).eval()
    ref.load_state_dict(ours.state_dict())
    for b in (ours, ref):  # bf16 weights with fp32 norms/table, as in the model
        for name, p in b.named_parameters():
            if "norm" not in name and "scale_shift_table" not in name:
                p.data = p.data.to(dtype)
    x = torch.randn(1, n, dim, device=dev, dtype=dtype)
    ctx = torch.randn(1, 64, dim, device=dev, dtype=dtype)
    temb = 0.1 * torch.randn(1, 6, dim, device=dev)
    rope = (torch.randn(1, n, 1, dim // heads, device=dev), torch.randn(1, n, 1, dim // heads, device=dev))
    split = n - n // 8  # 7/8 noisy tokens, like 26,400 of 28,580
    temb2 = temb[:, None].expand(1, 2, 6, dim)
    with torch.no_grad():
        same = torch.equal(ours(x, ctx, temb2, rope, split), ref(x, ctx, temb, rope))
        ms = interleaved({"ours": lambda: ours(x, ctx, temb2, rope, split), "diffusers": lambda: ref(x, ctx, temb, rope)},
                         dev, warmup=args.warmup + 1, iters=max(args.iters, 5) * 4)
    a, b = stats(ms["ours"]), stats(ms["diffusers"])
    pairs = sorted(x / y for x, y in zip(ms["ours"], ms["diffusers"]))
    # ratio: median over interleaved pairs (each pair ran back to back under the same load); also the ratio of the
    # medians and of the minimums (the least-disturbed runs).
    rep.emit(case="block_vs_diffusers", device=str(dev), dtype=str(dtype).replace("torch.", ""), tokens=n, dim=dim,
             ffn=ffn, ms_ours=a["ms"], ms_diffusers=b["ms"], ratio=pairs[len(pairs) // 2],
             ratio_of_medians=a["ms"] / b["ms"], ratio_of_mins=a["ms_min"] / b["ms_min"],
             ratio_pair_min=pairs[0], ratio_pair_max=pairs[-1], identical_output=same, n=a["n"])


def main() -> None:
    args = parse()
    dev = common.setup(args)
    rep = Reporter("bench_transformer", args.table)
    print("# env " + " ".join(f"{k}={v}" for k, v in environment(dev).items()), flush=True)
    cfg = dict(common.CPU_DIT) if args.tiny else model_config("s2v_5b")
    clip = common.CPU_CLIP if args.tiny else common.GPU_CLIP
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    peak = gemm_peak_tflops(dev) * 1e12
    rep.emit(case="gemm_peak", device=str(dev), tflops=peak / 1e12)
    if args.block_compare == "on" or (args.block_compare == "auto" and dev.type != "cuda"):
        block_compare(rep, dev, args)

    model = common.random_dit(cfg, dev, dtype)
    backends = args.attention_backend.split(",") if args.attention_backend else \
        (available_attention_backends(dev) if dev.type == "cuda" else ["sdpa"])
    backends = [b for b in backends if b != "math" or args.attention_backend]  # math only when asked for
    clips = {"first": [False], "later": [True], "both": [False, True]}[args.clips]
    modes = {"fwd": ["fwd"], "fwdbwd": ["fwdbwd"], "both": ["fwd", "fwdbwd"]}[args.mode]

    def row(case, motion, mode, backend, ms_list, extra=None):
        shape = dit_shape_from_config(cfg, clip["f"], clip["h"], clip["w"], motion)
        fl = dit_forward_flops(shape, args.batch)["total"] * (3 if mode == "fwdbwd" else 1)
        st = stats(ms_list)
        r = dict(case=case, mode=mode, clip="later" if motion else "first", tokens=shape.num_tokens,
                 batch=args.batch, backend=backend, **st, tflops=fl / (st["ms"] / 1e3) / 1e12,
                 mfu_measured=fl / (st["ms"] / 1e3) / peak, peak_mem_gb=peak_memory_gb(dev), **(extra or {}))
        if dev.type == "cuda":
            r["mfu_datasheet"] = fl / (st["ms"] / 1e3) / DATASHEET_BF16
        rep.emit(**r)

    for motion in clips:
        inputs = common.dit_inputs(cfg, args.batch, clip["f"], clip["h"], clip["w"], motion, dev, dtype)
        for backend in backends:
            set_attention_backend(model, backend, dev)
            if "fwd" in modes:
                reset_peak(dev)
                with torch.no_grad():
                    ms = interleaved({"f": lambda: model(**inputs)}, dev, args.warmup, args.iters)["f"]
                row("dit", motion, "fwd", backend, ms)
        set_attention_backend(model, backends[0], dev)
        if (args.fp8 or args.compile) and "fwd" in modes:
            # Each variant against its absence, timed interleaved with the plain model (same backend, same inputs).
            variants = {"dit": lambda: model(**inputs)}
            extra = {}
            if args.fp8:
                m8 = common.random_dit(cfg, dev, dtype)
                set_attention_backend(m8, backends[0], dev)
                enable_fp8(m8)
                variants["dit_fp8"] = lambda: m8(**inputs)
                with torch.no_grad():
                    ref = model(**inputs).sample
                    extra["dit_fp8"] = {"rel_diff_vs_dit": rel_diff(m8(**inputs).sample, ref)}
            if args.compile:
                torch._dynamo.reset()
                mc = common.random_dit(cfg, dev, dtype)
                set_attention_backend(mc, backends[0], dev)
                mc.compile_repeated_blocks(fullgraph=True, dynamic=False)
                with torch.no_grad():
                    compile_ms = time_once(lambda: mc(**inputs), dev)
                    mc.load_state_dict(model.state_dict())  # same weights: the difference is the compiler's
                    extra["dit_compiled"] = {"first_call_ms": compile_ms,
                                             "rel_diff_vs_dit": rel_diff(mc(**inputs).sample, model(**inputs).sample)}
                variants["dit_compiled"] = lambda: mc(**inputs)
            reset_peak(dev)  # peak of all variants together
            with torch.no_grad():
                ms = interleaved(variants, dev, args.warmup, args.iters)
            base = stats(ms["dit"])["ms"]
            for name in variants:
                if name != "dit":
                    row(name, motion, "fwd", backends[0], ms[name],
                        {**extra[name], "ms_dit_interleaved": stats(ms["dit"])["ms"],
                         "speedup_vs_dit": base / stats(ms[name])["ms"]})
            m8 = mc = None
        if "fwdbwd" in modes:
            from talkverse.training.setup import apply_strategy

            mt = common.random_dit(cfg, dev, dtype)
            set_attention_backend(mt, backends[0], dev)
            apply_strategy(mt, "lora", args.lora_rank, float(args.lora_rank))
            mt.train()
            if not args.no_ac:
                mt.enable_gradient_checkpointing()

            def step():  # as the trainer: fp32 trainables (LoRA, S2V modules, time/head) under bf16 autocast
                mt.zero_grad(set_to_none=True)
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
                    loss = mt(**inputs).sample.float().square().mean()
                loss.backward()

            reset_peak(dev)
            ms = interleaved({"s": step}, dev, args.warmup, args.iters)["s"]
            trainable = sum(p.numel() for p in mt.parameters() if p.requires_grad)
            row("dit_lora", motion, "fwdbwd", backends[0], ms,
                {"lora_rank": args.lora_rank, "trainable": trainable, "activation_checkpointing": not args.no_ac})
            del mt
    rep.write_table()


if __name__ == "__main__":
    main()
