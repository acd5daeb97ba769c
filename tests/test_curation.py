"""talkverse-curate end to end on the raw-video suite with known answers (docs/curation.md): every case ends where it
must; 1 worker = 2 workers; a killed run resumes without duplicates; the evaluator agrees with the sync score; the
output trains. Ray is started for real once per session (conftest.ray_local)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO

pytestmark = pytest.mark.slow

# lighter sampling than the defaults, so that the suite runs in minutes on 2 shared cores
FAST = ["skeleton.fps=2", "face.sample_fps=2", "quality.sample_fps=1"]
SUBSET = ("fps24", "fps30", "silent")
RESUME = ("shifted8", "fps30", "fps24", "music")


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    from talkverse.testing.rawsuite import build_suite, load_suite

    folder = tmp_path_factory.mktemp("raw")
    build_suite(folder)
    return folder, load_suite(folder)


@pytest.fixture(scope="module")
def curated(suite, ray_local, tmp_path_factory):
    """The whole suite curated by 2 workers."""
    from talkverse.curation.config import load_config
    from talkverse.curation.engine import run
    from talkverse.curation.ingest import list_inputs

    folder, _ = suite
    out = tmp_path_factory.mktemp("curated2")
    cfg = load_config(None, FAST)
    t0 = time.time()
    summ = run(list_inputs(str(folder), cfg.ingest.extensions), out, cfg, workers=2)
    print(f"\nsuite curated by 2 workers in {time.time() - t0:.0f} s: {summ['accepted']} accepted")
    return out, summ


def _records(out: Path) -> dict[str, list[dict]]:
    """source stem -> its clip records."""
    from talkverse.curation.records import read_clip_records

    by: dict[str, list[dict]] = {}
    for r in read_clip_records(out):
        by.setdefault(Path(r["input"]).stem, []).append(r)
    return by


def _metadata(out: Path) -> list[dict]:
    with open(out / "metadata.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_every_case_ends_where_it_must(suite, curated):
    _, cases = suite
    out, summ = curated
    by = _records(out)
    assert set(by) == set(cases)
    table = []
    for name, case in cases.items():
        exp, recs = case["expected"], by[name]
        if exp["accepted"]:
            assert [r["stage"] for r in recs] == [""] * exp["clips"], (name, [(r["stage"], r["reason"]) for r in recs])
            assert all(r["src_fps"] == pytest.approx(exp["fps"]) for r in recs)
        else:
            assert [(r["stage"], r["reason"]) for r in recs] == [(exp["stage"], exp["reason"])], name
        table.append(f"{name}: " + ", ".join(r["stage"] + ":" + r["reason"] if r["stage"] else "accepted" for r in recs))
    print("\n" + "\n".join(table))
    # the 3 hard cuts split the 40 s video exactly at the scene boundaries (after the 0.2 s trim)
    starts = sorted(r["start"] for r in by["cuts40"])
    assert np.allclose(starts, [0.2, 10.2, 20.2, 30.2], atol=0.1)
    # the shifted clip: the offset is found (8 frames late audio = -8) and corrected
    s = json.loads(by["shifted8"][0]["scores"])
    assert abs(s["sync_offset_found"] - cases["shifted8"]["expected"]["offset"]) <= 1
    assert s["sync_offset"] == 0 and by["shifted8"][0]["audio_shift"] == pytest.approx(0.32, abs=0.041)
    print(f"shifted8: offset found {s['sync_offset_found']:+.0f} frames (truth -8); after the shift "
          f"{s['sync_offset']:+.0f}, conf {s['sync_conf']:.3f}")
    assert summ["accepted"] == 7 and summ["stages"]["ingest"]["reasons"] == {
        "unreadable": 1, "no_audio": 1, "too_short": 1, "too_small": 1}


def test_outputs_are_what_the_trainer_reads(curated):
    from talkverse.data.dataset import TalkVerseDataset
    from talkverse.data.rows import read_rows

    out, summ = curated
    rows = read_rows(out / "metadata.csv", out)
    assert len(rows) == 7 and all(r.video_path.is_file() and r.dwpose_path.is_file() for r in rows)
    fps24 = next(r for r in rows if r.extra["source"].endswith("fps24.mp4"))
    assert fps24.fps == 24 and fps24.scenes == [(0, 109)]  # original-fps frames of the 4.6 s clip
    import av

    with av.open(str(fps24.video_path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert (float(v.average_rate), v.codec_context.name, a.codec_context.name, a.sample_rate) == (25.0, "h264",
                                                                                                       "aac", 16000)
    with np.load(fps24.dwpose_path) as z:
        assert z["keypoints_info"].shape[1:] == (1, 133, 3) and z["person_bbox_xyxy"].shape[1:] == (1, 4)
    ds = TalkVerseDataset(rows, bucket="128x128", num_frames=24)
    item = ds.load_row(0, ds.rng_for(0))
    assert item["roi_weight"].max() > 1.5  # the skeleton's face box weights the loss
    with open(out / "rejects.csv", newline="") as f:
        rej = list(csv.DictReader(f))
    assert len(rej) == 8 and all(r["source"] and r["stage"] and r["reason"] for r in rej)
    blurred = next(r for r in rej if r["source"].endswith("blurred.mp4"))
    assert float(blurred["end"]) > float(blurred["start"]) and "sharpness" in json.loads(blurred["scores"])
    import pandas as pd

    assert len(pd.read_parquet(out / "rejects.parquet")) == 8
    s = json.loads((out / "summary.json").read_text())
    assert s["stages"]["speech"]["reasons"] == {"no_speech": 2} and s["stages"]["face"]["reasons"] == {
        "two_or_more_faces": 1}
    assert (out / "scores.png").stat().st_size > 10_000


def test_one_worker_gives_the_same_clips_as_two(suite, curated, ray_local, tmp_path):
    from talkverse.curation.config import load_config
    from talkverse.curation.engine import run

    folder, _ = suite
    out2, _ = curated
    lst = tmp_path / "inputs.txt"
    lst.write_text("".join(f"{folder / n}.mp4\n" for n in SUBSET))
    from talkverse.curation.ingest import list_inputs

    cfg = load_config(None, FAST)
    out1 = tmp_path / "curated1"
    run(list_inputs(str(lst), cfg.ingest.extensions), out1, cfg, workers=1)
    rows1 = _metadata(out1)
    rows2 = [r for r in _metadata(out2) if Path(r["source"]).stem in SUBSET]
    key = lambda r: r["clip_id"]  # noqa: E731
    assert sorted(rows1, key=key) == sorted(rows2, key=key) and len(rows1) == 2
    for r in rows1:
        for sub in ("video_path", "dwpose_path"):
            h1, h2 = (hashlib.sha256((o / r[sub]).read_bytes()).hexdigest() for o in (out1, out2))
            assert h1 == h2, r[sub]


def test_python_m_talkverse_eval_agrees_with_the_sync_score(curated):
    out, _ = curated
    row = next(r for r in _metadata(out) if "shifted8" in r["source"])
    res = subprocess.run([sys.executable, "-m", "talkverse.eval", str(out / row["video_path"]), "--method",
                          "mediapipe", "--max_lag", "15", "--json"], capture_output=True, text=True, timeout=300,
                         cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert res.returncode == 0, res.stderr[-2000:]
    ev = json.loads(res.stdout)["lip_sync_proxy"]
    print(f"\ncuration: offset {row['sync_offset']} conf {row['sync_conf']}; eval: offset {ev['offset']} "
          f"conf {ev['conf']:.4f}")
    assert ev["offset"] == int(float(row["sync_offset"]))
    assert ev["conf"] == pytest.approx(float(row["sync_conf"]), abs=0.05)  # the same code on the re-encoded frames


@pytest.fixture(scope="module")
def resumed(suite, ray_local, tmp_path_factory):
    """talkverse-curate (a real process joining the session's Ray) killed once its first clip is encoded (before that
    clip is recorded), then rerun; with the demo model's umT5 writing text embeddings."""
    from talkverse.demo import demo_model_dir

    folder, _ = suite
    out = tmp_path_factory.mktemp("resumed")
    lst = out.parent / "resume_inputs.txt"
    lst.write_text("".join(f"{folder / n}.mp4\n" for n in RESUME))
    cmd = [sys.executable, "-m", "talkverse.cli.curate", "--input", str(lst), "--out", str(out), "--workers", "1",
           "--ray_address", ray_local, "--text_encoder", str(demo_model_dir())] + sum((["--set", s] for s in FAST), [])
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=REPO,
                            start_new_session=True)
    videos, clips = out / "videos", out / ".state" / "clips"
    t0 = time.time()
    while proc.poll() is None and not list(videos.glob("[!.]*.mp4")) and time.time() - t0 < 900:
        time.sleep(0.2)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    state = (len(list(videos.glob("[!.]*.mp4"))), len(list(clips.glob("*.json"))) if clips.is_dir() else 0)
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=1200)
    assert res.returncode == 0, res.stderr[-3000:]
    print(f"\nkilled with {state[0]} clip(s) encoded and {state[1]} of 4 recorded; the rerun finished")
    return out, state


def test_a_killed_run_resumes_with_no_duplicate_and_no_missing_clip(resumed, suite):
    from talkverse.curation.records import input_id

    out, (encoded, recorded) = resumed
    folder, cases = suite
    assert encoded >= 1 and recorded < 4  # killed mid-way: a clip written, not every clip finished
    rows = _metadata(out)
    ids = [r["clip_id"] for r in rows]
    expected = {f"{input_id(folder / cases[n]['file'])}-000" for n in RESUME if cases[n]["expected"]["accepted"]}
    assert len(ids) == len(set(ids)) == 3 and set(ids) == expected  # music is a reject
    assert sorted(p.stem for p in (out / "videos").glob("*.mp4")) == sorted(ids)
    assert not list(out.rglob(".*partial*"))
    assert all(r["text_emb_path"] and (out / r["text_emb_path"]).is_file() for r in rows)
    assert (out / "text_embeddings" / "null.safetensors").is_file()
    with open(out / "rejects.csv", newline="") as f:
        assert [r["reason"] for r in csv.DictReader(f)] == ["no_speech"]


def test_curated_data_precaches_and_trains_ten_steps(resumed, tmp_path):
    from safetensors.torch import load_file

    from talkverse.demo import demo_model_dir

    out, _ = resumed
    demo = str(demo_model_dir())
    env = dict(os.environ, PYTHONPATH=str(REPO))
    pre = subprocess.run([sys.executable, str(REPO / "scripts" / "precache.py"), "--csv", str(out / "metadata.csv"),
                          "--data_root", str(out), "--ckpt_dir", demo, "--text_cache", str(out / "text_embeddings"),
                          "--bucket", "128x128", "--num_frames", "24", "--out", str(tmp_path / "cache"), "--device",
                          "cpu"], capture_output=True, text=True, timeout=600, env=env)
    assert pre.returncode == 0, pre.stderr[-3000:]
    cached = sorted((tmp_path / "cache").glob("*-*.safetensors"))
    assert len(cached) == 3
    assert all(load_file(str(p))["roi_weight"].max() > 1.5 for p in cached)  # skeletons -> ROI weights
    train = subprocess.run([sys.executable, str(REPO / "train_s2v_5b.py"), "--ckpt_dir", demo, "--latent_cache",
                            str(tmp_path / "cache"), "--output_path", str(tmp_path / "run"), "--max_steps", "10",
                            "--save_steps", "10", "--learning_rate", "1e-4", "--warmup_steps", "0", "--device", "cpu"],
                           capture_output=True, text=True, timeout=900, env=env)
    assert train.returncode == 0, train.stderr[-3000:]
    assert (tmp_path / "run" / "step-10.safetensors").is_file()
