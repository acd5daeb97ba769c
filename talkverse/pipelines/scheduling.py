"""The TalkVerse sampling schedule on diffusers schedulers (inference.md §6 and §10).

The reference sampler is Wan's FlowUniPC (1000 train steps, order 2, ``bh2``, predict-x0, lower-order final, final
sigma 0, corrector on). Its table is::

    s = linspace(float32(0.999), 0, N + 1)[:-1]          # float64 linspace from the float32 value 0.99900001287
    sigma = shift * s / (1 + (shift - 1) * s)            # float64
    timesteps = int64(sigma * 1000)                      # truncated
    sigmas = float32([sigma..., 0])

diffusers' ``UniPCMultistepScheduler(use_flow_sigmas=True, flow_shift=shift)`` fed those ``s`` through
``set_timesteps(sigmas=...)`` reproduces it bit-exactly (timesteps, sigmas and whole trajectories). A plain
``set_timesteps(N)`` does not (it starts from linspace(1, 1/1000)), nor does a float64 0.999.

Step semantics (what ``scheduler.step(v, t, x)`` does per call, with ``v`` the guided flow velocity):
the model output becomes an x0 prediction ``m_i = x_i - sigma_i * v_i``; from the second step on the UniC corrector
replaces ``x_i`` (not re-evaluated by the model); the UniP predictor of order ``min(2, steps taken + 1, steps left)``
gives the next latent. The last step (sigma_next = 0) returns ``x_{S-1} - sigma_{S-1} * v_{S-1}`` exactly.
The step index comes from ``set_begin_index`` (always set here), not from looking ``t`` up in the table.

Every ``set_timesteps`` call resets diffusers' per-run state (step/begin index, stored model outputs, warm-up count,
last sample), so one scheduler object can serve every clip: call :func:`set_schedule` (or :func:`dub_schedule`)
before each clip.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import DPMSolverMultistepScheduler, UniPCMultistepScheduler

SIGMA_MAX = float(np.float32(0.999))  # 0.9990000128746033: the reference builds s in float32
NUM_TRAIN_TIMESTEPS = 1000

Scheduler = UniPCMultistepScheduler | DPMSolverMultistepScheduler


def make_scheduler(shift: float, solver: str = "unipc") -> Scheduler:
    """A fresh scheduler for ``solver`` ("unipc", the reference; or "dpm++") with the flow ``shift``.

    "unipc" is bit-exact with the reference once :func:`set_schedule` is used. "dpm++" (DPM-Solver++ order 2,
    midpoint, final sigma 0) uses diffusers' own flow table, shifted linspace(0.999, 0, N+1)[:N]; the reference's
    is shifted linspace(1, 0, N+1)[:N], so it is within ~5e-4 of the reference, not exact.
    """
    if solver == "unipc":
        return UniPCMultistepScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, prediction_type="flow_prediction",
                                       use_flow_sigmas=True, flow_shift=float(shift))
    if solver in ("dpm++", "dpmpp", "dpm"):
        return DPMSolverMultistepScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, prediction_type="flow_prediction",
                                           use_flow_sigmas=True, flow_shift=float(shift),
                                           algorithm_type="dpmsolver++", solver_order=2, solver_type="midpoint",
                                           lower_order_final=True, final_sigmas_type="zero")
    raise ValueError(f"unknown solver {solver!r}; expected 'unipc' or 'dpm++'")


def check_scheduler(scheduler) -> None:
    """ValueError unless ``scheduler`` is a flow-matching UniPC or DPM++ scheduler that :func:`set_schedule` drives
    (``prediction_type="flow_prediction"``, ``use_flow_sigmas=True``): another scheduler would sample silently wrong."""
    cfg = getattr(scheduler, "config", None)
    if not isinstance(scheduler, (UniPCMultistepScheduler, DPMSolverMultistepScheduler)) or \
            cfg.prediction_type != "flow_prediction" or not cfg.use_flow_sigmas:
        raise ValueError(f"scheduler: expected a flow-matching UniPCMultistepScheduler or DPMSolverMultistepScheduler "
                         f"(make_scheduler(shift)), got {type(scheduler).__name__}")


def base_sigmas(steps: int) -> np.ndarray:
    """The unshifted ``s = linspace(float32(0.999), 0, steps + 1)[:-1]`` (float64) that the reference starts from."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return np.linspace(SIGMA_MAX, 0.0, steps + 1)[:-1]


def set_schedule(scheduler: Scheduler, steps: int, device: torch.device | str | None = None,
                 begin_index: int = 0) -> torch.Tensor:
    """Set the reference ``steps``-step table on ``scheduler`` (resetting its per-run state) and its start index.

    Returns ``scheduler.timesteps`` (int64 [steps]). ``begin_index`` > 0 starts a truncated run (dubbing) at that
    table index; the step count left then includes the full table's tail (as the reference's ``lower_order_final``).
    """
    if isinstance(scheduler, UniPCMultistepScheduler):
        scheduler.set_timesteps(sigmas=base_sigmas(steps), device=device)
    else:  # dpm++: diffusers' own flow table (not exact, see make_scheduler)
        scheduler.set_timesteps(steps, device=device)
    if not 0 <= begin_index < len(scheduler.timesteps):
        raise ValueError(f"begin_index {begin_index} outside the {len(scheduler.timesteps)}-step table")
    scheduler.set_begin_index(begin_index)
    return scheduler.timesteps


def reference_table(steps: int, shift: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference table computed independently in numpy: (timesteps int64 [S], sigmas float32 [S + 1], last 0)."""
    s = base_sigmas(steps)
    sigma = shift * s / (1 + (shift - 1) * s)
    timesteps = (sigma * NUM_TRAIN_TIMESTEPS).astype(np.int64)
    sigmas = np.concatenate([sigma, [0.0]]).astype(np.float32)
    return torch.from_numpy(timesteps), torch.from_numpy(sigmas)


@dataclass
class DubSchedule:
    """A schedule truncated for dubbing (video-to-video) at ``strength``.

    ``start_index``: index of the first kept step in the scheduler's table (passed to ``set_begin_index``);
    ``timesteps``: the kept steps; ``sigma_start``: the table sigma at ``start_index`` (the sigma the solver assumes);
    ``noise_timestep`` = int(strength * 1000); ``strength``: the requested strength.
    """

    start_index: int
    timesteps: torch.Tensor
    sigma_start: float
    noise_timestep: int
    strength: float


def dub_schedule(scheduler: Scheduler, steps: int, strength: float = 0.95, shift: float | None = None,
                 device: torch.device | str | None = None) -> DubSchedule:
    """Set ``scheduler`` up for dubbing at ``strength`` and describe the truncated run.

    The normal ``steps``-step table is filtered to ``t <= int(strength * 1000)``; the scheduler keeps the full table
    and starts at the first kept index (``set_begin_index``), as the reference does. If no step remains, the
    scheduler is given a one-step table instead: ``t = int(strength * 1000)`` with sigma = ``strength`` (float32),
    then final sigma 0 (set through ``set_timesteps(sigmas=[.])``, whose timestep and sigma are then overwritten
    with these exact values), so that one step returns ``x - strength * v``.
    ``shift``, when given, must equal the scheduler's ``flow_shift`` (a consistency check only).
    """
    if shift is not None and float(shift) != float(scheduler.config.flow_shift):
        raise ValueError(f"shift {shift} differs from the scheduler's flow_shift {scheduler.config.flow_shift}")
    if not 0.0 < strength <= 1.0:
        raise ValueError(f"strength must be in (0, 1], got {strength}")
    noise_t = int(strength * NUM_TRAIN_TIMESTEPS)
    full = set_schedule(scheduler, steps, device=device)
    keep = (full <= noise_t).nonzero()
    if len(keep):
        start = int(keep[0])
        scheduler.set_begin_index(start)
        return DubSchedule(start, full[start:], float(scheduler.sigmas[start]), noise_t, strength)
    # No step left: a one-step schedule at t = int(strength * 1000), sigma = strength.
    sig = np.float32(strength)
    shifted = float(scheduler.config.flow_shift)
    u = float(sig) / (shifted - (shifted - 1) * float(sig))  # un-shifted; the table is overwritten below
    if isinstance(scheduler, UniPCMultistepScheduler):
        scheduler.set_timesteps(sigmas=np.array([u], dtype=np.float64), device=device)
    else:
        scheduler.set_timesteps(1, device=device)
    scheduler.timesteps = torch.tensor([noise_t], dtype=torch.int64, device=scheduler.timesteps.device)
    scheduler.sigmas = torch.tensor([sig, 0.0], dtype=torch.float32)
    scheduler.set_begin_index(0)
    return DubSchedule(0, scheduler.timesteps, float(sig), noise_t, strength)


def dub_init(x0: torch.Tensor, eps: torch.Tensor, sched: DubSchedule, mode: str = "sigma") -> torch.Tensor:
    """Initial dubbing latent from the source latents ``x0`` and noise ``eps``.

    ``"sigma"`` (ours, default): ``(1 - sigma_start) * x0 + sigma_start * eps``, consistent with the sigma the solver
    assumes. ``"strength"`` (reference / parity): ``(1 - s) * x0 + s * eps`` with the Python-float coefficients
    (``1 - 0.95 = 0.05000000000000004``), bit-exact with the reference.
    """
    if mode == "sigma":
        c = sched.sigma_start
    elif mode == "strength":
        c = sched.strength
    else:
        raise ValueError(f"unknown dub init mode {mode!r}; expected 'sigma' or 'strength'")
    return (1 - c) * x0 + c * eps


def run_sampler(scheduler: Scheduler, x: torch.Tensor, model_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                timesteps: torch.Tensor | None = None) -> torch.Tensor:
    """Run ``model_fn(x, t) -> v`` (guided flow velocity) through ``scheduler`` over ``timesteps``.

    ``timesteps`` defaults to the scheduler's table from its begin index; call :func:`set_schedule` or
    :func:`dub_schedule` first. ``t`` is passed as the int64 table entry.
    """
    if timesteps is None:
        timesteps = scheduler.timesteps[scheduler.begin_index or 0:]
    for t in timesteps:
        x = scheduler.step(model_fn(x, t), t, x, return_dict=False)[0]
    return x
