"""Smoke test of benchmarks/: each script runs at its tiny CPU config (one subprocess running the four scripts'
``__main__`` in turn, to pay the imports once) and prints valid JSON lines and its markdown table."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import REPO

FAST = ["--threads", "1", "--warmup", "0", "--iters", "1"]
RUNS = {
    "bench_transformer": FAST + ["--clips", "later", "--block_shape", "64,128,64"],
    "bench_vae": FAST + ["--frames", "5", "--latents", "2"],
    "bench_pipeline": FAST + ["--steps", "2", "--variants", "bf16,cfg_sequential"],
    "bench_low_vram": FAST + ["--clips", "1", "--size", "64x64", "--steps", "2"],
}
EXPECTED = {
    "bench_transformer": {"gemm_peak", "block_vs_diffusers", "dit", "dit_lora"},
    "bench_vae": {"encode_oneshot", "encode_streaming", "decode_oneshot", "decode_streaming"},
    "bench_pipeline": {"baseline", "bf16", "cfg_sequential"},
    "bench_low_vram": {"low_vram"},
}


def test_benchmarks_print_json_lines(tmp_path):
    calls = []
    for name, argv in RUNS.items():
        argv = argv + ["--device", "cpu", "--table", str(tmp_path / f"{name}.md")]
        calls.append(f"sys.argv = {[name + '.py', *argv]!r}; runpy.run_path({str(REPO / 'benchmarks' / (name + '.py'))!r}, "
                     f"run_name='__main__')")
    code = "import runpy, sys\nsys.path.insert(0, {!r})\n".format(str(REPO / "benchmarks")) + "\n".join(calls)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    for name, cases in EXPECTED.items():
        got = {r["case"] for r in rows if r["bench"] == name}
        assert cases <= got, (name, got)
        table = (tmp_path / f"{name}.md").read_text()
        assert table.startswith(f"## {name}") and "| case |" in table
    by = {(r["bench"], r["case"]): r for r in rows}
    block = by[("bench_transformer", "block_vs_diffusers")]
    assert block["identical_output"] is True and block["ratio"] > 0
    dit = by[("bench_transformer", "dit")]
    assert dit["tokens"] == 416 and dit["tflops"] > 0 and 0 < dit["mfu_measured"]
    assert by[("bench_vae", "decode_streaming")]["max_abs_diff"] == 0.0
    assert by[("bench_pipeline", "baseline")]["frames_mean_abs_diff"] == 0.0
    assert by[("bench_pipeline", "cfg_sequential")]["frames_max_abs_diff"] <= 1.0
    low = by[("bench_low_vram", "low_vram")]
    assert low["fits"] and low["fp8"] and low["group_offload"] and low["output_frames"] > 0
