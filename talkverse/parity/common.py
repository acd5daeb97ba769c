"""Shared parity helpers: error measures, result records and the suite registry."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch


def rel_err(ours: torch.Tensor, expected: torch.Tensor) -> float:
    """||ours - expected|| / ||expected|| over the whole tensor (max abs diff when expected is all zeros)."""
    ours, expected = ours.detach().double().cpu(), expected.detach().double().cpu()
    if ours.shape != expected.shape:
        return float("inf")
    n = expected.norm().item()
    d = (ours - expected).norm().item()
    return d / n if n > 0 else (ours - expected).abs().max().item()


@dataclass
class CaseResult:
    """One parity case: its worst error over all compared tensors, and the per-tensor detail."""

    name: str
    details: list[tuple[str, float, float]] = field(default_factory=list)  # (tensor, error, tolerance)
    error: str | None = None  # an exception raised while running the case

    def check(self, tensor: str, ours: torch.Tensor, expected: torch.Tensor, tol: float) -> None:
        self.details.append((tensor, rel_err(ours, expected), tol))

    def check_exact(self, tensor: str, ours: torch.Tensor, expected: torch.Tensor) -> None:
        ok = ours.shape == expected.shape and bool(torch.equal(ours.cpu(), expected.cpu()))
        self.details.append((tensor, 0.0 if ok else float("inf"), 0.0))

    def check_abs(self, tensor: str, ours: torch.Tensor, expected: torch.Tensor, tol: float) -> None:
        err = (ours.double().cpu() - expected.double().cpu()).abs().max().item() if ours.shape == expected.shape \
            else float("inf")
        self.details.append((tensor, err, tol))

    @property
    def max_error(self) -> float:
        return max((e for _, e, _ in self.details), default=float("nan"))

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.details) and all(e <= t for _, e, t in self.details)

    def line(self) -> str:
        if self.error is not None:
            return f"{self.name} error FAIL ({self.error})"
        return f"{self.name} {self.max_error:.3e} {'PASS' if self.passed else 'FAIL'}"


Suite = Callable[[Path], Iterator[CaseResult]]
S2V_5B, S2V_14B = "s2v-5B", "s2v-14B"
MODELS = (S2V_5B, S2V_14B)
SUITES: dict[str, dict[str, Suite]] = {}  # suite name -> {model: suite}


def fixture_model(fixtures: Path) -> str:
    """Which model a fixtures folder holds: S2V-14B when its tiny DiT uses ``cond_dim`` (the 5B lists it as unused)
    or its pipeline has the Wan2.1 VAE (``parity_s2v14b/``), else TalkVerse-5B (``parity/``)."""
    import json

    fixtures = Path(fixtures)
    if (fixtures / "pipeline" / "vae21_tiny_config.json").is_file():
        return S2V_14B
    cfg = fixtures / "dit_tiny" / "config.json"
    if cfg.is_file():
        data = json.loads(cfg.read_text())
        unused = data.get("hard_coded_in_reference", {}).get("unused_args", [])
        if "cond_dim" in data.get("constructor_args", {}) and "cond_dim" not in unused:
            return S2V_14B
    if (fixtures / "audio" / "tiny_wav2vec2_24l").is_dir():
        return S2V_14B
    return S2V_5B


def register(name: str, folder: str, *needs: str, models: tuple[str, ...] = (S2V_5B,)):
    """Register ``fn(fixtures, folder)`` as suite ``name`` for the fixtures of ``models``, run on
    ``fixtures/<folder>`` when one of ``needs`` (files in that folder) exists, else skipped (no cases)."""
    def deco(fn):
        def suite(fixtures: Path) -> Iterator[CaseResult]:
            where = fixtures / folder
            if needs and not any((where / n).exists() for n in needs):
                return iter(())
            return fn(fixtures, where)

        for model in models:
            SUITES.setdefault(name, {})[model] = suite
        return fn
    return deco


# Suite modules in run order; each registers itself with @register on import.
SUITE_MODULES = ("dit", "lora", "audio", "audio_s2v14b", "vae", "t5", "scheduler", "pipeline", "pipeline_s2v14b")


def _load_suites() -> None:
    import importlib

    for mod in SUITE_MODULES:
        try:
            importlib.import_module(f"{__package__}.{mod}")
        except ModuleNotFoundError as e:
            if e.name == f"{__package__}.{mod}":  # suite not written yet
                continue
            # The suite exists but a package it needs is missing: report it as a failing case when run.
            msg = f"needs the package {e.name!r} (pip install -e '.[s2v]')"
            failing = lambda fixtures, mod=mod, msg=msg: iter([CaseResult(mod, error=msg)])  # noqa: E731
            SUITES.setdefault(mod.split("_")[0], {m: failing for m in MODELS})


def get_suite(name: str) -> Suite:
    """The registered suite ``name`` (every suite module imported first), for whichever model the fixtures hold."""
    _load_suites()

    def suite(fixtures: Path) -> Iterator[CaseResult]:
        impl = SUITES[name].get(fixture_model(fixtures))
        return impl(Path(fixtures)) if impl is not None else iter(())
    return suite


def run_suites(fixtures: Path, only: list[str] | None = None) -> Iterator[CaseResult]:
    """Run the named suites (all by default) over a fixtures folder, yielding each case as it finishes. Each suite
    runs in the version for the model the folder holds (:func:`fixture_model`)."""
    _load_suites()
    names = only or list(SUITES)
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        raise ValueError(f"unknown parity suite(s) {unknown}; known: {sorted(SUITES)}")
    model = fixture_model(Path(fixtures))
    for n in names:
        impl = SUITES[n].get(model)
        if impl is not None:
            yield from impl(Path(fixtures))
