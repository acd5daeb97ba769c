"""Scheduler parity (``scheduler/``): the reference FlowUniPC tables, sampler trajectories and the dubbing schedule.

Every case runs our diffusers recipe (:mod:`talkverse.pipelines.scheduling`). The trajectories are replayed from
the stored initial latent with the README's toy model and CFG; all trajectory cases share one scheduler object, so
they also check that re-setting a used scheduler leaves no state behind.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import load_file

from ..pipelines.scheduling import dub_init, dub_schedule, make_scheduler, reference_table, set_schedule
from .common import CaseResult, register, rel_err

SIGMA_TOL = 1e-7  # max abs on the float32 sigma tables (observed: 0)
TRAJ_TOL = 1e-6  # relative, per latent (observed: 0)

_NAME = re.compile(r"steps(\d+)_shift([0-9.]+)$")


def _parse(name: str) -> tuple[int, float]:
    m = _NAME.search(name)
    if m is None:
        raise ValueError(f"cannot parse steps/shift from {name!r}")
    return int(m.group(1)), float(m.group(2))


def toy_model(consts: dict[str, torch.Tensor]):
    """The README's guided toy model: v = v_u + g (v_c - v_u), v_* = a_* x + float32(t / 1000) c_*."""
    a_c, a_u = consts["const.a_c"].item(), consts["const.a_u"].item()
    g = consts["const.guide_scale"].item()
    c_c, c_u = consts["const.c_c"], consts["const.c_u"]

    def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        b = torch.tensor(int(t) / 1000, dtype=torch.float32)
        v_c = a_c * x + b * c_c
        v_u = a_u * x + b * c_u
        return v_u + g * (v_c - v_u)

    return fn


def _check_steps(res: CaseResult, label: str, ours: list[torch.Tensor], expected: torch.Tensor, tol: float) -> None:
    """One detail: the worst relative error over the stored per-step tensors."""
    errs = [rel_err(o, e) for o, e in zip(ours, expected)]
    if len(ours) != len(expected):
        errs.append(float("inf"))
    res.details.append((f"{label} (max rel over {len(expected)})", max(errs), tol))


@register("scheduler", "scheduler", "tables.safetensors", "trajectories.safetensors")
def run(fixtures: Path, folder: Path) -> Iterator[CaseResult]:
    manifest = json.loads((folder / "manifest.json").read_text()) if (folder / "manifest.json").exists() else {}

    # Tables: timesteps exact, sigmas <= 1e-7 max abs, both from diffusers and from the independent numpy rule.
    if (folder / "tables.safetensors").exists():
        tables = load_file(folder / "tables.safetensors")
        for name in sorted({k.rsplit(".", 1)[0] for k in tables}, key=lambda n: _parse(n)):
            res = CaseResult(f"scheduler/{name}")
            try:
                steps, shift = _parse(name)
                sched = make_scheduler(shift)
                ts = set_schedule(sched, steps)
                ref_ts, ref_sig = reference_table(steps, shift)
                res.check_exact("timesteps", ts, tables[f"{name}.timesteps"])
                res.check_abs("sigmas", sched.sigmas, tables[f"{name}.sigmas"], SIGMA_TOL)
                res.check_exact("sigmas dtype float32", torch.tensor(sched.sigmas.dtype == torch.float32),
                                torch.tensor(True))
                res.check_exact("reference_table.timesteps", ref_ts, tables[f"{name}.timesteps"])
                res.check_abs("reference_table.sigmas", ref_sig, tables[f"{name}.sigmas"], SIGMA_TOL)
            except Exception as exc:
                res.error = f"{type(exc).__name__}: {exc}"
            yield res

    if not (folder / "trajectories.safetensors").exists():
        return
    traj = load_file(folder / "trajectories.safetensors")
    model = toy_model(traj)
    shared: dict[float, object] = {}  # one scheduler per shift, reused across cases

    def scheduler_for(shift: float):
        return shared.setdefault(shift, make_scheduler(shift))

    names = sorted({k.rsplit(".", 1)[0] for k in traj if k.startswith("traj_")}, key=lambda n: _parse(n))
    for name in names:
        res = CaseResult(f"scheduler/{name}")
        try:
            steps, shift = _parse(name)
            sched = scheduler_for(shift)
            ts = set_schedule(sched, steps)
            res.check_exact("timesteps", ts, traj[f"{name}.timesteps"])
            x = traj["in.noise"].clone()
            xs, vs = [x], []
            for t in ts:
                v = model(x, t)
                vs.append(v)
                x = sched.step(v, t, x, return_dict=False)[0]
                xs.append(x)
            exp_x = traj[f"{name}.x"]
            res.check("x[0] (noise)", xs[0], exp_x[0], TRAJ_TOL)
            _check_steps(res, "x[1:]", xs[1:], exp_x[1:], TRAJ_TOL)
            res.check("x_final", xs[-1], exp_x[-1], TRAJ_TOL)
            if f"{name}.v" in traj:
                _check_steps(res, "guided v", vs, traj[f"{name}.v"], TRAJ_TOL)
        except Exception as exc:
            res.error = f"{type(exc).__name__}: {exc}"
        yield res

    if "dub.x_final" in traj:
        res = CaseResult("scheduler/dub")
        try:
            full_exp = traj["dub.full_timesteps"]
            steps = len(full_exp)
            shifts = sorted({_parse(n)[1] for n in names}) or [5.0]
            shift = next((s for s in shifts if torch.equal(reference_table(steps, s)[0], full_exp)), shifts[0])
            strength = traj["dub.noise_t_normalized"].item()
            sched = scheduler_for(shift)
            dub = dub_schedule(sched, steps, strength)
            res.check_exact("full_timesteps", sched.timesteps, full_exp)
            res.check_exact("timesteps", dub.timesteps, traj["dub.timesteps"])
            res.check_exact("start_index", torch.tensor([dub.start_index]), traj["dub.start_index"])
            if "dubbing" in manifest:
                res.check_exact("noise_timestep", torch.tensor([dub.noise_timestep]),
                                torch.tensor([manifest["dubbing"]["noise_timestep"]]))
            res.check_abs("start_sigma", torch.tensor([dub.sigma_start], dtype=torch.float64), traj["dub.start_sigma"],
                          SIGMA_TOL)
            x = dub_init(traj["dub.x0"], traj["dub.eps"], dub, mode="strength")
            res.check_exact("x_start (strength mix, bit-exact)", x, traj["dub.x_start"])
            xs = [x]
            for t in dub.timesteps:
                x = sched.step(model(x, t), t, x, return_dict=False)[0]
                xs.append(x)
            head = traj["dub.x_steps_0_1_2"]
            _check_steps(res, "x_steps_0_1_2", xs[:len(head)], head, TRAJ_TOL)
            res.check("x_final", xs[-1], traj["dub.x_final"], TRAJ_TOL)
        except Exception as exc:
            res.error = f"{type(exc).__name__}: {exc}"
        yield res
