"""Classifier-free guidance of one denoising step (inference.md §7).

cond = (prompt, audio), uncond = (negative prompt, zero audio through the encoder), the same reference, motion and t;
the same pose latents (S2V-14B's ``cond_states``); v = v_u + g (v_c - v_u), and only the conditional pass when g <= 1
and, with CFG truncation (``cfg_truncation`` < 1), after the first ``cfg_truncation`` fraction of the steps (v = v_c).
The two branches run as one batch of 2 (``cfg_batch``, the default), as two passes, or, with CFG parallelism, one
branch per rank group followed by one all_gather of the two velocities (``parallel.exchange_cfg``). Every DiT call is
named (COND, UNCOND, BOTH) so that a step cache keeps each branch's state apart (talkverse.pipelines.caching).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Branch = dict  # encoder_hidden_states [1, L, D], audio_embeds (local, global)
# The ``name`` each DiT call passes to ``forward``: a step cache keeps one state per name (talkverse.pipelines.caching).
COND, UNCOND, BOTH = "cond", "uncond", "cond+uncond"


def branch_velocities(forward: Callable[..., torch.Tensor], shared: dict, cond: Branch, uncond: Branch | None,
                      cfg_batch: bool, parallel) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(v_cond, v_uncond or None) of ``forward(name, **shared, **branch)``, ``name`` one of COND, UNCOND (one branch)
    or BOTH (the batch of 2); ``shared`` holds hidden_states, timestep, ref_latents, motion_latents and, for a model
    with a pose branch, cond_states (batch 1). ``uncond`` None: the conditional pass only."""
    if uncond is None:
        return forward(COND, **shared, **cond), None
    if parallel.cfg_parallel:
        mine = (COND, cond) if parallel.cfg_rank == 0 else (UNCOND, uncond)
        return parallel.exchange_cfg(forward(mine[0], **shared, **mine[1]))
    if not cfg_batch:
        return forward(COND, **shared, **cond), forward(UNCOND, **shared, **uncond)

    def two(z):
        return None if z is None else z.expand(2, *z.shape[1:])

    extra = {"cond_states": two(shared["cond_states"])} if "cond_states" in shared else {}
    v = forward(BOTH, hidden_states=two(shared["hidden_states"]), timestep=shared["timestep"].expand(2),
                ref_latents=two(shared["ref_latents"]), motion_latents=two(shared["motion_latents"]), **extra,
                encoder_hidden_states=torch.cat([cond["encoder_hidden_states"], uncond["encoder_hidden_states"]]),
                audio_embeds=tuple(torch.cat([c, u]) for c, u in zip(cond["audio_embeds"], uncond["audio_embeds"])))
    return v[:1], v[1:]


def uses_uncond(step: int, num_steps: int, guidance_scale: float, cfg_truncation: float) -> bool:
    """Whether step ``step`` of ``num_steps`` runs the unconditional pass: CFG is on (scale > 1) and the step lies in
    the first ``cfg_truncation`` fraction of the steps (1.0: every step; 0.5: the first half; after it v = v_cond)."""
    return guidance_scale > 1.0 and step < cfg_truncation * num_steps


def guide(v_cond: torch.Tensor, v_uncond: torch.Tensor | None, scale: float) -> torch.Tensor:
    return v_cond if v_uncond is None else v_uncond + scale * (v_cond - v_uncond)
