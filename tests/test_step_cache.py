"""Step caching through diffusers' hooks (talkverse.pipelines.caching; issue 21): a disabled cache changes nothing,
FirstBlockCache at threshold 0 is no cache, and every cache state is per clip and per CFG branch.

The schedule test counts which DiT calls run in full: a forward pre-hook on the transformer opens a record per call
(clip, step, branch = the call's order within the step: the pipeline runs cond then uncond), a hook on the last
block's feed-forward marks the call full, and a hook on the audio injector counts the injections per call.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers.hooks import (
    FasterCacheConfig,
    FirstBlockCacheConfig,
    MagCacheConfig,
    PyramidAttentionBroadcastConfig,
    TaylorSeerCacheConfig,
)

from talkverse.pipelines.caching import step_cache_config

STEPS = 6
WAVE = (0.3 * np.sin(2 * np.pi * 220 * np.arange(8000) / 16000)).astype(np.float32)  # 0.5 s: 2 clips of 8 frames


@pytest.fixture(scope="module")
def pipe():
    from talkverse.testing.tiny import tiny_pipeline

    p = tiny_pipeline()
    p.set_progress_bar_config(disable=True)
    return p


IMAGE = torch.rand(3, 128, 128, generator=torch.Generator().manual_seed(0))


def run(pipe, **kw):
    args = dict(height=128, width=128, frames_per_clip=8, num_inference_steps=STEPS, progress=False,
                generator=torch.Generator().manual_seed(0), output_type="pt")
    return pipe(IMAGE, WAVE, **{**args, **kw}).frames


CONFIGS = {
    "first_block": lambda: step_cache_config("first_block", STEPS, threshold=1e9),  # skips whenever it may
    "mag": lambda: step_cache_config("mag", STEPS, mag_ratios=[1.0] * STEPS),  # zero error: skips 3 in a row
    "taylorseer": lambda: step_cache_config("taylorseer", STEPS),
}
# Full steps of ONE branch of ONE clip, from a fresh state: FirstBlockCache computes step 0 and then always reuses;
# MagCache keeps step 0 (retention int(0.2 * 6 + 0.5) = 1), skips 3, computes, skips; TaylorSeer (lite) computes the 3
# warm-up steps, then every 3rd step (step 4). A state shared by the branches, or kept from the previous clip, moves
# these (e.g. the uncond pass of step 0 would reuse the cond residual).
EXPECTED_FULL_STEPS = {"first_block": [0], "mag": [0, 4], "taylorseer": [0, 1, 2, 4]}
# Audio injections in a call that is not full: FirstBlockCache still runs block 0 (and its injector); the others run
# no block. The tiny config injects after blocks 0, 2 and 3.
INJECTIONS_WHEN_CACHED = {"first_block": 1, "mag": 0, "taylorseer": 0}


@pytest.mark.parametrize("method", list(CONFIGS))
def test_cache_disabled_changes_nothing(pipe, method):
    """After enable_cache + a run + disable_cache the output is bit-identical to never having enabled it."""
    base = run(pipe)
    pipe.transformer.enable_cache(CONFIGS[method]())
    try:
        cached = run(pipe)
    finally:
        pipe.transformer.disable_cache()
    assert not pipe.transformer.is_cache_enabled
    assert torch.equal(run(pipe), base)
    assert (cached - base).abs().max() > 0  # the cache did skip work (else this test proves nothing)


def test_first_block_cache_threshold_zero_is_no_cache(pipe):
    """Threshold 0 never skips: bit-identical to no cache with the branches as two passes (what a cache implies)."""
    base = run(pipe, cfg_batch=False)
    pipe.transformer.enable_cache(FirstBlockCacheConfig(threshold=0.0))
    try:
        assert torch.equal(run(pipe), base)
    finally:
        pipe.transformer.disable_cache()


@pytest.mark.parametrize("method", list(CONFIGS))
def test_cache_state_is_per_clip_and_per_branch(pipe, method):
    tr = pipe.transformer
    calls, step = [], [0]

    def open_call(module, args):
        calls.append({"clip": pipe.current_clip, "step": step[0], "full": False, "inject": 0})

    def close_step(p, i, t, tensors):
        step[0] = i + 1 if i + 1 < STEPS else 0
        return {}

    handles = [tr.register_forward_pre_hook(open_call),
               tr.blocks[-1].ffn.register_forward_hook(lambda m, a, o: calls[-1].update(full=True)),
               tr.audio_injector.register_forward_hook(lambda m, a, o: calls[-1].update(inject=calls[-1]["inject"] + 1))]
    tr.enable_cache(CONFIGS[method]())
    try:
        run(pipe, callback_on_step_end=close_step)
    finally:
        tr.disable_cache()
        for h in handles:
            h.remove()
    assert len(calls) == 2 * STEPS * 2  # 2 clips x 6 steps x (cond, uncond) as separate passes
    for n, c in enumerate(calls):  # within a step the pipeline calls cond, then uncond
        c["branch"] = ("cond", "uncond")[sum(d["clip"] == c["clip"] and d["step"] == c["step"] for d in calls[:n])]
    for clip in (0, 1):
        for branch in ("cond", "uncond"):
            mine = [c for c in calls if c["clip"] == clip and c["branch"] == branch]
            assert [c["step"] for c in mine if c["full"]] == EXPECTED_FULL_STEPS[method], (clip, branch)
            # the cached unit is block + injector: a full call injects 3 times, a cached one only in blocks it ran
            assert {c["inject"] for c in mine if c["full"]} == {3}
            assert {c["inject"] for c in mine if not c["full"]} == {INJECTIONS_WHEN_CACHED[method]}


def test_caches_that_share_state_between_branches_are_refused(pipe):
    for config in (PyramidAttentionBroadcastConfig(spatial_attention_block_skip_range=2,
                                                   current_timestep_callback=lambda: 500),
                   FasterCacheConfig(current_timestep_callback=lambda: 500)):
        with pytest.raises(ValueError, match="CFG branches"):
            pipe.transformer.enable_cache(config)
        assert not pipe.transformer.is_cache_enabled
    assert isinstance(step_cache_config("taylorseer", STEPS), TaylorSeerCacheConfig)
    assert isinstance(step_cache_config("mag", STEPS, mag_ratios=[1.0, 1.0]), MagCacheConfig)
    assert step_cache_config("none", STEPS) is None
    for bad, match in [(dict(method="teacache"), "^cache must be one of"), (dict(method="mag"), "mag_ratios"),
                       (dict(method="first_block", threshold=-1), "threshold")]:
        with pytest.raises(ValueError, match=match):
            step_cache_config(num_inference_steps=STEPS, **bad)
