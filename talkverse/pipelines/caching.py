"""Training-free step caching through diffusers' hooks (docs/performance.md "Step caching"; issue 21).

``TalkVerseTransformer3DModel`` is a diffusers ``CacheMixin``: ``pipe.transformer.enable_cache(config)`` installs
FirstBlockCache, MagCache or TaylorSeerCache on it (``step_cache_config`` builds the config of a ``--cache`` method with
the defaults below). The pipeline then names every DiT call by its CFG branch (``cache_scope``: "cond", "uncond" or
"cond+uncond" for the batch of 2), so each branch has its own cache state, and resets every state at the start and the
end of each clip (``reset_step_cache``): a cache never leaks across clips or between the conditional and unconditional
passes. Without a cache enabled both are no-ops and the output is bit-identical.

Methods (what is skipped, and the knob):
- ``first_block``: after block 0 (with its audio injector), if the relative mean |change| of its residual since the
  last full step is below ``threshold``, the other blocks are skipped and their cached residual is added.
  ``threshold`` 0 never skips; larger skips more (default 0.1).
- ``mag``: MagCache: skips whole steps while the accumulated magnitude-ratio error stays below ``threshold`` (default
  0.06), at most ``max_skip_steps`` (3) in a row, never in the first ``retention_ratio`` (0.2) of the steps. Needs the
  model's per-step ``mag_ratios`` (``MagCacheConfig(calibrate=True)`` prints them after one run).
- ``taylorseer``: TaylorSeer (lite): full steps for the first ``warmup`` (3) steps, then one full step every
  ``interval`` (3) steps; in between the blocks are skipped and the head's input is extrapolated (1st order).
"""

from __future__ import annotations

import contextlib

CACHE_METHODS = ("none", "first_block", "mag", "taylorseer")
FIRST_BLOCK_THRESHOLD = 0.1
MAG_THRESHOLD = 0.06
TAYLORSEER_INTERVAL = 3
TAYLORSEER_WARMUP = 3


def step_cache_config(method: str, num_inference_steps: int, threshold: float | None = None,
                      interval: int | None = None, mag_ratios: list[float] | None = None):
    """The diffusers cache config of ``method`` (one of CACHE_METHODS; "none" -> None) for a run of
    ``num_inference_steps`` steps per clip. ``threshold``: first_block / mag; ``interval``: taylorseer;
    ``mag_ratios``: mag (required). ValueError naming the argument on a bad value."""
    check_cache_options(method, threshold, interval, mag_ratios)
    if method == "none":
        return None
    import torch
    from diffusers.hooks import FirstBlockCacheConfig, MagCacheConfig, TaylorSeerCacheConfig

    if method == "first_block":
        return FirstBlockCacheConfig(threshold=FIRST_BLOCK_THRESHOLD if threshold is None else threshold)
    if method == "mag":
        return MagCacheConfig(threshold=MAG_THRESHOLD if threshold is None else threshold,
                              num_inference_steps=num_inference_steps, mag_ratios=list(mag_ratios))
    return TaylorSeerCacheConfig(cache_interval=TAYLORSEER_INTERVAL if interval is None else interval,
                                 disable_cache_before_step=TAYLORSEER_WARMUP, max_order=1,
                                 taylor_factors_dtype=torch.float32, use_lite_mode=True)


def check_cache_options(method: str, threshold: float | None = None, interval: int | None = None,
                        mag_ratios: list[float] | None = None) -> None:
    """ValueError naming the option (no heavy import: the CLI checks its flags with it before a model loads)."""
    if method not in CACHE_METHODS:
        raise ValueError(f"cache must be one of {', '.join(CACHE_METHODS)}, got {method!r}")
    if threshold is not None and not threshold >= 0:
        raise ValueError(f"cache threshold must be >= 0, got {threshold}")
    if interval is not None and interval < 1:
        raise ValueError(f"cache interval must be >= 1, got {interval}")
    if method == "mag" and not mag_ratios:
        raise ValueError("cache 'mag' needs mag_ratios (one per step; MagCacheConfig(calibrate=True) prints them)")


def cache_enabled(transformer) -> bool:
    return bool(getattr(transformer, "is_cache_enabled", False))


def cache_scope(transformer, name: str, step: int, num_steps: int, timestep):
    """The context for one DiT call of branch ``name`` at ``step`` (a no-op without a cache)."""
    if not cache_enabled(transformer):
        return contextlib.nullcontext()
    return transformer.cache_context(name, step_index=step, num_inference_steps=num_steps, timestep=timestep)


def reset_step_cache(transformer) -> None:
    """Drop every cache state (all branches); called at the start and the end of each clip."""
    if cache_enabled(transformer):
        transformer._reset_stateful_cache()
