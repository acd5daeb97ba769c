"""Switchable inference optimisations of the DiT and the 24 GB ``low_vram`` profile (performance.md §5).

Each option is independent and off unless asked for, so every one can be measured against its absence:

* ``dtype="bf16"``: DiT weights in bf16, the fp32 islands (``_keep_in_fp32_modules``) kept fp32.
* ``attention_backend``: diffusers' attention dispatcher (``model.set_attention_backend``). ``"auto"`` picks the
  fastest usable one: SDPA-cuDNN on Hopper (sm90+), then SDPA-flash, SDPA-efficient, SDPA (CPU: SDPA default).
* ``compile``: regional ``torch.compile`` of the repeated blocks (``compile_repeated_blocks``, ``fullgraph=True``).
* ``fp8``: diffusers layerwise casting, weights stored float8_e4m3fn and upcast per layer to the compute dtype
  (norms, embeddings, the audio encoder, FramePack and the head are skipped: ``_skip_layerwise_casting_patterns``).
* ``group_offload``: diffusers block-level group offloading (one block per group, CUDA streams when on CUDA); the
  weights live on the CPU and each block is copied to the device just before it runs.
* ``offload_encoders`` / ``t5_cpu``: wav2vec2 and umT5 leave the device after their single per-video pass.

Batched CFG (cond + uncond as one batch of 2) is the pipeline's default; ``cfg_batch=False`` in the call
(``--no_cfg_batch``) runs two passes.

Always on, not switchable: fp32 RoPE tables cached per geometry, no host syncs in the forward, audio features,
text embeddings (once per video) and audio tokens (once per clip) computed outside the sampling loop, streaming
VAE decode.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

# Our names -> diffusers AttentionBackendName values.
ATTENTION_BACKENDS = {
    "sdpa": "native",  # torch SDPA, PyTorch picks the kernel
    "cudnn": "_native_cudnn",  # SDPA restricted to SDPBackend.CUDNN_ATTENTION
    "flash": "_native_flash",  # SDPA restricted to SDPBackend.FLASH_ATTENTION
    "efficient": "_native_efficient",  # SDPA restricted to SDPBackend.EFFICIENT_ATTENTION
    "math": "_native_math",  # SDPA math (reference)
    "flash-attn": "flash",  # the flash-attn package (FA2)
    "fa3": "_flash_3",  # flash-attn 3 (Hopper)
    "sage": "sage",  # SageAttention (lossy: inference only, quality-gated)
}
_AUTO_ORDER_CUDA = ("cudnn", "flash", "efficient", "sdpa")


def _backend_works(name: str, device: torch.device) -> bool:
    """Whether ``name`` runs a tiny bf16 (CUDA) / fp32 (CPU) attention call on ``device``."""
    from diffusers.models.attention_dispatch import attention_backend, dispatch_attention_fn

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    q = torch.randn(1, 64, 2, 64, device=device, dtype=dtype)
    try:
        with attention_backend(ATTENTION_BACKENDS[name]):
            out = dispatch_attention_fn(q, q, q)
        return bool(out.shape == q.shape)
    except Exception:  # missing package, no kernel for this device/dtype
        return False


def available_attention_backends(device: torch.device | str) -> list[str]:
    device = torch.device(device)
    return [n for n in ATTENTION_BACKENDS if _backend_works(n, device)]


def best_attention_backend(device: torch.device | str) -> str:
    """SDPA-cuDNN first on sm90+ (performance.md §5.1), then flash, efficient, default SDPA; "sdpa" on the CPU."""
    device = torch.device(device)
    if device.type != "cuda":
        return "sdpa"
    order = _AUTO_ORDER_CUDA
    if torch.cuda.get_device_capability(device) < (9, 0):
        order = ("flash", "efficient", "cudnn", "sdpa")
    return next((n for n in order if _backend_works(n, device)), "sdpa")


def set_attention_backend(model: torch.nn.Module, name: str, device: torch.device | str | None = None) -> str:
    """Route every attention of ``model`` (WanAttention processors) through backend ``name`` ("auto" resolves it)."""
    if name == "auto":
        name = best_attention_backend(device or next(model.parameters()).device)
    if name not in ATTENTION_BACKENDS:
        raise ValueError(f"attention backend {name!r}: choose from auto, {', '.join(ATTENTION_BACKENDS)}")
    import logging

    lg = logging.getLogger("diffusers.models.modeling_utils")
    level = lg.level
    lg.setLevel(logging.ERROR)  # "Attention backends are an experimental feature" on every call
    try:
        model.set_attention_backend(ATTENTION_BACKENDS[name])
    finally:
        lg.setLevel(level)
    # The audio cross-attention calls dispatch_attention_fn without a backend (5 keys per frame): it keeps the
    # global default (SDPA), which is what performance.md §5.1 asks for.
    return name


def cast_dit(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """Cast the DiT's weights to ``dtype``, keeping the fp32 islands (``_keep_in_fp32_modules``) in fp32."""
    keep = tuple(getattr(model, "_keep_in_fp32_modules", None) or ())
    with torch.no_grad():
        for name, p in model.named_parameters():
            want = torch.float32 if any(k in name.split(".") for k in keep) else dtype
            if p.dtype != want:
                p.data = p.data.to(want)
    return model


def enable_fp8(model: torch.nn.Module, compute_dtype: torch.dtype | None = None) -> None:
    """Layerwise casting: float8_e4m3fn storage, per-layer upcast to ``compute_dtype`` (default: bf16 on CUDA,
    the model's dtype elsewhere)."""
    if compute_dtype is None:
        compute_dtype = model.patch_embedding.weight.dtype
    model.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=compute_dtype)


GROUP_OFFLOAD_BLOCK_MODULES = ["audio_injector", "casual_audio_encoder"]


def enable_group_offload(model: torch.nn.Module, onload_device: torch.device | str, use_stream: bool | None = None,
                         offload_device: torch.device | str = "cpu") -> None:
    """Block-level group offloading: ``blocks.i`` and the injectors are onloaded one at a time (prefetched on a
    side stream on CUDA); ``casual_audio_encoder`` is its own group, so ``encode_audio`` also works outside the
    forward."""
    onload_device = torch.device(onload_device)
    if use_stream is None:
        use_stream = onload_device.type == "cuda"
    model.to(offload_device)
    model.enable_group_offload(onload_device=onload_device, offload_device=torch.device(offload_device),
                               offload_type="block_level", num_blocks_per_group=1, use_stream=use_stream,
                               non_blocking=use_stream, record_stream=use_stream,
                               low_cpu_mem_usage=False, block_modules=GROUP_OFFLOAD_BLOCK_MODULES)
    model._talkverse_onload_device = onload_device


def onload_device(model: torch.nn.Module) -> torch.device:
    """Where the DiT computes: the group-offload onload device, else where its weights are."""
    dev = getattr(model, "_talkverse_onload_device", None)
    return dev if dev is not None else next(model.parameters()).device


@dataclass
class PerfOptions:
    """The switchable optimisations (see the module docstring). ``None`` leaves a setting as it is."""

    dtype: str | None = None  # "bf16" | "fp32"
    attention_backend: str | None = None  # "auto" | a key of ATTENTION_BACKENDS
    compile: bool = False
    fp8: bool = False
    group_offload: bool = False
    offload_encoders: bool | None = None
    t5_cpu: bool | None = None

    def replace(self, **kw) -> "PerfOptions":
        return dataclasses.replace(self, **kw)


PROFILES: dict[str, PerfOptions] = {
    # Nothing changed: whatever the loader and flags chose.
    "default": PerfOptions(),
    # Fastest on a big GPU: bf16 weights, best attention kernel, compiled blocks.
    "fast": PerfOptions(dtype="bf16", attention_backend="auto", compile=True),
    # A one-minute 704x1280 video within 24 GB: bf16 compute, fp8 weight storage, block-level group offloading with
    # streams, wav2vec2 offloaded after its pass, umT5 on the CPU (freed after encoding), streaming decode (always).
    "low_vram": PerfOptions(dtype="bf16", attention_backend="auto", fp8=True, group_offload=True,
                            offload_encoders=True, t5_cpu=True),
}


def resolve_profile(profile: str | None, **overrides) -> PerfOptions:
    """The named profile with explicit (non-None / True) overrides applied."""
    name = profile or "default"
    if name not in PROFILES:
        raise ValueError(f"profile {name!r}: choose from {', '.join(PROFILES)}")
    opts = PROFILES[name]
    kw = {k: v for k, v in overrides.items() if v is not None and v is not False}
    return opts.replace(**kw)


def apply_optimizations(pipe_or_model, opts: PerfOptions, device: torch.device | str | None = None):
    """Apply ``opts`` to a TalkVersePipeline (or a bare TalkVerseTransformer3DModel) in place; returns it.

    Order: dtype, attention backend, fp8 casting, group offloading (or the move to ``device``), compile."""
    model = getattr(pipe_or_model, "transformer", pipe_or_model)
    pipe = pipe_or_model if model is not pipe_or_model else None
    device = torch.device(device) if device is not None else onload_device(model)
    if opts.dtype is not None:
        cast_dit(model, {"bf16": torch.bfloat16, "fp32": torch.float32}[opts.dtype])
    if opts.attention_backend is not None:
        set_attention_backend(model, opts.attention_backend, device)
    if opts.fp8:
        enable_fp8(model)
    if opts.group_offload:
        enable_group_offload(model, device)
    else:
        model.to(device)
    if opts.compile:
        model.compile_repeated_blocks(fullgraph=True, dynamic=False)
    if pipe is not None:
        if opts.offload_encoders is not None:
            pipe.offload_encoders = opts.offload_encoders
            if opts.offload_encoders and pipe.audio_encoder is not None:
                pipe.audio_encoder.to("cpu")  # moved to the device only for its one pass per video
        if opts.t5_cpu is not None:
            pipe.t5_cpu = opts.t5_cpu
            if opts.t5_cpu and pipe.text_encoder is not None:
                pipe.text_encoder.to("cpu")
        pipe.perf_options = opts
    return pipe_or_model
