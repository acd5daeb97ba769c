"""Timing and memory helpers shared by ``benchmarks/`` (performance.md §6 rules 1-2).

On CUDA every measurement uses CUDA events after a synchronisation; on the CPU ``time.perf_counter``. Compared
variants are timed interleaved (A, B, A, B, ...) so that load on a shared machine hits them alike; report medians.
"""

from __future__ import annotations

import json
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_once(fn: Callable[[], object], device: torch.device) -> float:
    """Milliseconds of one call (CUDA events on CUDA)."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        sync(device)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return float(start.elapsed_time(end))
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def interleaved(fns: dict[str, Callable[[], object]], device: torch.device, warmup: int = 1,
                iters: int = 5) -> dict[str, list[float]]:
    """Warm each variant up, then time them interleaved: ``iters`` rounds of every variant once."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    sync(device)
    out: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(iters):
        for k, fn in fns.items():
            out[k].append(time_once(fn, device))
    return out


def stats(ms: list[float]) -> dict[str, float]:
    """median / min / max of a list of milliseconds."""
    return {"ms": statistics.median(ms), "ms_min": min(ms), "ms_max": max(ms), "n": len(ms)}


def gemm_peak_tflops(device: torch.device, dtype: torch.dtype = torch.bfloat16, n: int | None = None,
                     iters: int = 10) -> float:
    """Measured matmul rate (TFLOP/s) of an n x n x n GEMM loop in ``dtype``: the MFU denominator of this run.

    n defaults to 8192 on CUDA (the spec's measurement) and 1024 on the CPU (fp32 there: CPU bf16 GEMMs are often
    emulated and would flatter the MFU)."""
    if device.type != "cuda":
        dtype = torch.float32
    n = n or (8192 if device.type == "cuda" else 1024)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)

    def loop():
        for _ in range(iters):
            torch.mm(a, b)

    loop()
    ms = min(time_once(loop, device) for _ in range(3))
    return 2 * n**3 * iters / (ms / 1e3) / 1e12


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_gb(device: torch.device) -> float:
    """CUDA: ``max_memory_allocated`` since the last reset. CPU: the process's peak RSS (never reset)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**30 if sys.platform == "darwin" else r / 2**20


def environment(device: torch.device) -> dict[str, str]:
    env = {"torch": torch.__version__, "device": str(device), "python": platform.python_version()}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = str(torch.version.cuda)
        env["cudnn"] = str(torch.backends.cudnn.version())
    else:
        env["cpu"] = cpu_model()
        env["threads"] = str(torch.get_num_threads())
    try:
        import diffusers

        env["diffusers"] = diffusers.__version__
    except ImportError:
        pass
    return env


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def pick_device(name: str | None = None) -> torch.device:
    if name:
        return torch.device(name)
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


class Reporter:
    """Prints one JSON line per measurement and writes a markdown table at the end (``--table``)."""

    def __init__(self, bench: str, table: str | None = None):
        self.bench, self.table, self.rows = bench, table, []

    def emit(self, **row) -> dict:
        row = {"bench": self.bench, **row}
        print(json.dumps(row, default=_jsonable), flush=True)
        self.rows.append(row)
        return row

    def write_table(self, columns: list[str] | None = None) -> None:
        if not self.table or not self.rows:
            return
        cols = columns or list(dict.fromkeys(k for r in self.rows for k in r if k != "bench"))
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for r in self.rows:
            lines.append("| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |")
        Path(self.table).parent.mkdir(parents=True, exist_ok=True)
        Path(self.table).write_text(f"## {self.bench}\n\n" + "\n".join(lines) + "\n")


def _jsonable(v):
    if isinstance(v, torch.dtype):
        return str(v).replace("torch.", "")
    if isinstance(v, torch.device):
        return str(v)
    return str(v)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
