"""Sampling schedule (inference.md §6, §10): the reference FlowUniPC table on diffusers, reuse, dubbing truncation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from talkverse.parity import run_suites
from talkverse.pipelines.scheduling import (
    SIGMA_MAX,
    DubSchedule,
    dub_init,
    dub_schedule,
    make_scheduler,
    reference_table,
    run_sampler,
    set_schedule,
)


def _toy(seed: int = 0, shape=(4, 2, 3, 3)):
    """A deterministic guided toy model (the fixture's form) with random constants."""
    g = torch.Generator().manual_seed(seed)
    c_c, c_u = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    noise = torch.randn(shape, generator=g)

    def fn(x, t):
        b = torch.tensor(int(t) / 1000, dtype=torch.float32)
        v_c, v_u = 0.9 * x + b * c_c, 1.0 * x + b * c_u
        return v_u + 6.5 * (v_c - v_u)

    return fn, noise


# ---------------------------------------------------------------- fixtures


def test_scheduler_parity_suite(parity_dir):
    results = list(run_suites(parity_dir, ["scheduler"]))
    manifest = json.loads((parity_dir / "scheduler" / "manifest.json").read_text())
    n_tables = len({k.rsplit(".", 1)[0] for k in manifest["tables"]})
    n_traj = len({k.rsplit(".", 1)[0] for k in manifest["tensors"] if k.startswith("traj_")})
    assert len(results) == n_tables + n_traj + 1  # + the dubbing case
    failures = [(r.name, r.error, [(n, e, t) for n, e, t in r.details if e > t]) for r in results if not r.passed]
    assert not failures, failures


# ---------------------------------------------------------------- tables


def test_sigma_max_is_float32():
    assert SIGMA_MAX == float(np.float32(0.999)) and SIGMA_MAX != 0.999


@pytest.mark.parametrize("steps,shift", [(50, 5.0), (40, 5.0), (8, 3.0), (4, 5.0), (1, 5.0), (30, 1.0),
                                         (25, 8.0), (300, 5.0)])
def test_reference_table_matches_set_schedule(steps, shift):
    sched = make_scheduler(shift)
    ts = set_schedule(sched, steps)
    ref_ts, ref_sig = reference_table(steps, shift)
    assert ts.dtype == torch.int64 and torch.equal(ts, ref_ts)
    assert sched.sigmas.dtype == torch.float32 and torch.equal(sched.sigmas, ref_sig)
    assert sched.begin_index == 0


def test_spec_values_50_steps_shift5():
    ts, sig = reference_table(50, 5.0)
    assert ts[:6].tolist() == [999, 995, 991, 987, 982, 978]
    assert ts[-6:].tolist() == [405, 356, 302, 241, 172, 92]
    assert abs(sig[0].item() - 0.9998) < 1e-4 and sig[-1].item() == 0.0
    assert reference_table(4, 5.0)[0].tolist() == [999, 937, 833, 624]


def test_float64_sigma_max_pitfall():
    """A float64 0.999 moves some float32 sigmas by an ulp: why SIGMA_MAX is float32(0.999)."""
    sched = make_scheduler(5.0)
    set_schedule(sched, 50)
    ours = sched.sigmas.clone()
    sched.set_timesteps(sigmas=np.linspace(0.999, 0.0, 51)[:-1])
    diff = (sched.sigmas - ours).abs()
    assert 0 < diff.max().item() < 1e-6 and (diff > 0).sum().item() >= 1


def test_plain_set_timesteps_differs():
    sched = make_scheduler(5.0)
    sched.set_timesteps(50)
    assert sched.timesteps[-4:].tolist() == [305, 244, 175, 96]
    _, ref_sig = reference_table(50, 5.0)
    assert (sched.sigmas - ref_sig).abs().max().item() > 1e-3


def test_unknown_solver():
    with pytest.raises(ValueError):
        make_scheduler(5.0, "euler")


def test_dpmpp_close_to_reference_table():
    sched = make_scheduler(5.0, "dpm++")
    ts = set_schedule(sched, 20)
    assert len(ts) == 20
    s = np.linspace(1.0, 0.0, 21)[:20]
    ref = 5.0 * s / (1 + 4.0 * s)
    assert np.abs(sched.sigmas[:-1].double().numpy() - ref).max() < 5e-4
    fn, noise = _toy()
    assert torch.isfinite(run_sampler(sched, noise.clone(), fn)).all()


# ---------------------------------------------------------------- reuse


def test_reused_scheduler_is_bit_identical():
    fn, noise = _toy()
    fresh = make_scheduler(5.0)
    set_schedule(fresh, 8)
    expected = run_sampler(fresh, noise.clone(), fn)

    reused = make_scheduler(5.0)
    set_schedule(reused, 12)
    run_sampler(reused, noise.clone() * 2, fn)  # a different run first
    dub_schedule(reused, 50, 0.7)
    run_sampler(reused, noise.clone(), fn)  # then a truncated one
    set_schedule(reused, 6)
    reused.step(fn(noise, reused.timesteps[0]), reused.timesteps[0], noise.clone())  # and an abandoned one
    for _ in range(2):
        set_schedule(reused, 8)
        assert torch.equal(run_sampler(reused, noise.clone(), fn), expected)


def test_final_step_is_x0_prediction():
    fn, noise = _toy(1)
    sched = make_scheduler(5.0)
    ts = set_schedule(sched, 4)
    x = noise.clone()
    for t in ts[:-1]:
        x = sched.step(fn(x, t), t, x, return_dict=False)[0]
    v = fn(x, ts[-1])
    out = sched.step(v, ts[-1], x, return_dict=False)[0]
    assert torch.equal(out, x - sched.sigmas[3] * v)


# ---------------------------------------------------------------- dubbing


@pytest.mark.parametrize("strength,n,first,sigma", [(0.95, 39, 946, 0.9464), (0.9, 32, 898, 0.8986),
                                                    (0.8, 22, 796, 0.7968), (0.7, 15, 681, 0.6815),
                                                    (0.5, 8, 487, 0.4875)])
def test_dub_schedule_table(strength, n, first, sigma):
    sched = make_scheduler(5.0)
    dub = dub_schedule(sched, 50, strength)
    assert isinstance(dub, DubSchedule)
    assert len(dub.timesteps) == n and dub.timesteps[0].item() == first
    assert dub.start_index == 50 - n and sched.begin_index == dub.start_index
    assert abs(dub.sigma_start - sigma) < 1e-4 and dub.sigma_start == sched.sigmas[dub.start_index].item()
    assert dub.noise_timestep == int(strength * 1000)
    assert torch.equal(sched.timesteps[dub.start_index:], dub.timesteps)


def test_dub_init_modes():
    g = torch.Generator().manual_seed(3)
    x0, eps = torch.randn(2, 5, generator=g), torch.randn(2, 5, generator=g)
    dub = dub_schedule(make_scheduler(5.0), 50, 0.95)
    assert torch.equal(dub_init(x0, eps, dub, "strength"), (1 - 0.95) * x0 + 0.95 * eps)
    s0 = dub.sigma_start
    assert torch.equal(dub_init(x0, eps, dub), (1 - s0) * x0 + s0 * eps)
    with pytest.raises(ValueError):
        dub_init(x0, eps, dub, "other")


@pytest.mark.parametrize("steps,strength", [(50, 0.05), (4, 0.5)])
def test_dub_no_step_left(steps, strength):
    """Nothing at or below int(s*1000): one step at t = int(s*1000), sigma = s, which returns x - s*v."""
    fn, noise = _toy(2)
    sched = make_scheduler(5.0)
    dub = dub_schedule(sched, steps, strength)
    assert dub.timesteps.tolist() == [int(strength * 1000)] and dub.start_index == 0
    assert dub.sigma_start == float(np.float32(strength))
    assert sched.sigmas.tolist() == [float(np.float32(strength)), 0.0]
    x = dub_init(noise, torch.zeros_like(noise), dub, "sigma")
    v = fn(x, dub.timesteps[0])
    out = sched.step(v, dub.timesteps[0], x, return_dict=False)[0]
    assert torch.equal(out, x - sched.sigmas[0] * v)
    set_schedule(sched, steps)  # and the scheduler is back to normal afterwards
    assert torch.equal(sched.timesteps, reference_table(steps, 5.0)[0])


def test_long_table_begin_index_picks_the_right_start():
    """Tables of >= ~250 steps start 999, 999: the begin index, not a timestep lookup, decides where a run starts."""
    sched = make_scheduler(5.0)
    ts = set_schedule(sched, 300)
    assert ts[:2].tolist() == [999, 999]
    fn, noise = _toy(4)
    for k in (0, 1):
        set_schedule(sched, 300, begin_index=k)
        sched.step(fn(noise, ts[k]), ts[k], noise.clone())
        assert sched.step_index == k + 1
    # A truncated dubbing run over a long table starts at its first kept index and matches a manual begin index.
    dub = dub_schedule(sched, 300, 0.9)
    assert dub.start_index == int((ts <= 900).nonzero()[0]) and sched.begin_index == dub.start_index
    a = run_sampler(sched, noise.clone(), fn, dub.timesteps)
    set_schedule(sched, 300, begin_index=dub.start_index)
    assert torch.equal(run_sampler(sched, noise.clone(), fn, ts[dub.start_index:]), a)
    with pytest.raises(ValueError):
        set_schedule(sched, 10, begin_index=10)
