"""The shipped tiny demo model (talkverse/demo/): size, the no-argument generate.py run, and real lip sync on held-out
clips.

The held-out clips are regenerated here from their seed (``talkverse.testing.synthetic``, seed 2, the same clips the
recipe's held-out split holds); training used seed 1, so none of these identities or tracks were seen.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers import REPO
from talkverse.demo import demo_dir, demo_model_dir

DEMO = demo_dir()
MODEL = demo_model_dir()


def test_demo_files_shipped_and_small():
    for p in (MODEL / "model_index.json", MODEL / "transformer" / "config.json", MODEL / "vae" / "config.json",
              DEMO / "face.png", DEMO / "speech.wav"):
        assert p.is_file(), f"missing {p}"
    total = sum(f.stat().st_size for f in DEMO.rglob("*") if f.is_file())
    assert total <= 20 * 2**20, f"talkverse/demo/ is {total / 2**20:.1f} MiB (> 20 MiB)"


@pytest.mark.slow
def test_generate_without_arguments_writes_mp4_with_audio(tmp_path):
    import av

    env = dict(os.environ, OMP_NUM_THREADS="2")
    t0 = time.time()
    # Run from an empty folder: the demo is package data, the output goes to ./outputs.
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



def _openness_probe(model, feature_extractor, seeds: range, ctx: int = 1) -> float:
    """Median held-out r of a ridge read-out of the encoder's states (all layers, +-ctx frames at 25 fps) against the
    ground-truth mouth openness of babble tracks: fitted on the first 2/3 of ``seeds``, scored on the rest."""
    from talkverse.models.wav2vec import Wav2Vec2Features
    from talkverse.testing.synthetic import babble_audio, openness_per_frame

    w2v = Wav2Vec2Features(model.eval(), feature_extractor)
    xs, ys = [], []
    for seed in seeds:
        wave, gate = babble_audio(3.0, 9_000_000 + seed)
        y = openness_per_frame(gate)
        f = w2v.features_25fps(wave)  # [L+1, T, C]
        T = min(f.shape[1], len(y))
        f = f[:, :T].permute(1, 0, 2).reshape(T, -1).numpy()
        pad = np.pad(f, ((ctx, ctx), (0, 0)), mode="edge")
        xs.append(np.concatenate([pad[i:i + T] for i in range(2 * ctx + 1)], 1))
        ys.append(y[:T])
    n_fit = 2 * len(xs) // 3
    X, Y = np.concatenate(xs[:n_fit]), np.concatenate(ys[:n_fit])
    mu, sd = X.mean(0), X.std(0) + 1e-6
    Xn = (X - mu) / sd
    w = np.linalg.solve(Xn.T @ Xn + 10.0 * np.eye(Xn.shape[1]), Xn.T @ (Y - Y.mean()))
    return float(np.median([np.corrcoef(((x - mu) / sd) @ w, y)[0, 1] for x, y in zip(xs[n_fit:], ys[n_fit:])]))


def test_shipped_audio_encoder_carries_mouth_openness():
    """The shipped tiny wav2vec2 was fitted (scripts/fit_demo_audio_encoder.py) so its states carry loudness: a linear
    read-out predicts the mouth openness of unseen babble far better than from the random encoder it started from
    (measured when fitted: r 0.96 against 0.70 on the held-out video clips)."""
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

    from talkverse.testing.tiny import tiny_pipeline

    fe = Wav2Vec2FeatureExtractor.from_pretrained(MODEL / "feature_extractor")
    fitted = _openness_probe(Wav2Vec2Model.from_pretrained(MODEL / "audio_encoder"), fe, range(18))
    random = _openness_probe(tiny_pipeline(seed=0).audio_encoder, fe, range(18))
    print(f"openness read-out r: fitted {fitted:.3f}, random {random:.3f}")
    assert fitted >= 0.9, fitted
    assert fitted >= random + 0.1, (fitted, random)

# Issue 6's bars: median best-lag AV-corr >= 0.6 and median |lag| <= 1 frame. Its third bar, shuffled audio <= 0.2,
# is below what the clips' own ground-truth videos score (a max over 21 lags of ~100-150-frame series: 0.196 with the
# next clip's audio and 0.243 over all pairs on the 10 held-out clips, 0.22 / 0.25 on the first 3), so the test asks
# that the control sit at the ground truth's level: the model follows its own audio, not audio in general.
MIN_MEDIAN_BEST = 0.6
MAX_SHUFFLED_OVER_GROUND_TRUTH = 0.05


@pytest.mark.slow
def test_demo_lip_sync_on_heldout_clips(tmp_path):
    """On the first 3 held-out clips: the mouth follows the clip's own audio (median best-lag AV-corr >= 0.6), in sync
    (median |lag| <= 1 frame), and other clips' audio scores no higher than it does on the ground-truth videos."""
    from talkverse.eval.demo import evaluate_heldout
    from talkverse.pipelines.loading import load_pipeline
    from talkverse.testing.synthetic import write_synthetic_dataset

    root = tmp_path / "heldout"
    write_synthetic_dataset(root, 3, size=128, seconds=(4.0, 6.0), seed=2, text_dim=40)
    pipe = load_pipeline(str(MODEL))
    pipe.set_progress_bar_config(disable=True)
    res = evaluate_heldout(pipe, root, frames_per_clip=24, steps=20, guidance=4.0)
    print(res)
    assert res["median_best"] >= MIN_MEDIAN_BEST, res
    assert res["median_abs_lag"] <= 1, res
    null = res["ground_truth"]["median_shuffled_best_all_pairs"]
    assert res["median_shuffled_best_all_pairs"] <= null + MAX_SHUFFLED_OVER_GROUND_TRUTH, res
    assert res["median_best"] - res["median_shuffled_best_all_pairs"] >= 0.3, res
    assert np.isfinite([c["best"] for c in res["clips"]]).all()
