"""Curation pieces without Ray or models: candidate clips, inputs, settings, records, face tracks, the skeleton
layout and the summary arithmetic (docs/curation.md)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from talkverse.curation.config import load_config
from talkverse.curation.ingest import list_inputs
from talkverse.curation.outputs import summary
from talkverse.curation.records import (
    CurationError,
    add_scores,
    input_finished,
    input_id,
    new_row,
    reject,
    write_clip_record,
    write_input_record,
)
from talkverse.curation.shots import candidate_clips
from talkverse.curation.skeleton import pose_frame_indices
from talkverse.data.sampling import pose_index
from talkverse.vision.faces import Face, face_tracks, select_track
from talkverse.vision.wholebody import FEET, MESH_TO_68, POSE_TO_COCO, person_box


def test_candidate_clips_trim_drop_and_split():
    clips = candidate_clips([(0.0, 10.0), (10.0, 12.0), (12.0, 44.0)], trim=0.2, min_s=3.0, max_s=15.0)
    assert clips[0] == pytest.approx((0.2, 9.8, 0))
    assert [c[2] for c in clips] == [0, 2, 2, 2]  # the 2 s scene is dropped; 31.6 s -> 3 parts of 10.53 s
    assert all(c[1] - c[0] <= 15.0 for c in clips) and clips[-1][1] == pytest.approx(43.8)


def test_pose_frames_match_the_datasets_pose_index():
    idx = pose_frame_indices(240, fps=5.0)
    assert len(idx) == 48 and idx[0] == 0 and idx[-1] == 239
    for i in (0, 57, 120, 239):  # the frame the dataset maps i to is within half a pose step of i
        assert abs(idx[pose_index(i, len(idx), 240)] - i) <= 239 / 47 / 2 + 1
    assert list(pose_frame_indices(10, fps=25.0)) == list(range(10))


def test_list_inputs_folder_glob_and_list_file(tmp_path):
    for name in ("a.mp4", "b.MOV", "notes.txt", "sub/c.mkv"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    exts = load_config().ingest.extensions
    assert [p.name for p in list_inputs(str(tmp_path), exts)] == ["a.mp4", "b.MOV", "c.mkv"]
    assert [p.name for p in list_inputs(str(tmp_path / "*.mp4"), exts)] == ["a.mp4"]
    lst = tmp_path / "list.txt"
    lst.write_text("# two files\nsub/c.mkv\n" + str(tmp_path / "a.mp4") + "\n")
    assert [p.name for p in list_inputs(str(lst), exts)] == ["a.mp4", "c.mkv"]
    with pytest.raises(CurationError, match="nothing"):
        list_inputs(str(tmp_path / "none*.mp4"), exts)


def test_settings_overrides_and_misspelt_keys(tmp_path):
    cfg = load_config(None, ["sync.min_conf=0.3", "face.sample_fps=2"])
    assert cfg.sync.min_conf == 0.3 and cfg.face.sample_fps == 2 and cfg.sync.max_lag == 15
    with pytest.raises(CurationError, match="min_confidence"):
        load_config(None, ["sync.min_confidence=0.3"])
    with pytest.raises(CurationError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_records_make_an_input_finished_only_when_all_its_clips_are(tmp_path):
    row = new_row("/x/v.mp4", input_id("/x/v.mp4"))
    assert row["input_id"].startswith("v-") and input_id("/y/v.mp4") != row["input_id"]
    write_input_record(tmp_path, row["input_id"], ["c0", "c1"])
    write_clip_record(tmp_path, dict(row, clip_id="c0"))
    assert not input_finished(tmp_path, row["input_id"])
    write_clip_record(tmp_path, dict(row, clip_id="c1"))
    assert input_finished(tmp_path, row["input_id"])


def test_face_tracks_follow_identities_and_select_left_to_right():
    left, right = (10, 10, 50, 50), (100, 12, 160, 72)
    frames = [[Face(left, 0.9), Face(right, 0.8)] for _ in range(5)] + [[Face(right, 0.9)]]
    tracks = face_tracks(frames)
    assert len(tracks) == 2 and sorted(len(t.faces) for t in tracks) == [5, 6]
    assert select_track(tracks, 0).faces[0].box == left and select_track(tracks, 1).faces[0].box == right
    assert select_track(tracks, "largest").faces[0].box == right and select_track(tracks, 2) is None
    jump = face_tracks([[Face(left, 0.9)], [Face(right, 0.9)]])  # a face that jumps is a new identity
    assert len(jump) == 2


def test_wholebody_mapping_covers_the_coco_slots():
    assert sorted(POSE_TO_COCO) == list(range(17)) and len(set(POSE_TO_COCO.values())) == 17
    assert len(MESH_TO_68) == 68 and len(set(MESH_TO_68)) == 68 and max(MESH_TO_68) < 468
    assert set(FEET) <= set(range(17, 23))
    kp = np.zeros((133, 3), np.float32)
    assert np.isnan(person_box(kp, 100, 100)).all()
    kp[0] = (40, 50, 0.9)
    kp[23] = (60, 30, 1.0)
    assert person_box(kp, 100, 100).tolist() == pytest.approx([38.0, 28.0, 62.0, 52.0])


def test_summary_counts_and_hours_per_stage():
    def rec(stage, dur, reason=""):
        r = dict(new_row("/v.mp4", "v"), end=dur, stage=stage, reason=reason)
        return add_scores(r, x=1)

    recs = [rec("ingest", 3600, "no_audio"), rec("speech", 1800, "no_speech"), rec("", 1800), rec("", 3600)]
    s = summary(recs)
    assert (s["candidates"], s["accepted"], s["rejected"], s["hours_accepted"]) == (4, 2, 2, 1.5)
    assert s["stages"]["ingest"] == {"in": 4, "kept": 3, "hours_in": 3.0, "hours_kept": 2.0, "seconds": 0.0,
                                     "reasons": {"no_audio": 1}}
    assert s["stages"]["speech"]["kept"] == 2 and s["stages"]["captions"]["hours_kept"] == 1.5
    assert json.loads(reject(rec("", 1), "face", "no_face")["scores"]) == {"x": 1.0}


def test_aesthetic_predictor_is_a_torchscript_file(tmp_path):
    import torch

    from talkverse.curation.quality import aesthetic, measures

    class Mean(torch.nn.Module):
        def forward(self, x):
            return x.mean(dim=(1, 2, 3)) * 10

    path = tmp_path / "aesthetic.pt"
    torch.jit.script(Mean()).save(str(path))
    frames = np.full((3, 100, 160, 3), 51, np.uint8)
    assert aesthetic(frames, torch.jit.load(str(path))) == pytest.approx(2.0, abs=1e-5)
    m = measures(frames, side=64)
    assert m["sharpness"] == 0 and m["brightness"] == pytest.approx(51, abs=0.5) and m["motion"] == 0


@pytest.mark.parametrize("argv, message", [
    (["--input", "/nonexistent/*.mp4", "--out", "o"], "--input /nonexistent/*.mp4: no such folder"),
    (["--input", ".", "--out", "o", "--set", "sync.min_confidence=1"], "min_confidence"),
    (["--input", ".", "--out", "o", "--text_encoder", "/nonexistent"], "--text_encoder /nonexistent: not found"),
])
def test_curate_cli_bad_input_is_one_line_and_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    from talkverse.cli.curate import main

    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and not (tmp_path / "o").exists()
