"""Numeric parity with the reference fixtures (../shared/reference/parity); skipped only where they are absent."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import REPO
from talkverse.parity import run_suites


@pytest.mark.parametrize("suite", ["dit", "lora"])
def test_parity_suite(parity_dir, suite):
    results = list(run_suites(parity_dir, [suite]))
    assert results, f"no {suite} case found in {parity_dir}"
    failures = [(r.name, r.error, [(n, e, t) for n, e, t in r.details if e > t]) for r in results if not r.passed]
    assert not failures, failures


def test_dit_suite_compares_every_intermediate(parity_dir):
    """Each case's every stored out./mid. tensor is compared (no silently skipped fixture tensor)."""
    from safetensors import safe_open

    for res in run_suites(parity_dir, ["dit"]):
        name = res.name.split("/", 1)[1]
        with safe_open(str(parity_dir / "dit_tiny" / f"case_{name}.safetensors"), "pt") as f:
            stored = {k for k in f.keys() if k.startswith(("out.", "mid."))}
        compared = {n for n, _, _ in res.details}
        assert stored <= compared, stored - compared


def test_check_parity_cli(parity_dir, tmp_path):
    script = REPO / "scripts" / "check_parity.py"
    ok = subprocess.run([sys.executable, str(script), "--fixtures", str(parity_dir), "--only", "dit,lora"],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    lines = [ln for ln in ok.stdout.splitlines() if ln.startswith(("dit/", "lora/"))]
    import json

    n_cases = len(list((parity_dir / "dit_tiny").glob("case_*.safetensors")))
    n_cases += len(json.loads((parity_dir / "lora" / "manifest.json").read_text()).get("alphas", [8]))
    assert len(lines) == n_cases and all(ln.split()[-1] == "PASS" for ln in lines)
    empty = subprocess.run([sys.executable, str(script), "--fixtures", str(tmp_path), "--only", "dit,lora"],
                           capture_output=True, text=True)
    assert empty.returncode != 0 and "no parity case" in empty.stderr


def _failures(results):
    return [(r.name, r.error, [(n, e, t) for n, e, t in r.details if e > t]) for r in results if not r.passed]


def test_s2v14b_dit_and_audio(parity14_dir):
    """S2V-14B: every DiT case with every stored intermediate (all 3 injectors), and the 30 -> 16 fps audio chain."""
    from safetensors import safe_open

    from talkverse.parity import fixture_model

    assert fixture_model(parity14_dir) == "s2v-14B" and fixture_model(parity14_dir.parent / "parity") == "s2v-5B"
    results = list(run_suites(parity14_dir, ["dit", "audio"]))
    assert len(results) == 7 and not _failures(results), _failures(results)
    for res in results[:6]:
        with safe_open(str(parity14_dir / "dit_tiny" / f"case_{res.name.split('/', 1)[1]}.safetensors"), "pt") as f:
            stored = {k for k in f.keys() if k.startswith(("out.", "mid."))}
        assert stored <= {n for n, _, _ in res.details}


@pytest.mark.slow
def test_s2v14b_pipeline(parity14_dir):
    """Both S2V-14B pipeline variants (no pose / pose), staged and end to end."""
    results = list(run_suites(parity14_dir, ["pipeline"]))
    assert [r.name for r in results] == ["pipeline/no_pose/stages", "pipeline/no_pose/e2e", "pipeline/pose/stages",
                                         "pipeline/pose/e2e"]
    assert not _failures(results), _failures(results)
