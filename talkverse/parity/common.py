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
SUITES: dict[str, Suite] = {}


def register(name: str, folder: str, *needs: str):
    """Register ``fn(fixtures, folder)`` as suite ``name``, run on ``fixtures/<folder>`` when one of ``needs`` (files
    in that folder) exists, else skipped (no cases)."""
    def deco(fn):
        def suite(fixtures: Path) -> Iterator[CaseResult]:
            where = fixtures / folder
            if needs and not any((where / n).exists() for n in needs):
                return iter(())
            return fn(fixtures, where)

        SUITES[name] = suite
        return fn
    return deco


# Suite modules in run order; each registers itself with @register on import.
SUITE_MODULES = ("dit", "lora", "audio", "vae", "t5", "scheduler", "pipeline")


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
            SUITES.setdefault(mod, lambda fixtures, mod=mod, msg=msg: iter([CaseResult(mod, error=msg)]))


def get_suite(name: str) -> Suite:
    """The registered suite ``name`` (every suite module imported first)."""
    _load_suites()
    return SUITES[name]


def run_suites(fixtures: Path, only: list[str] | None = None) -> Iterator[CaseResult]:
    """Run the named suites (all by default) over a fixtures folder, yielding each case as it finishes."""
    _load_suites()
    names = only or list(SUITES)
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        raise ValueError(f"unknown parity suite(s) {unknown}; known: {sorted(SUITES)}")
    for n in names:
        yield from SUITES[n](Path(fixtures))
