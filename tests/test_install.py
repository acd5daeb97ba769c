"""A non-editable install works: the wheel carries the presets and the demo, and ``talkverse-generate`` with no
arguments, run from an empty folder in a fresh venv, writes the demo mp4 from the installed copy."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers import REPO


@pytest.mark.slow
def test_wheel_serves_the_demo_from_an_empty_folder(tmp_path):
    import av

    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), str(REPO)], check=True, capture_output=True, timeout=600)
    (wheel,) = wheels.glob("talkverse-*.whl")
    venv = tmp_path / "venv"
    # The dependencies (torch, diffusers, ...) are reused from this interpreter; talkverse itself is not.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300)
    py, bindir = venv / "bin" / "python", venv / "bin"
    # --ignore-installed: the checkout's editable install is visible from the venv and must not satisfy the wheel
    subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "-q", str(wheel)],
                   check=True, capture_output=True, timeout=600)
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{bindir}:{env.get('PATH', '')}"
    where = subprocess.run([str(py), "-c", "import talkverse; print(talkverse.__file__)"], cwd=empty, env=env,
                           capture_output=True, text=True, timeout=120)
    assert where.returncode == 0, where.stderr
    installed = where.stdout.strip()
    assert installed.startswith(str(venv)) and not installed.startswith(str(REPO)), installed
    run = subprocess.run([str(bindir / "talkverse-generate")], cwd=empty, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    (mp4,) = (empty / "outputs").glob("*.mp4")
    assert str(mp4.relative_to(empty)) in run.stdout
    with av.open(str(mp4)) as c:
        assert len(c.streams.video) == 1 and len(c.streams.audio) == 1
        assert (c.streams.video[0].codec_context.width, c.streams.video[0].codec_context.height) == (128, 128)
