"""The shipped tiny demo model (demo/): size, the no-argument generate.py run, and real lip sync on held-out clips.

The held-out clips are regenerated here from their seed (``talkverse.data.synthetic``, seed 2, the same clips the
recipe's held-out split holds); training used seed 1, so none of these identities or tracks were seen.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "demo"
MODEL = DEMO / "talkverse-tiny-demo"


def test_demo_files_shipped_and_small():
    for p in (MODEL / "model_index.json", MODEL / "transformer" / "config.json", MODEL / "vae" / "config.json",
              DEMO / "face.png", DEMO / "speech.wav"):
        assert p.is_file(), f"missing {p}"
    total = sum(f.stat().st_size for f in DEMO.rglob("*") if f.is_file())
    assert total <= 20 * 2**20, f"demo/ is {total / 2**20:.1f} MiB (> 20 MiB)"


@pytest.mark.slow
def test_generate_without_arguments_writes_mp4_with_audio(tmp_path):
    import av

    env = dict(os.environ, OMP_NUM_THREADS="2")
    t0 = time.time()
    # Run from an empty folder: the demo is found next to generate.py, the output goes to ./outputs.
    proc = subprocess.run([sys.executable, str(REPO / "generate.py")], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    seconds = time.time() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    mp4s = list((tmp_path / "outputs").glob("*.mp4"))
    assert len(mp4s) == 1, proc.stdout[-2000:]
    assert str(mp4s[0].name) in proc.stdout + proc.stderr, "generate.py must say where it wrote the video"
    with av.open(str(mp4s[0])) as c:
        assert len(c.streams.video) == 1 and len(c.streams.audio) == 1
        v = c.streams.video[0]
        assert (v.codec_context.width, v.codec_context.height) == (128, 128)
        duration = float(c.duration) / 1e6
    import soundfile as sf

    audio_seconds = sf.info(str(DEMO / "speech.wav")).duration
    assert abs(duration - audio_seconds) < 0.1, (duration, audio_seconds)
    assert seconds < 180, f"python generate.py took {seconds:.0f} s (> 3 min)"


# What the shipped demo model reaches on the first 3 held-out clips (0.49 / 0.48 / 0.54, shuffled 0.18 / 0.14 / 0.32
# when it was shipped; docs/demo.md), with a margin. Issue 6 asks for median >= 0.6 and shuffled <= 0.2, which this model does
# NOT reach yet: these floors guard against regressions of the pipeline (sync, motion, decode) until a better model
# ships, when they should be raised to the bars.
MIN_MEDIAN_BEST = 0.4
MIN_MARGIN_OVER_SHUFFLED = 0.15


@pytest.mark.slow
def test_demo_lip_sync_on_heldout_clips(tmp_path):
    """On the first 3 held-out clips: the mouth follows the clip's own audio (median best-lag AV-corr above a floor),
    in sync (median |lag| <= 1 frame), and clearly better than another clip's audio (the shuffled control)."""
    from talkverse.data.synthetic import write_synthetic_dataset
    from talkverse.eval.demo import evaluate_heldout
    from talkverse.pipelines.loading import load_pipeline

    root = tmp_path / "heldout"
    write_synthetic_dataset(root, 3, size=128, seconds=(4.0, 6.0), seed=2, text_dim=40)
    pipe = load_pipeline(str(MODEL))
    pipe.set_progress_bar_config(disable=True)
    res = evaluate_heldout(pipe, root, frames_per_clip=24, steps=20, guidance=4.0)
    print(res)
    assert res["median_best"] >= MIN_MEDIAN_BEST, res
    assert res["median_abs_lag"] <= 1, res
    assert res["median_best"] - res["median_shuffled_best"] >= MIN_MARGIN_OVER_SHUFFLED, res
    assert np.isfinite([c["best"] for c in res["clips"]]).all()
