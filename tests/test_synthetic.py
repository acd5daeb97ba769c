"""Synthetic talking-face dataset (evaluation.md §6): recipe ranges, ground truth vs readout, real on-disk layout."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from talkverse.testing.synthetic import (
    FaceIdentity,
    babble_audio,
    babble_gate,
    clip_seeds,
    draw_identity,
    espeak_audio,
    load_ground_truth,
    main,
    mouth_readout,
    openness_per_frame,
    reference_image,
    render_clip,
    write_synthetic_dataset,
)

REPO = Path(__file__).resolve().parents[1]


def test_identity_reproducible_and_in_recipe_ranges():
    a, b, c = draw_identity(3), draw_identity(3), draw_identity(4)
    assert a == b and a != c
    assert FaceIdentity.from_json(a.to_json()) == a
    ids = [draw_identity(s) for s in range(200)]
    assert len({i.to_json() for i in ids}) == 200
    for i in ids:
        assert all(30 <= v <= 225 for v in i.background)
        assert all(90 <= v <= 239 for v in i.skin)
        assert all(0 <= v <= 119 for v in i.hair)
        assert 15 <= i.rx <= 21 and 19 <= i.ry <= 25 and 5.5 <= i.eye <= 8 and 5 <= i.mouth <= 8
        assert 0.3 <= i.hair_frac <= 0.7 and 0.5 <= i.sway <= 2 and 0 <= i.phase <= 2 * np.pi
    # the draws actually span the ranges
    rx = np.array([i.rx for i in ids])
    assert rx.min() < 15.5 and rx.max() > 20.5


def test_babble_gate_statistics():
    sr = 16000
    seg_ms, gap_ms, levels, firsts = [], [], [], []
    for seed in range(20):
        _, segs = babble_gate(4 * sr, np.random.default_rng(seed), sr)
        firsts.append(segs[0][0] / sr * 1000)
        for k, (s, n, lv) in enumerate(segs):
            seg_ms.append(n / sr * 1000)
            levels.append(lv)
            if k + 1 < len(segs):
                gap_ms.append((segs[k + 1][0] - s - n) / sr * 1000)
    for v, lo, hi in ((seg_ms, 60, 250), (gap_ms, 40, 300), (levels, 0.3, 1.0), (firsts, 0, 300)):
        v = np.asarray(v)
        assert v.min() >= lo - 0.1 and v.max() <= hi + 0.1
        assert abs(v.mean() - (lo + hi) / 2) < 0.15 * (hi - lo)  # roughly uniform

    wave, gate = babble_audio(3.0, seed=7)
    assert wave.dtype == np.float32 and gate.dtype == np.float32 and len(wave) == len(gate) == 48000
    assert gate.min() == 0.0 and 0.3 <= gate.max() <= 1.0
    voiced = (gate > 0).mean()
    assert 0.25 < voiced < 0.85  # mean segment 155 ms vs mean gap 170 ms -> about half voiced
    # peak-normalised to 0.5 plus N(0, 0.003) noise; silence is just the noise
    assert 0.48 < np.abs(wave).max() < 0.52
    assert 0.002 < wave[gate == 0].std() < 0.004
    # reproducible per seed, different across seeds
    w2, g2 = babble_audio(3.0, seed=7)
    assert np.array_equal(wave, w2) and np.array_equal(gate, g2)
    assert not np.array_equal(gate, babble_audio(3.0, seed=8)[1])
    # energy follows the gate
    env = np.abs(wave).reshape(-1, 640).mean(1)
    assert np.corrcoef(env, openness_per_frame(gate))[0, 1] > 0.9


def test_openness_per_frame_length_and_range():
    for seconds in (2.0, 3.0, 2.53, 3.999):
        _, gate = babble_audio(seconds, seed=1)
        o = openness_per_frame(gate)
        # documented: T = ceil(len(gate) / 640) (a trailing partial frame is kept)
        assert len(o) == math.ceil(len(gate) / 640) == math.ceil(round(seconds * 16000) / 640)
        assert o.dtype == np.float32 and o.min() >= 0 and o.max() <= 1
        assert np.isclose(o[1], gate[640:1280].mean(), atol=1e-6)
    assert len(openness_per_frame(np.ones(641))) == 2


@pytest.mark.parametrize("size", [64, 128])
def test_readout_tracks_ground_truth(size):
    ident = draw_identity(11)
    _, gate = babble_audio(3.0, seed=5)
    o = openness_per_frame(gate)
    r = render_clip(ident, o, size=size, seed=2)
    assert r.frames.shape == (75, size, size, 3) and r.frames.dtype == np.uint8
    assert r.keypoints.shape == (75, 1, 133, 3) and r.person_bbox.shape == (75, 4) and r.mouth_box.shape == (75, 4)
    assert np.all(r.keypoints[:, 0, 23:91, 2] == 1)
    face = r.keypoints[:, 0, 23:91, :2]
    assert face.min() >= 0 and face.max() < size
    # anti-aliased: intermediate colours exist along edges
    assert len(np.unique(r.frames[0].reshape(-1, 3), axis=0)) > 20
    c_half = np.corrcoef(mouth_readout(r.frames), o)[0, 1]
    c_box = np.corrcoef(mouth_readout(r.frames, r.mouth_box), o)[0, 1]
    assert c_half >= 0.95 and c_box >= 0.95, (c_half, c_box)
    # blinks: max(1, floor(3/3)) = 1 blink of 3 frames
    assert len(r.blinks) == 1
    # reproducible
    assert np.array_equal(render_clip(ident, o, size=size, seed=2).frames, r.frames)
    # the reference image is a closed-mouth frame with little dark red
    ref = reference_image(ident, size)
    assert ref.shape == (size, size, 3)
    assert mouth_readout(ref)[0] < mouth_readout(r.frames).max() / 4


def test_readout_over_many_identities():
    _, gate = babble_audio(2.0, seed=9)
    o = openness_per_frame(gate)
    cs = [np.corrcoef(mouth_readout(render_clip(draw_identity(s), o, size=64, seed=s).frames), o)[0, 1]
          for s in range(20)]
    assert min(cs) > 0.95 and np.mean(cs) > 0.98, cs


def test_clip_seeds_disjoint_across_base_seeds():
    a = {tuple(clip_seeds(0, i).values()) for i in range(100)}
    b = {tuple(clip_seeds(1, i).values()) for i in range(100)}
    assert len(a) == 100 and not (a & b)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn")
    csv = write_synthetic_dataset(root, num_clips=2, size=128, seconds=(2.0, 3.0), seed=0)
    return root, csv


def test_dataset_reads_back(dataset):
    import torch

    from talkverse.data.dataset import TalkVerseDataset
    from talkverse.data.rows import read_rows
    from talkverse.data.text_cache import TextEmbeddingCache

    root, csv = dataset
    rows = read_rows(csv, root)
    assert [r.clip_id for r in rows] == ["videos/clip_00000", "videos/clip_00001"]
    for r in rows:
        assert r.dwpose_path is not None and r.dwpose_path.is_file() and r.fps == 25
    cache = TextEmbeddingCache(root / "text_embeddings")
    assert tuple(cache.null().shape) == (1, 40)
    ds = TalkVerseDataset(rows, bucket="128x128", num_frames=8, text_cache=cache)
    for i in range(len(ds)):
        item = ds[i]
        assert item["index"] == i
        assert tuple(item["video"].shape[0:1]) == (3,) and tuple(item["video"].shape[2:]) == (128, 128)
        assert item["context"].shape[-1] == 40 and item["audio"].numel() > 0
        assert torch.isfinite(item["roi_weight"]).all()
    gt = load_ground_truth(root / "videos" / "clip_00000.gt.npz")
    assert isinstance(gt["identity"], FaceIdentity) and gt["identity"] == draw_identity(clip_seeds(0, 0)["identity"])
    assert gt["openness"].dtype == np.float32 and gt["mouth_box"].shape == (len(gt["openness"]), 4)


def test_mp4_streams_and_decoded_readout(dataset):
    root, _ = dataset
    for c in range(2):
        gt = load_ground_truth(root / "videos" / f"clip_{c:05d}.gt.npz")
        T = len(gt["openness"])
        assert 50 <= T <= 75
        with np.load(root / "videos" / f"clip_{c:05d}.npz") as z:
            assert z["keypoints_info"].shape == (T, 1, 133, 3) and z["person_bbox_xyxy"].shape == (T, 4)
        with av.open(str(root / "videos" / f"clip_{c:05d}.mp4")) as cont:
            vs, aus = cont.streams.video, cont.streams.audio
            assert len(vs) == 1 and len(aus) == 1
            assert vs[0].average_rate == 25 and vs[0].codec_context.name == "h264"
            assert aus[0].codec_context.name == "aac"
            frames = np.stack([f.to_ndarray(format="rgb24") for f in cont.decode(video=0)])
        with av.open(str(root / "videos" / f"clip_{c:05d}.mp4")) as cont:
            a = cont.streams.audio[0]
            declared_s = float(a.duration * a.time_base)
            n_audio = sum(f.samples for f in cont.decode(audio=0))
            sr = a.sample_rate
        assert frames.shape == (T, 128, 128, 3)
        video_s = T / 25
        # the container's audio duration matches the video within one frame (it is exactly T * 640 samples) ...
        assert abs(declared_s - video_s) <= 1 / 25 + 1e-6, (declared_s, video_s)
        # ... and the decoder only adds the AAC padding of the last 1024-sample frame
        assert 0 <= n_audio - declared_s * sr < 1024, (n_audio, declared_s * sr)
        o = gt["openness"]
        assert np.corrcoef(mouth_readout(frames), o)[0, 1] >= 0.9
        assert np.corrcoef(mouth_readout(frames, gt["mouth_box"]), o)[0, 1] >= 0.9


@pytest.mark.filterwarnings("ignore:'talkverse.testing.synthetic' found in sys.modules:RuntimeWarning")
def test_cli_help_and_module_entry(tmp_path, capsys, monkeypatch):
    import runpy

    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "--num_clips" in text and "--audio" in text and "babble" in text
    assert main(["--out", str(tmp_path / "d"), "--num_clips", "1", "--size", "64", "--min_seconds", "0.4",
                 "--max_seconds", "0.4", "--seed", "3", "--reference_png"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "d" / "metadata.csv")
    assert (tmp_path / "d" / "reference_clip_00000.png").is_file()
    # the script and the module entry both run main()
    script = (REPO / "scripts" / "make_synthetic_dataset.py").read_text()
    assert "from talkverse.testing.synthetic import main" in script
    monkeypatch.setattr(sys, "argv", ["synthetic", "--help"])
    with pytest.raises(SystemExit) as e:
        runpy.run_module("talkverse.testing.synthetic", run_name="__main__")
    assert e.value.code == 0


def test_espeak_audio_gate():
    wave, gate = espeak_audio("hello there, how are you", seed=1, seconds=2.0)
    assert len(wave) == len(gate) == 32000
    assert gate.min() >= 0 and gate.max() == pytest.approx(1.0, abs=1e-6)
    assert 0.48 < np.abs(wave).max() <= 0.5001
    o = openness_per_frame(gate)
    env = np.sqrt((wave.astype(np.float64) ** 2).reshape(-1, 640).mean(1))
    assert np.corrcoef(env, o)[0, 1] > 0.8
