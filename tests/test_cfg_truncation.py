"""CFG truncation (``cfg_truncation``; talkverse.pipelines.guidance; issue 21): the unconditional pass runs in the first
fraction of each clip's steps only, and the velocity is the conditional one after it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talkverse.pipelines.guidance import uses_uncond

STEPS = 6
WAVE = (0.3 * np.sin(2 * np.pi * 220 * np.arange(8000) / 16000)).astype(np.float32)  # 0.5 s: 2 clips of 8 frames
IMAGE = torch.rand(3, 128, 128, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def pipe():
    from talkverse.testing.tiny import tiny_pipeline

    p = tiny_pipeline()
    p.set_progress_bar_config(disable=True)
    return p


def record(pipe, **kw):
    """Per step of each clip: (clip, step, latents, v, v_cond, v_uncond or None), and the number of DiT rows run."""
    seen, rows = [], [0]

    def step(p, i, t, d):
        seen.append((p.current_clip, i, d["latents"].clone(), d["noise_pred"], d["noise_pred_cond"],
                     d["noise_pred_uncond"]))
        return {}

    h = pipe.transformer.register_forward_pre_hook(lambda m, a, k: rows.__setitem__(0, rows[0] + k["hidden_states"]
                                                                                     .shape[0]), with_kwargs=True)
    try:
        pipe(IMAGE, WAVE, height=128, width=128, frames_per_clip=8, num_inference_steps=STEPS, progress=False,
             generator=torch.Generator().manual_seed(0), callback_on_step_end=step,
             callback_on_step_end_tensor_inputs=["latents", "noise_pred", "noise_pred_cond", "noise_pred_uncond"],
             **kw)
    finally:
        h.remove()
    return seen, rows[0]


def test_cfg_truncation_skips_the_uncond_pass_after_the_fraction(pipe):
    full, full_rows = record(pipe)
    half, half_rows = record(pipe, cfg_truncation=0.5)
    assert full_rows == 2 * STEPS * 2 and half_rows == 2 * (STEPS + STEPS // 2)  # 2 clips; uncond in 3 of 6 steps
    for (c, i, x, v, v_c, v_u), (c0, i0, x0, *_) in zip(half, full):
        assert (c, i) == (c0, i0)
        if i < STEPS // 2:  # before the cut: the very same step as without truncation
            assert v_u is not None and torch.equal(v, v_u + 6.5 * (v_c - v_u))
            if c == 0:
                assert torch.equal(x, x0)
        else:  # after it: no unconditional pass, v = v_cond
            assert v_u is None and torch.equal(v, v_c)
    assert not torch.equal(half[-1][2], full[-1][2])
    assert [uses_uncond(i, 50, 6.5, 0.2) for i in (0, 9, 10)] == [True, True, False]
    assert not uses_uncond(0, 50, 1.0, 1.0)  # no CFG at all with scale <= 1


def test_cfg_truncation_is_checked(pipe):
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="^cfg_truncation"):
            pipe(IMAGE, WAVE, height=128, width=128, frames_per_clip=8, num_inference_steps=2, progress=False,
                 cfg_truncation=bad)
