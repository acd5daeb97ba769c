"""talkverse.eval: AV-corr lip-sync proxy, colour/appearance drift, CLI (docs: evaluation.md §2, §3, §6).

Test data is a procedural "puppet" cartoon: a skin ellipse with a dark-red mouth whose height follows an openness
signal, and a harmonic "babble" whose loudness follows the same signal, muxed with the project's VideoWriter and
read back from the mp4 (H.264 + AAC round trip).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from talkverse.eval import (
    av_sync,
    colour_chi2,
    drift_per_second,
    mediapipe_available,
    mediapipe_mouth_openness,
    mouth_openness,
    speech_energy,
    synthetic_mouth_openness,
)
from talkverse.media.audio import load_audio
from talkverse.media.video import read_video_frames
from talkverse.media.writer import VideoWriter

SR, FPS, SIZE, SECONDS = 16000, 25, 96, 8
T = FPS * SECONDS
SPF = SR // FPS  # 640 samples per frame


def syllable_gate(seed: int, seconds: float = SECONDS) -> np.ndarray:
    """Per-sample gate in [0, 1]: voiced segments 60-250 ms with a sin^0.7 envelope, gaps 40-300 ms (§6)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    g = np.zeros(n)
    pos = int(rng.uniform(0, 0.3) * SR)
    while pos < n:
        length = int(rng.uniform(0.06, 0.25) * SR)
        env = np.sin(np.linspace(0, np.pi, length)) ** 0.7 * rng.uniform(0.3, 1.0)
        end = min(n, pos + length)
        g[pos:end] = env[: end - pos]
        pos = end + int(rng.uniform(0.04, 0.3) * SR)
    return g


def babble(gate: np.ndarray, seed: int = 0) -> np.ndarray:
    """A 150 Hz harmonic carrier (11 harmonics at 1/k) gated by ``gate``, peak 0.5, plus faint noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(gate.size) / SR
    carrier = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 12))
    y = carrier * gate
    y = 0.5 * y / max(np.abs(y).max(), 1e-9) + rng.normal(0, 0.003, y.size)
    return y.astype(np.float32)


def frame_openness(gate: np.ndarray) -> np.ndarray:
    """Ground-truth openness per video frame: the mean gate over the frame's 40 ms."""
    return gate[: T * SPF].reshape(T, SPF).mean(axis=1)


def render_puppet(openness: np.ndarray, cast: float = 0.0, texture: float = 0.0) -> np.ndarray:
    """uint8 [T, SIZE, SIZE, 3]: skin ellipse with a swaying head and a dark-red mouth of height 1 + 12·openness px.

    cast > 0 adds a progressive warm colour cast (R up, B down, linearly to ``cast`` at the last frame);
    texture > 0 adds a fixed (same every frame) Gaussian grain of that σ, so the colour histograms spread over bins.
    """
    grain = np.random.default_rng(7).normal(0, texture, (SIZE, SIZE, 3)) if texture else 0.0
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    out = np.empty((len(openness), SIZE, SIZE, 3), np.uint8)
    for i, o in enumerate(openness):
        cx = SIZE / 2 + 1.5 * np.sin(2 * np.pi * 0.35 * i / FPS)
        cy = SIZE / 2 + 0.8 * np.sin(2 * np.pi * 0.23 * i / FPS)
        img = np.empty((SIZE, SIZE, 3), np.float64)
        img[:] = (60, 120, 170)  # background
        face = ((xx - cx) / 30) ** 2 + ((yy - cy) / 38) ** 2 <= 1
        img[face] = (215, 170, 140)
        for ex in (-11, 11):  # eyes
            img[((xx - cx - ex) / 3.5) ** 2 + ((yy - cy + 8) / 3) ** 2 <= 1] = (40, 30, 30)
        mx, my, mw, mh = cx, cy + 16, 12 * (1 - 0.25 * o), 1.0 + 12 * o
        img[((xx - mx) / (mw + 2)) ** 2 + ((yy - my) / (mh + 2)) ** 2 <= 1] = (150, 90, 85)  # lips
        img[((xx - mx) / mw) ** 2 + ((yy - my) / mh) ** 2 <= 1] = (70, 10, 20)  # mouth interior
        img += grain
        if cast:
            a = cast * i / max(len(openness) - 1, 1)
            img[..., 0] += a
            img[..., 2] -= a
        out[i] = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return out


def write_mp4(path, frames: np.ndarray, wave: np.ndarray | None):
    wav = None
    if wave is not None:
        wav = path.with_suffix(".wav")
        sf.write(str(wav), wave, SR, subtype="PCM_16")
    with VideoWriter(path, fps=FPS, audio=wav) as w:
        w.write(frames)
    return path


@pytest.fixture(scope="module")
def puppet(tmp_path_factory):
    """Videos: in sync, video delayed by 4 frames, unrelated audio, static mouth, colour cast; all 8 s, 96²."""
    d = tmp_path_factory.mktemp("puppet")
    gate = syllable_gate(1)
    wave = babble(gate)
    o = frame_openness(gate)
    delayed = np.concatenate([np.full(4, o[0]), o[:-4]])  # frame i shows the openness of frame i - 4
    other = babble(syllable_gate(99), seed=5)
    vids = {
        "sync": write_mp4(d / "sync.mp4", render_puppet(o), wave),
        "delay4": write_mp4(d / "delay4.mp4", render_puppet(delayed), wave),
        "unrelated": write_mp4(d / "unrelated.mp4", render_puppet(o), other),
        "static": write_mp4(d / "static.mp4", render_puppet(np.full(T, 0.3)), wave),
        "cast": write_mp4(d / "cast.mp4", render_puppet(o, cast=24.0, texture=12.0), wave),
        "silent": write_mp4(d / "silent.mp4", render_puppet(o), None),
    }
    return {"dir": d, "openness": o, "gate": gate, "wave": wave, **vids}


def _sync_of(path, method="synthetic"):
    frames, fps = read_video_frames(path)
    wave = load_audio(path)
    m, used = mouth_openness(frames, method)
    return av_sync(m, speech_energy(wave, SR, len(frames), fps=fps)), used


# ---------------------------------------------------------------------------------------------------- unit level
def test_synthetic_readout_tracks_ground_truth():
    o = frame_openness(syllable_gate(3))
    r = np.corrcoef(synthetic_mouth_openness(render_puppet(o)), o)[0, 1]
    assert r > 0.97, r


def test_speech_energy_follows_the_gate_and_is_framed():
    gate = syllable_gate(4)
    e = speech_energy(babble(gate), SR, T, fps=FPS)
    assert e.shape == (T,) and np.isfinite(e).all()
    assert np.corrcoef(e, np.log(frame_openness(gate) + 1e-3))[0, 1] > 0.8
    # frames past the end of the audio have no window: NaN; silence floors at log(1e-4)
    e2 = speech_energy(np.zeros(SR), SR, 30, fps=FPS)
    assert np.allclose(e2[:25], np.log(1e-4)) and np.isnan(e2[-1])
    # low sample rates cap the upper band edge at 0.95·Nyquist instead of failing
    assert np.isfinite(speech_energy(np.random.default_rng(0).normal(size=8000), 4000, 50)).all()


def test_av_sync_lag_convention_on_signals():
    rng = np.random.default_rng(0)
    e = rng.normal(size=200)
    m = np.roll(e, 3)  # m[t] = e[t - 3]: the mouth lags the audio by 3 frames
    res = av_sync(m, e)
    assert res.offset == 3 and res.best > 0.95 and res.corr0 < 0.3
    assert res.conf == pytest.approx(res.best - np.median(list(res.curve.values())))
    assert set(res.curve) == set(range(-10, 11))
    flat = av_sync(np.ones(200), e)
    assert flat.best == 0.0 and flat.offset == 0
    few = av_sync(np.full(200, np.nan), e)
    assert few.offset is None and np.isnan(few.best)


# ---------------------------------------------------------------------------------------------------- mp4 round trip
def test_in_sync_puppet(puppet):
    res, used = _sync_of(puppet["sync"])
    print(f"in-sync: offset={res.offset} corr0={res.corr0:.3f} best={res.best:.3f} conf={res.conf:.3f}")
    assert used == "synthetic"
    assert abs(res.offset) <= 1 and res.corr0 >= 0.5


def test_delayed_video_moves_offset(puppet):
    res, _ = _sync_of(puppet["delay4"])
    print(f"delay +4: offset={res.offset} corr0={res.corr0:.3f} best={res.best:.3f} conf={res.conf:.3f}")
    assert abs(res.offset - 4) <= 1 and res.best >= 0.5


def test_unrelated_audio_and_static_mouth_score_low(puppet):
    ref, _ = _sync_of(puppet["sync"])
    bad, _ = _sync_of(puppet["unrelated"])
    static, _ = _sync_of(puppet["static"])
    print(f"unrelated: offset={bad.offset} corr0={bad.corr0:.3f} best={bad.best:.3f} conf={bad.conf:.3f}")
    print(f"static: offset={static.offset} corr0={static.corr0:.3f} best={static.best:.3f} conf={static.conf:.3f}")
    assert bad.best < 0.3 and bad.best < ref.best - 0.4
    assert static.best < 0.3


def test_auto_method_on_the_puppet(puppet):
    """auto = mediapipe when it imports and tracks the face in > 50 % of frames, else the dark-red readout.

    mediapipe (when installed) does track this 96² puppet, unlike the 64² cartoons of §6; either way the scan
    must find the known sync.
    """
    res, used = _sync_of(puppet["sync"], method="auto")
    print(f"in-sync ({used}): offset={res.offset} corr0={res.corr0:.3f} best={res.best:.3f} conf={res.conf:.3f}")
    assert used == ("mediapipe" if mediapipe_available() else "synthetic")
    assert abs(res.offset) <= 1 and res.corr0 >= 0.5


def test_mediapipe_real_face_or_clear_import_error():
    from skimage.data import astronaut

    frames = np.stack([astronaut()] * 3)
    if mediapipe_available():
        m = mediapipe_mouth_openness(frames)
        assert np.isfinite(m).all() and (m >= 0).all() and (m < 1.0).all()
        assert mouth_openness(frames, "auto")[1] == "mediapipe"
    else:
        with pytest.raises(ImportError, match="pip install"):
            mediapipe_mouth_openness(frames)


# ---------------------------------------------------------------------------------------------------- drift
def test_colour_cast_drift_increases():
    o = frame_openness(syllable_gate(1))
    d = drift_per_second(render_puppet(np.zeros(T), cast=24.0, texture=12.0), fps=FPS)
    print("cast chi2/s:", np.round(d.colour_chi2_per_second, 4), "slope/min", round(d.colour_chi2_slope_per_min, 3),
          "appearance/s:", np.round(d.appearance_per_second, 4), "slope/min", round(d.appearance_slope_per_min, 3))
    assert np.all(np.diff(d.colour_chi2_per_second) > 0) and np.all(np.diff(d.appearance_per_second) > 0)
    assert d.colour_chi2_slope_per_min > 0 and d.appearance_slope_per_min > 0
    chi = d.colour_chi2
    assert chi[0] == 0 and 0 < chi[-1] < 1
    rho = np.corrcoef(np.argsort(np.argsort(chi)), np.arange(T))[0, 1]  # Spearman vs time
    assert rho > 0.99, rho
    # a static video has no drift at all
    s = drift_per_second(render_puppet(np.full(T, 0.2), texture=12.0)[:1].repeat(T, 0), fps=FPS)
    assert np.all(s.colour_chi2 == 0) and np.all(s.appearance == 0)
    assert s.colour_chi2_slope_per_min == 0 and s.appearance_slope_per_min == 0
    # an explicit reference
    assert colour_chi2(render_puppet(o[:5]), reference=np.zeros((SIZE, SIZE, 3), np.uint8)).min() > 0.9


# ---------------------------------------------------------------------------------------------------- CLI
def _cli(capsys, *args):
    """Run the CLI in-process (a subprocess costs ~10 s here for `import talkverse`): (exit code, stdout, stderr)."""
    from talkverse.eval.__main__ import main

    capsys.readouterr()
    try:
        rc = main([str(a) for a in args])
    except SystemExit as e:  # argparse: --help / bad arguments
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_text_json_and_plot(puppet, tmp_path, capsys):
    png = tmp_path / "out.png"
    rc, out, err = _cli(capsys, puppet["cast"], "--method", "synthetic", "--plot", png)
    assert rc == 0, err
    with capsys.disabled():
        print("\n" + out)
    assert "offset=" in out and "corr0=" in out and "method=synthetic" in out
    assert "colour chi2" in out and "appearance distance" in out and "slope" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    rc, out, err = _cli(capsys, puppet["delay4"], "--json", "--method", "synthetic")
    assert rc == 0, err
    res = json.loads(out)
    assert abs(res["lip_sync_proxy"]["offset"] - 4) <= 1
    assert res["drift"]["colour_chi2_slope_per_min"] is not None

    # --audio overrides the track: the silent video evaluated with the matching wav is in sync
    rc, out, err = _cli(capsys, puppet["silent"], "--audio", puppet["dir"] / "sync.wav", "--json",
                        "--method", "synthetic")
    res = json.loads(out)["lip_sync_proxy"]
    assert rc == 0 and abs(res["offset"]) <= 1 and res["corr0"] >= 0.5
    rc, out, err = _cli(capsys, puppet["silent"])  # no audio track: drift only, lip sync skipped, still exit 0
    assert rc == 0 and "skipped" in out


def test_cli_errors_and_help(tmp_path, capsys):
    # one real `python -m` run: the entry point, exit status 2 and a single error line
    r = subprocess.run([sys.executable, "-m", "talkverse.eval", str(tmp_path / "missing.mp4")], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "not found" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    rc, out, err = _cli(capsys, bad)
    assert rc == 2 and "bad.mp4" in err and len(err.strip().splitlines()) == 1
    rc, out, err = _cli(capsys, "--help")
    assert rc == 0 and "AV-corr" in out and "--plot" in out


def test_heldout_sync_table_on_ground_truth_clips(tmp_path):
    """talkverse.eval.demo's score table on real synthetic clips (their ground-truth videos): the clips' own audio is on
    the diagonal and scores high; the shuffled controls (next clip's audio, every other clip's) score far lower."""
    from talkverse.eval.demo import _summary, _sync_table, clips_of
    from talkverse.media.audio import load_audio
    from talkverse.media.video import read_video_frames
    from talkverse.testing.synthetic import write_synthetic_dataset

    write_synthetic_dataset(tmp_path, 4, size=64, seconds=(4.0, 5.0), seed=5, text_dim=8)
    clips = clips_of(tmp_path)
    table = _sync_table([read_video_frames(mp4)[0] for _, mp4, _ in clips], [load_audio(mp4) for _, mp4, _ in clips])
    assert table.shape == (4, 4)
    res = _summary(table)
    assert res["median_best"] >= 0.7, res
    assert res["median_shuffled_best"] <= res["median_best"] - 0.3, res
    assert res["median_shuffled_best_all_pairs"] <= res["median_best"] - 0.3, res
    assert np.diag(table).min() > np.median(table[~np.eye(4, dtype=bool)])
