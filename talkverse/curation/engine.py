"""The curation run on Ray Data (docs/curation.md "Engine"): every stage is a ``map``/``flat_map`` with declared
resources; model stages are actors that load their model once. With no address a local Ray starts on this machine
(or the one already running in this process is used); ``ray_address`` joins a cluster. Finished inputs are skipped
(records.input_finished); every stage call is guarded, so one bad video is a reject row, never a stopped run."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from .records import (
    add_timing,
    alive,
    clip_record_path,
    input_finished,
    input_id,
    new_row,
    reject,
    write_clip_record,
    write_input_record,
)

logger = logging.getLogger("talkverse.curate")

MODEL_STAGES = ("speech", "quality", "face", "sync", "encode", "skeleton", "captions")


def _make_stage(name: str, cfg, out: str):
    if name == "speech":
        from .speech import SpeechStage
        return SpeechStage(cfg)
    if name == "quality":
        from .quality import QualityStage
        return QualityStage(cfg)
    if name == "face":
        from .face import FaceStage
        return FaceStage(cfg)
    if name == "sync":
        from .sync import SyncStage
        return SyncStage(cfg)
    if name == "encode":
        from .encode import EncodeStage
        return EncodeStage(cfg, out)
    if name == "skeleton":
        from .skeleton import SkeletonStage
        return SkeletonStage(cfg, out)
    if name == "captions":
        from .captions import CaptionStage
        return CaptionStage(cfg, out)
    raise ValueError(f"unknown stage {name!r}")


class StageActor:
    """One stage as a Ray actor: builds the stage (loading its model) once, then maps rows; an exception becomes a
    reject with reason ``error``."""

    def __init__(self, name: str, cfg, out: str):
        import os

        os.environ.setdefault("OMP_NUM_THREADS", "1")
        os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe's C++ log lines
        self.name = name
        self.stage = _make_stage(name, cfg, out)

    def __call__(self, row: dict) -> dict:
        if not alive(row):
            return row
        t0 = time.perf_counter()
        try:
            row = self.stage(row)
        except Exception as e:  # noqa: BLE001
            row = reject(row, self.name, "error", f"{type(e).__name__}: {e}")
        return add_timing(row, self.name, time.perf_counter() - t0)


def ingest_task(row: dict, cfg) -> dict:
    from .ingest import ingest

    t0 = time.perf_counter()
    try:
        row = ingest(row, cfg)
    except Exception as e:  # noqa: BLE001
        row = reject(row, "ingest", "error", f"{type(e).__name__}: {e}")
    return add_timing(row, "ingest", time.perf_counter() - t0)


def shots_task(row: dict, cfg, out: str) -> list[dict]:
    """Candidate clips of one input; records the input's clip list and drops clips finished by an earlier run."""
    from .shots import split_shots

    t0 = time.perf_counter()
    try:
        rows = split_shots(row, cfg)
    except Exception as e:  # noqa: BLE001
        rows = [reject(row, "shots", "error", f"{type(e).__name__}: {e}")]
    dt = (time.perf_counter() - t0) / len(rows)  # the input's shot detection, shared by its clips
    rows = [add_timing(r, "shots", dt) for r in rows]
    write_input_record(Path(out), row["input_id"], [r["clip_id"] for r in rows])
    return [r for r in rows if not clip_record_path(Path(out), r["clip_id"]).is_file()]


def record_task(row: dict, out: str) -> dict:
    write_clip_record(Path(out), row)
    return {"clip_id": row["clip_id"], "stage": row["stage"], "reason": row["reason"]}


def ensure_ray(address: str | None, num_cpus: int | None, attempts: int = 3) -> None:
    """Connect to ``address``, or start a local Ray (retrying: a loaded machine can miss Ray's 30 s node start)."""
    import ray

    if ray.is_initialized():
        return
    for k in range(attempts):
        try:
            if address:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
            return
        except Exception as e:  # noqa: BLE001
            if k == attempts - 1:
                raise
            logger.warning("ray start failed (%s), retrying", e)
            ray.shutdown()
            time.sleep(2)


def run(inputs: list[Path], out: Path, cfg, ray_address: str | None = None, workers: int | None = None,
        num_cpus: int | None = None) -> dict:
    """Curate ``inputs`` into ``out``; returns the summary (outputs.write_outputs)."""
    from .outputs import write_outputs

    out = Path(out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    for leftover in out.rglob(".*partial*"):  # temporary files of a run that was killed mid-write
        leftover.unlink(missing_ok=True)
    workers = int(workers or cfg.engine.workers)
    todo = [new_row(str(p), input_id(p)) for p in inputs if not input_finished(out, input_id(p))]
    logger.info("%d input(s), %d already finished", len(inputs), len(inputs) - len(todo))
    if todo:
        import ray

        ensure_ray(ray_address, num_cpus)
        cpus = float(cfg.engine.stage_cpus)
        ctx = ray.data.DataContext.get_current()
        if hasattr(ctx, "issue_detectors_config"):  # its memory hints repeat every 30 s; the stages are small
            ctx.issue_detectors_config.detectors = []
        tasks = ray.data.TaskPoolStrategy(size=workers)
        ds = ray.data.from_items(todo, override_num_blocks=len(todo))
        ds = ds.map(ingest_task, fn_kwargs={"cfg": cfg}, num_cpus=cpus, compute=tasks)
        ds = ds.flat_map(shots_task, fn_kwargs={"cfg": cfg, "out": str(out)}, num_cpus=cpus, compute=tasks)
        for name in MODEL_STAGES:
            ds = ds.map(StageActor, fn_constructor_kwargs={"name": name, "cfg": cfg, "out": str(out)},
                        num_cpus=cpus, num_gpus=float(cfg.engine.stage_gpus[name]),
                        compute=ray.data.ActorPoolStrategy(size=workers))
        ds = ds.map(record_task, fn_kwargs={"out": str(out)}, num_cpus=cpus, compute=tasks)
        for n, r in enumerate(ds.iter_rows(), start=1):
            logger.info("[%d] %s: %s", n, r["clip_id"], "accepted" if not r["stage"] else
                        f"rejected at {r['stage']} ({r['reason']})")
    return write_outputs(out, cfg)
