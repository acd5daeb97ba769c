"""Training checkpoints (training.md §10): the TalkVerse export and the full resume state, both written atomically.

* ``step-N.safetensors``: the trainable tensors only, original Wan/TalkVerse key names (no ``model.`` prefix), bf16 by
  default, with metadata (format, lora_rank, lora_alpha, strategy, step, version). ``--lora_ckpt`` of the inference
  loader reads it.
* ``checkpoints/step-N/``: fp32 trainables, optimizer and LR-scheduler state, optimizer/micro-step counters, epoch,
  sampler position, RNG states (python, numpy, torch CPU and CUDA), the config. Written to a temporary directory that is
  renamed into place only when complete (with a ``COMPLETE`` marker), then ``checkpoints/latest`` is replaced
  atomically. A crash during a write leaves the previous state as the latest valid one. The last K are kept.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import save_file

from .. import __version__
from .setup import export_name

COMPLETE = "COMPLETE"
FAULT_ENV = "TALKVERSE_FAULT_INJECT"  # "kill_during_save:<step>": os._exit in the middle of that save (tests)


def _rank0() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def _barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


# ------------------------------------------------------------------------------------------------ model state
def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def trainable_state(model: torch.nn.Module, also=None) -> dict[str, torch.Tensor]:
    """Full (unsharded) fp32 trainable tensors on the CPU, by our parameter name, plus the frozen ones whose name
    satisfies ``also``. Collective under FSDP2."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    inner = _unwrap(model)
    names = {n for n, p in inner.named_parameters() if p.requires_grad or (also is not None and also(n))}
    full = get_model_state_dict(inner, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return {k: v.detach().float().clone() for k, v in full.items() if k in names}


def load_trainable_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    inner = _unwrap(model)
    names = {n for n, p in inner.named_parameters() if p.requires_grad}
    if set(state) != names:
        missing, extra = sorted(names - set(state)), sorted(set(state) - names)
        raise ValueError(f"resume state does not fit the model: missing {missing[:5]}, unexpected {extra[:5]}")
    set_model_state_dict(inner, state, options=StateDictOptions(full_state_dict=True, strict=False))


def export_talkverse(model: torch.nn.Module, path: Path, meta: dict, dtype: torch.dtype = torch.bfloat16) -> Path | None:
    """Write ``step-N.safetensors`` (rank 0): the trainables and every S2V module tensor (a TalkVerse file carries them
    all, frozen ones such as the frame packer without --enable_framepack included). Collective under FSDP2."""
    from ..convert.wan_keys import is_new_module_key

    state = trainable_state(model, also=is_new_module_key)
    if _rank0():
        out = {export_name(k): v.to(dtype).contiguous() for k, v in state.items()}
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        save_file(out, str(tmp), metadata={k: str(v) for k, v in meta.items()})
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    _barrier()
    return path


# ------------------------------------------------------------------------------------------------ resume state
# The RNG states hold only tensors, ints, floats and strings, so state.pt loads with torch.load(weights_only=True):
# a run folder from someone else cannot execute code on resume.
def rng_state() -> dict:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "gauss": float(gauss)}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_resume_state(root: Path, step: int, model, optimizer, lr_scheduler, counters: dict, sampler_state: dict,
                      config: dict, keep: int = 3) -> Path:
    """Write ``root/step-<step>/`` atomically and point ``root/latest`` at it. Collective under FSDP2/DDP."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    inner = _unwrap(model)
    params = trainable_state(model)
    optim = get_optimizer_state_dict(inner, optimizer, options=StateDictOptions(full_state_dict=True,
                                                                                  cpu_offload=True))
    rngs = [rng_state()]
    if dist.is_initialized():
        gathered = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, rngs[0])
        rngs = gathered
    final = root / f"step-{step:08d}"
    if _rank0():
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".tmp-step-{step:08d}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        torch.save(params, tmp / "trainables.pt")
        fault = os.environ.get(FAULT_ENV, "")
        if fault == f"kill_during_save:{step}":
            os._exit(137)  # simulated crash: trainables written, the rest not, nothing renamed
        torch.save({"optimizer": optim, "lr_scheduler": lr_scheduler.state_dict(), "counters": counters,
                    "sampler": sampler_state, "rng": rngs}, tmp / "state.pt")
        (tmp / "config.json").write_text(json.dumps(config, indent=1, default=str))
        (tmp / COMPLETE).write_text(str(step))
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(root)
        atomic_write_bytes(root / "latest", final.name.encode())
        done = sorted(p for p in root.glob("step-*") if (p / COMPLETE).exists())
        for old in done[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    _barrier()
    return final


def find_resume_state(root: Path) -> Path | None:
    """The newest complete state: ``root/latest`` if valid, else the newest ``step-*`` with a COMPLETE marker."""
    if not root.is_dir():
        return None
    latest = root / "latest"
    if latest.is_file():
        cand = root / latest.read_text().strip()
        if (cand / COMPLETE).is_file():
            return cand
    done = sorted(p for p in root.glob("step-*") if (p / COMPLETE).is_file())
    return done[-1] if done else None


def load_resume_state(path: Path, model, optimizer, lr_scheduler) -> dict:
    """Restore params, optimizer, LR schedule and this rank's RNG; returns {"counters", "sampler"}."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    params = torch.load(path / "trainables.pt", map_location="cpu", weights_only=True)
    load_trainable_state(model, params)
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
    set_optimizer_state_dict(_unwrap(model), optimizer, state["optimizer"],
                             options=StateDictOptions(full_state_dict=True))
    lr_scheduler.load_state_dict(state["lr_scheduler"])
    rank = dist.get_rank() if dist.is_initialized() else 0
    rngs = state["rng"]
    set_rng_state(rngs[rank] if rank < len(rngs) else rngs[0])
    return {"counters": state["counters"], "sampler": state["sampler"]}


def export_meta(strategy: str, step: int, lora_rank: int, lora_alpha: float) -> dict:
    return {"format": "talkverse-s2v-5b", "strategy": strategy, "step": step, "lora_rank": lora_rank,
            "lora_alpha": lora_alpha, "talkverse_version": __version__}
