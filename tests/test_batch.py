"""Batch runner tests: batch-file parsing, seeds, resumable runs, the multi-worker claim queue and the launcher.

Everything runs on real files in tmp_path; the multi-worker test starts two real processes in a gloo group.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from talkverse.batch import (
    BatchFileError,
    BatchItem,
    BatchSummary,
    atomic_output,
    expected_cost,
    gather_summaries,
    item_seed,
    load_batch_file,
    run_batch,
)

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "run_batch_generation.sh"


def _wav(path: Path, seconds: float, sr: int = 8000) -> Path:
    sf.write(str(path), np.zeros(int(seconds * sr), dtype=np.float32), sr)
    return path


def _assets(d: Path) -> None:
    (d / "a.png").write_bytes(b"png")
    (d / "b.png").write_bytes(b"png")
    _wav(d / "a.wav", 1.0)
    _wav(d / "b.wav", 2.0)


# ---------------------------------------------------------------------------------------------- parsing


def test_schemas_and_formats_parse_to_same_items(tmp_path: Path) -> None:
    _assets(tmp_path)
    plain = [
        {"image": "a.png", "audio": "a.wav", "prompt": "p0", "name": "first", "seed": 3},
        {"image": "b.png", "audio": "b.wav", "prompt": "p1", "neg_prompt": "bad", "num_clip": 2, "video": "a.png"},
    ]
    ref = [
        {"cond_image": "a.png", "cond_audio": {"person1": "a.wav"}, "prompt": "p0", "name": "first", "seed": 3},
        {"cond_image": "b.png", "cond_audio": {"person1": "b.wav"}, "prompt": "p1", "negative_prompt": "bad",
         "num_clips": 2, "video": "a.png"},
    ]
    (tmp_path / "plain.json").write_text(json.dumps(plain, indent=2))
    (tmp_path / "ref.json").write_text(json.dumps(ref))
    (tmp_path / "plain.jsonl").write_text(
        "# comment\n\n" + "\n".join(json.dumps(o) for o in plain) + "\n\n# trailing\n"
    )
    results = [load_batch_file(tmp_path / f) for f in ("plain.json", "ref.json", "plain.jsonl")]
    assert results[0] == results[1] == results[2]
    a, b = results[0]
    assert a == BatchItem(0, str(tmp_path / "a.png"), str(tmp_path / "a.wav"), "p0", "first", seed=3)
    assert b.index == 1 and b.name == "00001_b" and b.negative_prompt == "bad" and b.num_clips == 2
    assert b.video == str(tmp_path / "a.png") and b.seed is None


def test_relative_paths_batch_folder_then_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batch_dir, cwd = tmp_path / "batch", tmp_path / "cwd"
    batch_dir.mkdir()
    cwd.mkdir()
    (batch_dir / "here.png").write_bytes(b"x")
    (cwd / "there.wav").write_bytes(b"x")
    (batch_dir / "b.jsonl").write_text(
        json.dumps({"image": "here.png", "audio": "there.wav"}) + "\n"
        + json.dumps({"image": str(tmp_path / "abs.png"), "audio": "missing.wav"}) + "\n"
    )
    monkeypatch.chdir(cwd)
    x, y = load_batch_file(batch_dir / "b.jsonl")
    assert x.image == str(batch_dir / "here.png")  # exists next to the batch file
    assert x.audio == str(cwd / "there.wav")  # not there -> current directory
    assert y.image == str(tmp_path / "abs.png")
    assert y.audio == str(cwd / "missing.wav")  # missing files fail at generation time, not here


def test_unknown_keys_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    f = tmp_path / "b.json"
    f.write_text(json.dumps([{"image": "a.png", "audio": "a.wav", "colour": "red"}]))
    with caplog.at_level(logging.WARNING, logger="talkverse.batch"):
        (item,) = load_batch_file(f)
    assert item.name == "00000_a"
    assert "colour" in caplog.text and "item 0" in caplog.text


@pytest.mark.parametrize(
    "content, expected",
    [
        ([{"cond_image": "a.png", "cond_audio": {"person1": "a.wav", "person2": "b.wav"}}],
         ["item 0", "person2", "multi-person is not supported"]),
        ([{"image": "a.png", "audio": "a.wav"}, {"image": "b.png", "prompt": "x"}], ["item 1", "'audio'"]),
        ([{"audio": "a.wav"}], ["item 0", "'image'"]),
        ([{"image": "a.png", "audio": "a.wav", "name": "dup"}, {"image": "b.png", "audio": "b.wav"},
          {"image": "c.png", "audio": "c.wav", "name": "dup"}], ["unique", "'dup'", "item 0", "item 2"]),
        ([{"image": "x/a.png", "audio": "a.wav"}, {"image": "y/a.png", "audio": "b.wav", "name": "00000_a"}],
         ["unique", "00000_a", "item 0", "item 1"]),
        ([{"image": "a.png", "audio": "a.wav", "name": "Clip"}, {"image": "b.png", "audio": "b.wav", "name": "clip"}],
         ["unique", "'Clip'", "'clip'"]),
        ([{"image": "a.png", "audio": "a.wav", "name": "../escape"}], ["item 0", "path separator"]),
        ([{"image": "a.png", "audio": "a.wav", "name": "sub\\x"}], ["item 0", "path separator"]),
        ([{"image": "a.png", "audio": "a.wav", "name": ".."}], ["item 0", "'..'"]),
        ([{"image": "a.png", "audio": "a.wav", "seed": "7"}], ["item 0", "seed"]),
        ([{"image": "a.png", "audio": "a.wav", "num_clips": 0}], ["item 0", "num_clips"]),
        ([{"image": "a.png", "audio": "a.wav", "num_clips": 1, "num_clip": 2}], ["item 0", "alias"]),
        (["a.png"], ["item 0", "JSON object"]),
        ([], ["no items"]),
    ],
)
def test_batch_file_errors(tmp_path: Path, content: list, expected: list[str]) -> None:
    f = tmp_path / "batch.json"
    f.write_text(json.dumps(content))
    with pytest.raises(BatchFileError) as info:
        load_batch_file(f)
    msg = str(info.value)
    assert str(f) in msg
    for part in expected:
        assert part in msg, (part, msg)


def test_bad_json_names_the_line(tmp_path: Path) -> None:
    jl = tmp_path / "b.jsonl"
    jl.write_text('# header\n{"image": "a.png", "audio": "a.wav"}\n\n{"image": "b.png", "audio": }\n')
    with pytest.raises(BatchFileError, match=r"b\.jsonl, line 4 \(item 1\): invalid JSON"):
        load_batch_file(jl)
    arr = tmp_path / "b.json"
    arr.write_text('[\n  {"image": "a.png", "audio": "a.wav"},\n  {"image": "b.png" "audio": "b.wav"}\n]\n')
    with pytest.raises(BatchFileError, match=r"b\.json, line 3 column \d+: invalid JSON"):
        load_batch_file(arr)
    with pytest.raises(BatchFileError, match="cannot read"):
        load_batch_file(tmp_path / "nope.json")


def test_seeds_and_cost(tmp_path: Path) -> None:
    assert item_seed(BatchItem(4, "a.png", "a.wav"), 420) == 424
    assert item_seed(BatchItem(4, "a.png", "a.wav", seed=7), 420) == 7
    assert item_seed(BatchItem(0, "a.png", "a.wav", seed=0), 420) == 0
    assert expected_cost(BatchItem(0, "a.png", str(_wav(tmp_path / "x.wav", 1.5)))) == pytest.approx(1.5)
    assert expected_cost(BatchItem(0, "a.png", str(tmp_path / "missing.wav"))) == 0.0
    (tmp_path / "junk.wav").write_bytes(b"not audio")
    assert expected_cost(BatchItem(0, "a.png", str(tmp_path / "junk.wav"))) == 0.0


def test_summary_line_and_merge() -> None:
    a = BatchSummary(done=["x"], failed=[("y", "ValueError: bad")])
    b = BatchSummary(done=["z"], skipped=["w"])
    m = a.merge(b)
    assert (m.done, m.skipped, m.failed) == (["x", "z"], ["w"], [("y", "ValueError: bad")])
    assert m.line() == "batch: 2 done, 1 skipped, 1 failed\n  FAILED y: ValueError: bad"
    assert m.exit_code == 1 and b.exit_code == 0
    assert gather_summaries(b) is b  # no process group -> unchanged


# ----------------------------------------------------------------------------------------------- runner


def _make_generate_fn(log_path: Path):
    """A real generate_fn: reads the audio (so a missing file raises), writes the output atomically."""

    def generate(item: BatchItem, output_path: Path) -> None:
        with open(log_path, "a") as f:
            f.write(item.name + "\n")
        audio = Path(item.audio).read_bytes()
        with atomic_output(output_path) as tmp:
            tmp.write_bytes(f"{item.name}:{len(audio)}".encode())

    return generate


def _log(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_run_batch_failures_resume_overwrite(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _assets(tmp_path)
    items = [
        BatchItem(0, str(tmp_path / "a.png"), str(tmp_path / "a.wav")),  # 1 s
        BatchItem(1, str(tmp_path / "b.png"), str(tmp_path / "missing.wav")),  # unreadable -> cost 0
        BatchItem(2, str(tmp_path / "b.png"), str(tmp_path / "b.wav"), name="long"),  # 2 s
    ]
    out, calls = tmp_path / "out", tmp_path / "calls.log"
    gen = _make_generate_fn(calls)

    with caplog.at_level(logging.DEBUG, logger="talkverse.batch"):
        s = run_batch(items, out, gen)
    assert _log(calls) == ["long", "00000_a", "00001_b"]  # longest audio first
    assert sorted(s.done) == ["00000_a", "long"] and s.skipped == []
    assert len(s.failed) == 1 and s.failed[0][0] == "00001_b"
    reason = s.failed[0][1]
    assert reason.startswith("FileNotFoundError: ") and "missing.wav" in reason and "\n" not in reason
    assert s.exit_code == 1
    assert s.line().splitlines() == ["batch: 2 done, 0 skipped, 1 failed", f"  FAILED 00001_b: {reason}"]
    assert "Traceback" in caplog.text  # full traceback at debug level
    assert sorted(p.name for p in out.iterdir()) == ["00000_a.mp4", "long.mp4"]  # no temp files left
    assert (out / "long.mp4").read_bytes().startswith(b"long:")

    # Rerun: the two done items are skipped, the failed one is retried (and still fails).
    calls.unlink()
    s2 = run_batch(items, out, gen)
    assert _log(calls) == ["00001_b"]
    assert sorted(s2.skipped) == ["00000_a", "long"] and s2.done == [] and len(s2.failed) == 1

    # Fix the input and rerun: it resumes with only that item.
    _wav(tmp_path / "missing.wav", 0.5)
    calls.unlink()
    s3 = run_batch(items, out, gen)
    assert _log(calls) == ["00001_b"] and s3.done == ["00001_b"] and s3.exit_code == 0

    # overwrite=True regenerates everything.
    calls.unlink()
    (out / "long.mp4").write_bytes(b"stale")
    s4 = run_batch(items, out, gen, overwrite=True)
    assert sorted(_log(calls)) == ["00000_a", "00001_b", "long"] and len(s4.done) == 3
    assert (out / "long.mp4").read_bytes().startswith(b"long:")


def test_unusable_items_fail_alone_and_the_rest_run(tmp_path: Path) -> None:
    """A JSONL batch with an item missing 'audio', a line of bad JSON and a duplicate name: those three are failed
    and reported in the summary, the two good items still run."""
    from talkverse.batch import read_batch_file

    _assets(tmp_path)
    f = tmp_path / "batch.jsonl"
    f.write_text("\n".join([json.dumps({"image": "a.png", "audio": "a.wav", "name": "first"}),
                            json.dumps({"image": "b.png", "prompt": "no audio here"}),
                            "{\"image\": \"a.png\",",
                            json.dumps({"image": "b.png", "audio": "b.wav", "name": "first"}),
                            json.dumps({"image": "b.png", "audio": "b.wav"})]) + "\n")
    items, invalid = read_batch_file(f)
    assert [it.name for it in items] == ["first", "00004_b"]
    assert [where for where, _ in invalid] == ["line 2 (item 1)", "line 3 (item 2)", "line 4 (item 3)"]
    assert "'audio'" in invalid[0][1] and "invalid JSON" in invalid[1][1] and "already used" in invalid[2][1]
    assert all(str(f) in reason and "\n" not in reason for _, reason in invalid)
    with pytest.raises(BatchFileError, match="'audio'"):
        load_batch_file(f)  # the strict reader still refuses it
    calls = tmp_path / "calls.log"
    s = run_batch(items, tmp_path / "out", _make_generate_fn(calls), invalid=invalid)
    assert sorted(_log(calls)) == ["00004_b", "first"] and s.exit_code == 1
    assert s.line().splitlines()[0] == "batch: 2 done, 0 skipped, 3 failed"
    assert "FAILED line 2 (item 1)" in s.line()


def test_run_batch_generate_fn_must_write_output(tmp_path: Path) -> None:
    s = run_batch([BatchItem(0, "a.png", "a.wav")], tmp_path, lambda item, path: None, ext="webm")
    assert s.failed == [("00000_a", f"RuntimeError: generate_fn returned without writing {tmp_path / '00000_a.webm'}")]


def test_run_batch_interrupt_propagates(tmp_path: Path) -> None:
    def gen(item: BatchItem, path: Path) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch([BatchItem(0, "a.png", "a.wav")], tmp_path, gen)


def test_run_batch_argument_checks(tmp_path: Path) -> None:
    items = [BatchItem(0, "a.png", "a.wav"), BatchItem(1, "b.png", "b.wav")]
    with pytest.raises(ValueError, match="run_id is required"):
        run_batch(items, tmp_path, _make_generate_fn(tmp_path / "l"), rank=0, world_size=2)
    with pytest.raises(ValueError, match="invalid rank"):
        run_batch(items, tmp_path, _make_generate_fn(tmp_path / "l"), rank=2, world_size=2, run_id="r")
    with pytest.raises(ValueError, match="unique"):
        run_batch(items + [BatchItem(2, "x/a.png", "c.wav", name="00000_a")], tmp_path, _make_generate_fn(tmp_path / "l"))
    with pytest.raises(ValueError, match="path separator"):
        run_batch([BatchItem(0, "a.png", "a.wav", name="a/b")], tmp_path, _make_generate_fn(tmp_path / "l"))


def test_claims_give_each_item_to_one_worker_and_new_run_id_reruns(tmp_path: Path) -> None:
    """In-process check of the claim protocol: a second worker with the same run_id gets nothing."""
    _assets(tmp_path)
    items = [BatchItem(i, str(tmp_path / "a.png"), str(tmp_path / "a.wav")) for i in range(3)]
    gen = _make_generate_fn(tmp_path / "calls.log")
    s0 = run_batch(items, tmp_path / "out", gen, rank=0, world_size=2, run_id="r1")
    s1 = run_batch(items, tmp_path / "out", gen, rank=1, world_size=2, run_id="r1", overwrite=True)
    assert len(s0.done) == 3 and s1 == BatchSummary()
    assert sorted(p.name for p in (tmp_path / "out" / ".talkverse_batch" / "r1").iterdir()) == [
        "00000_a.claim", "00001_a.claim", "00002_a.claim"]
    s2 = run_batch(items, tmp_path / "out", gen, rank=1, world_size=2, run_id="r2")  # new run: not blocked
    assert sorted(s2.skipped) == sorted(s0.done)


_WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path

    from talkverse import batch  # light: the talkverse package loads its model stack lazily
    import torch.distributed as dist

    rank, world, tmp = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    dist.init_process_group("gloo", init_method=(tmp / "pg").as_uri(), rank=rank, world_size=world)
    run_id = batch.make_run_id()  # broadcast from rank 0
    items = [batch.BatchItem(**d) for d in json.loads((tmp / "items.json").read_text())]

    def generate(item, output_path):
        with open(tmp / f"worker{rank}.log", "a") as f:
            f.write(item.name + "\\n")
        time.sleep(0.15)
        if item.name == "bad":
            raise ValueError("bad item")
        with batch.atomic_output(output_path) as t:
            t.write_text(str(rank))

    mine = batch.run_batch(items, tmp / "out", generate, rank=rank, world_size=world, run_id=run_id)
    merged = batch.gather_summaries(mine)
    (tmp / f"result{rank}.json").write_text(json.dumps(
        {"run_id": run_id, "mine": [mine.done, mine.skipped, mine.failed],
         "merged": [merged.done, merged.skipped, merged.failed], "exit_code": merged.exit_code}))
    dist.destroy_process_group()
    """
)


@pytest.mark.slow
def test_two_real_workers_share_the_queue(tmp_path: Path) -> None:
    _wav(tmp_path / "a.wav", 0.1)
    items = [{"index": i, "image": f"img{i}.png", "audio": str(tmp_path / "a.wav")} for i in range(6)]
    items[5]["name"] = "bad"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "00004_img4.mp4").write_text("existing")  # skipped by exactly one worker
    (tmp_path / "items.json").write_text(json.dumps(items))
    (tmp_path / "worker.py").write_text(_WORKER)

    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(tmp_path / "worker.py"), str(r), "2", str(tmp_path)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for r in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs

    logs = [_log(tmp_path / f"worker{r}.log") for r in range(2)]
    generated = logs[0] + logs[1]
    expected = ["00000_img0", "00001_img1", "00002_img2", "00003_img3", "bad"]
    assert sorted(generated) == expected  # every item generated exactly once across the workers

    results = [json.loads((tmp_path / f"result{r}.json").read_text()) for r in range(2)]
    assert results[0]["run_id"] == results[1]["run_id"]
    for r, res in enumerate(results):
        done, skipped, failed = res["mine"]
        assert sorted(done + [n for n, _ in failed]) == sorted(logs[r])
    # gather_summaries over the real 2-rank gloo group: both ranks get the same merged summary of both workers.
    assert results[0]["merged"] == results[1]["merged"]
    done, skipped, failed = results[0]["merged"]
    assert sorted(done) == expected[:4] and skipped == ["00004_img4"] and failed == [["bad", "ValueError: bad item"]]
    assert results[0]["exit_code"] == results[1]["exit_code"] == 1
    assert (tmp_path / "out" / "00004_img4.mp4").read_text() == "existing"


# --------------------------------------------------------------------------------------------- launcher


def _script(env_overrides: dict[str, str], *args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("NUM_WORKERS", "CUDA_VISIBLE_DEVICES")}
    env.update(env_overrides)
    if path is not None:
        env["PATH"] = path
    return subprocess.run(["/bin/bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=30)


def test_launcher_syntax_and_executable() -> None:
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    assert os.access(SCRIPT, os.X_OK)
    text = SCRIPT.read_text()
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text
    for var in ("TASK", "CKPT_DIR", "LORA_CKPT", "BATCH_FILE", "OUTPUT_DIR", "SIZE", "SIZE_BUCKET", "INFER_FRAMES",
                "NUM_CLIP", "SAMPLING_STEPS", "GUIDE_SCALE", "SEED", "NUM_WORKERS"):
        assert f"#   {var} " in text, var  # documented in the header


def test_launcher_worker_count(tmp_path: Path) -> None:
    r = _script({"CUDA_VISIBLE_DEVICES": "0,1,-1,"}, "--print-workers")
    assert (r.returncode, r.stdout.strip()) == (0, "2")
    assert _script({"CUDA_VISIBLE_DEVICES": "0,1", "NUM_WORKERS": "3"}, "--print-workers").stdout.strip() == "3"
    bad = _script({"NUM_WORKERS": "two"}, "--print-workers")
    assert bad.returncode != 0 and "NUM_WORKERS" in bad.stderr
    # No CUDA_VISIBLE_DEVICES: a (fake) nvidia-smi on PATH is counted; without one it is 1.
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nvidia-smi").write_text("#!/bin/bash\nfor i in 0 1 2; do echo \"GPU $i: Fake (UUID: GPU-$i)\"; done\n")
    (fake / "nvidia-smi").chmod(0o755)
    assert _script({}, "--print-workers", path=str(fake)).stdout.strip() == "3"
    assert _script({"CUDA_VISIBLE_DEVICES": "-1"}, "--print-workers", path=str(fake)).stdout.strip() == "3"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _script({}, "--print-workers", path=str(empty)).stdout.strip() == "1"


def test_launcher_dry_run_command() -> None:
    r = _script({"CUDA_VISIBLE_DEVICES": "0,1,-1,", "TALKVERSE_BATCH_DRY_RUN": "1"}, "--offload_model", "True")
    assert r.returncode == 0, r.stderr
    cmd = r.stdout.split()
    assert cmd[:4] == ["torchrun", "--standalone", "--nproc_per_node=2", "generate.py"]
    line = r.stdout
    for part in ("--task s2v-5B", "--ckpt_dir ckpts/Wan2.2-TI2V-5B", "--batch_file batch_config.json",
                 "--output_dir outputs/s2v_5b_batch", "--size_bucket fasttalk-720", "--infer_frames 120",
                 "--num_clip auto", "--sample_steps 50", "--sample_guide_scale 6.5", "--base_seed 420"):
        assert part in line, part
    assert "--lora_ckpt" not in line and "--size " not in line
    assert cmd[-2:] == ["--offload_model", "True"]  # extra arguments are forwarded last

    r = _script({"TALKVERSE_BATCH_DRY_RUN": "1", "NUM_WORKERS": "4", "TASK": "t", "CKPT_DIR": "c", "LORA_CKPT": "l.pt",
                 "BATCH_FILE": "b.jsonl", "OUTPUT_DIR": "o", "SIZE": "1280*704", "SIZE_BUCKET": "sb",
                 "INFER_FRAMES": "80", "NUM_CLIP": "3", "SAMPLING_STEPS": "20", "GUIDE_SCALE": "4.5", "SEED": "7"})
    line = r.stdout
    for part in ("--nproc_per_node=4", "--task t", "--ckpt_dir c", "--lora_ckpt l.pt", "--batch_file b.jsonl",
                 "--output_dir o", "--size 1280\\*704", "--size_bucket sb", "--infer_frames 80", "--num_clip 3",
                 "--sample_steps 20", "--sample_guide_scale 4.5", "--base_seed 7"):
        assert part in line, (part, line)


def test_launcher_runs_torchrun_from_repo_root_and_returns_its_code(tmp_path: Path) -> None:
    fake = tmp_path / "torchrun"
    fake.write_text(f"#!/bin/bash\npwd > {tmp_path / 'cwd'}\necho \"$@\" > {tmp_path / 'args'}\nexit 7\n")
    fake.chmod(0o755)
    r = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, capture_output=True, text=True, timeout=30,
                       env={**os.environ, "TORCHRUN": str(fake), "NUM_WORKERS": "1"})
    assert r.returncode == 7
    assert (tmp_path / "cwd").read_text().strip() == str(REPO)
    assert (tmp_path / "args").read_text().startswith("--standalone --nproc_per_node=1 generate.py --task s2v-5B")
