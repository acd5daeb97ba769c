"""Build ``TalkVerseTransformer3DModel`` from the published layouts.

* base: the original Wan2.2-TI2V-5B directory (sharded safetensors + index, original key names), a Diffusers
  layout (a ``transformer/`` subfolder, or that folder itself), or a single file of either naming; for the
  ``s2v_14b`` config the original Wan2.2-S2V-14B directory (the whole model, S2V modules included) or its Diffusers
  layout (a ``transformer/`` of this class);
* on top, optionally, a TalkVerse checkpoint (our ``step-N.safetensors`` exports use the same format), whose LoRA
  pairs are merged (``W += dt(dt(B@A)*alpha/r)``) or kept as a live peft adapter (``merge_lora=False``).

The model is built on the meta device and every tensor is read once, lazily, straight into its final dtype and
device: no second full fp32 copy of the model is ever held.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from ..configs import model_config
from ..convert.errors import CheckpointError, format_keys, key_report
from ..convert.state_dict_io import LazyStateDict
from ..convert.talkverse_ckpt import (
    DEFAULT_LORA_ALPHA,
    LORA_TARGET_REGEX,
    TIME_HEAD_KEYS_OURS,
    TalkVerseParts,
    lora_delta,
    partition,
)
from ..convert.wan_keys import NEW_MODULES, is_new_module_key, original_to_diffusers
from ..models.transformer_talkverse import TalkVerseTransformer3DModel

logger = logging.getLogger(__name__)

_STRIP_PREFIXES = ("model.diffusion_model.", "model.")


def _is_fp32_island(model: TalkVerseTransformer3DModel, key: str) -> bool:
    parts = key.split(".")
    return any(m in parts for m in model._keep_in_fp32_modules)


def target_dtype(model: TalkVerseTransformer3DModel, key: str, torch_dtype: torch.dtype) -> torch.dtype:
    """Inference dtype of a parameter: ``torch_dtype`` except the fp32 islands."""
    return torch.float32 if _is_fp32_island(model, key) else torch_dtype


def open_base(path: str | Path) -> tuple[LazyStateDict, dict[str, str]]:
    """Open a TI2V-5B base checkpoint in either layout; returns (reader, our key -> file key)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"base checkpoint not found: {path}")
    if path.is_dir() and (path / "transformer").is_dir():
        path = path / "transformer"
    if path.is_dir():
        preferred = sorted(path.glob("diffusion_pytorch_model*.safetensors"))
        if preferred and not list(path.glob("*.safetensors.index.json")) and len(preferred) == 1:
            path = preferred[0]
    sd = LazyStateDict(path)
    keys = list(sd.keys())
    prefix = next((p for p in _STRIP_PREFIXES if all(k.startswith(p) for k in keys)), "")
    stripped = {k[len(prefix):]: k for k in keys}
    if any(k.startswith(("condition_embedder.", "proj_out.")) for k in stripped):
        mapping = {k: fk for k, fk in stripped.items()}
    elif any(k.startswith(("text_embedding.", "time_embedding.", "head.head")) for k in stripped):
        mapping, unknown = {}, []
        for k, fk in stripped.items():
            ours = original_to_diffusers(k)
            (unknown.append(fk) if ours is None else mapping.__setitem__(ours, fk))
        if unknown:
            raise CheckpointError(f"{path}: keys that are not Wan DiT keys: {format_keys(unknown)}")
    else:
        raise CheckpointError(
            f"{path} is not a Wan2.2 DiT checkpoint (no text/time embedding or head keys found; "
            f"first keys: {format_keys(keys[:5])})")
    return sd, mapping


def _model_name(in_channels: int, has_cond: bool) -> str:
    return "Wan2.2-S2V-14B" if has_cond or in_channels == 16 else "Wan2.2-TI2V-5B / TalkVerse-5B"


def check_model_kind(path, sd: LazyStateDict, mapping: dict[str, str], config: dict) -> None:
    """One line when the checkpoint is the other model (a 5B file given for the 14B config or the reverse): told
    apart by the patch embedding's latent channels and the pose branch (``cond_encoder``)."""
    key = mapping.get("patch_embedding.weight")
    if key is None:
        return
    shape = tuple(sd.shape(key))
    has_cond = "cond_encoder.weight" in mapping
    want_cond = bool(config.get("cond_dim"))
    if (len(shape) > 1 and shape[1] != config["in_channels"]) or (has_cond and not want_cond):
        found, wanted = _model_name(shape[1], has_cond), _model_name(config["in_channels"], want_cond)
        raise CheckpointError(f"{path}: a {found} checkpoint (patch embedding {list(shape)}), but the model config "
                              f"needs {wanted}")


def _check_base_config(base: Path, config: dict) -> None:
    """Compare a base ``config.json`` (original or diffusers) with the model config; raise on a mismatch."""
    base = Path(base)
    cands = [base / "transformer" / "config.json", base / "config.json"] if base.is_dir() else []
    cfg_file = next((c for c in cands if c.exists()), None)
    if cfg_file is None:
        return
    try:
        cfg = json.loads(cfg_file.read_text())
    except ValueError as e:
        raise CheckpointError(f"cannot parse {cfg_file}: {e}") from e
    dim = config["num_attention_heads"] * config["attention_head_dim"]
    expect = {"dim": dim, "num_heads": config["num_attention_heads"], "num_layers": config["num_layers"],
              "ffn_dim": config["ffn_dim"], "in_dim": config["in_channels"], "out_dim": config["out_channels"],
              "num_attention_heads": config["num_attention_heads"], "attention_head_dim": config["attention_head_dim"],
              "in_channels": config["in_channels"], "out_channels": config["out_channels"],
              "text_dim": config["text_dim"], "freq_dim": config["freq_dim"]}
    bad = [f"{k}={cfg[k]} (model expects {v})" for k, v in expect.items() if k in cfg and cfg[k] is not None and cfg[k] != v]
    if bad:
        raise CheckpointError(f"base checkpoint {cfg_file} does not match the model config: {', '.join(bad)}")


def load_transformer(
    base: str | Path,
    talkverse_ckpt: str | Path | None = None,
    config: str | dict = "s2v_5b",
    torch_dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    merge_lora: bool = True,
    lora_alpha: float | None = None,
    adapter_name: str = "talkverse",
) -> TalkVerseTransformer3DModel:
    """Load the S2V DiT from a TI2V base and (optionally) a TalkVerse checkpoint. See the module docstring.

    Without ``talkverse_ckpt`` the S2V modules get their spec initialisation (a training start point).
    ``lora_alpha`` defaults to the file's ``lora_alpha`` metadata, else 128 (scale alpha/rank).
    """
    cfg = model_config(config) if isinstance(config, str) else dict(config)
    base_sd, base_map = open_base(base)
    check_model_kind(base, base_sd, base_map, cfg)
    _check_base_config(Path(base), cfg)
    with torch.device("meta"):
        model = TalkVerseTransformer3DModel(**cfg)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    model_keys = set(shapes)
    new_keys = {k for k in model_keys if is_new_module_key(k)}
    base_keys = model_keys - new_keys

    tv_sd, parts = None, None
    if talkverse_ckpt is not None:
        tv_sd = LazyStateDict(talkverse_ckpt)
        parts = partition(tv_sd, model_keys, new_keys, str(talkverse_ckpt))

    # ---- validate the base against the model
    unexpected = [base_map[k] for k in base_map if k not in model_keys]
    missing = sorted(base_keys - set(base_map))
    mismatched = [(k, base_sd.shape(base_map[k]), shapes[k]) for k in base_map
                  if k in shapes and tuple(base_sd.shape(base_map[k])) != shapes[k]]
    report = key_report(f"base checkpoint {base} does not fit the model:", missing, unexpected, mismatched)
    if report:
        raise CheckpointError(report)

    sources: dict[str, tuple[LazyStateDict, str]] = {k: (base_sd, fk) for k, fk in base_map.items()}
    if parts is not None:
        _validate_talkverse(parts, tv_sd, shapes, model, str(talkverse_ckpt))
        sources.update({k: (tv_sd, fk) for k, fk in parts.overrides.items()})
    elif new_keys - set(base_map):
        if cfg.get("cond_dim") and new_keys & set(base_map):  # S2V-14B ships its S2V modules: a gap is a broken file
            raise CheckpointError(f"{base}: incomplete Wan2.2-S2V-14B checkpoint, missing "
                                  f"{format_keys(sorted(new_keys - set(base_map)))}")
        logger.warning("no TalkVerse checkpoint given: the S2V modules start from their initialisation")

    merge = dict(parts.lora) if (parts is not None and merge_lora) else {}
    rank, scale = _lora_scale(parts, tv_sd, lora_alpha) if parts is not None and parts.lora else (0, 1.0)

    state: dict[str, torch.Tensor] = {}
    for key in sorted(model_keys):
        if key not in sources:
            continue
        sd, fk = sources[key]
        dt = target_dtype(model, key, torch_dtype)
        module = key.rsplit(".", 1)[0]
        if key.endswith(".weight") and module in merge:
            a_key, b_key = merge[module]
            w = sd.load(fk, torch.float32, device)
            w += lora_delta(tv_sd.load(a_key, device=device), tv_sd.load(b_key, device=device), scale).float()
            state[key] = w.to(dt)
        else:
            state[key] = sd.load(fk, dt, device)
        if key == "trainable_cond_mask.weight" and state[key].shape[0] + 1 == shapes[key][0]:
            # Trained with FramePack disabled: no motion row. Duplicate the last row, as the reference does.
            logger.warning("%s: trainable_cond_mask has %d rows; duplicating the last for the motion role",
                           talkverse_ckpt, state[key].shape[0])
            state[key] = torch.cat([state[key], state[key][-1:]], dim=0)

    # ---- S2V modules without a checkpoint: spec init on the target device
    for name in NEW_MODULES:
        prefix = name + "."
        if any(k.startswith(prefix) and k not in state for k in model_keys):
            mod = getattr(model, name).to_empty(device=device)  # present: it has keys
            model.init_s2v_module(name)
            for k, v in mod.state_dict().items():
                state.setdefault(prefix + k, v.to(target_dtype(model, prefix + k, torch_dtype)))
    model.load_state_dict(state, strict=True, assign=True)
    del state

    if parts is not None and parts.lora and not merge_lora:
        _attach_adapter(model, parts, tv_sd, rank, rank * scale, adapter_name, device)
    model.eval().requires_grad_(False)
    return model


def _lora_scale(parts: TalkVerseParts, sd: LazyStateDict, lora_alpha: float | None) -> tuple[int, float]:
    ranks = {sd.shape(a)[0] for a, _ in parts.lora.values()}
    if len(ranks) != 1:
        raise CheckpointError(f"LoRA pairs with different ranks {sorted(ranks)}")
    rank = ranks.pop()
    if lora_alpha is None:
        lora_alpha = float(parts.metadata.get("lora_alpha", DEFAULT_LORA_ALPHA))
    return rank, float(lora_alpha) / rank


def _validate_talkverse(parts: TalkVerseParts, sd: LazyStateDict, shapes: dict, model, path: str) -> None:
    strategy = parts.metadata.get("strategy")
    time_head = [k for k in shapes if k.startswith(TIME_HEAD_KEYS_OURS)]
    missing_th = [k for k in time_head if k not in parts.overrides]
    if missing_th:
        if strategy == "new_modules" and len(missing_th) == len(time_head):
            logger.warning("%s: export with strategy=new_modules has no time/head tensors; keeping the base's", path)
        else:
            raise CheckpointError(
                f"{path}: missing the retrained time-embedding/head tensors {format_keys(missing_th)} "
                "(a TalkVerse checkpoint must carry them; the base values are wrong for this model)")
    mismatched = []
    for k, fk in parts.overrides.items():
        s = tuple(sd.shape(fk))
        if s != shapes[k]:
            if k == "trainable_cond_mask.weight" and s[0] == 2 and s[1:] == shapes[k][1:]:
                continue  # handled at load time: trained without FramePack
            mismatched.append((k, s, shapes[k]))
    if parts.lora:
        expected = {m for m in _lora_modules(model)}
        missing_pairs = sorted(expected - set(parts.lora))
        if missing_pairs:
            raise CheckpointError(f"{path}: incomplete LoRA: {len(missing_pairs)} of {len(expected)} target modules "
                                  f"have no pair: {format_keys(missing_pairs)}")
        for module, (a, b) in parts.lora.items():
            out_f, in_f = shapes[module + ".weight"]
            sa, sb = tuple(sd.shape(a)), tuple(sd.shape(b))
            if len(sa) != 2 or len(sb) != 2 or sa[1] != in_f or sb[0] != out_f or sa[0] != sb[1]:
                mismatched.append((module + ".lora_A/B", sa + sb, (sa[0], in_f, out_f, sa[0])))
    if mismatched:
        raise CheckpointError(key_report(f"{path} does not fit the model:", mismatched=mismatched))


def _lora_modules(model) -> list[str]:
    import re
    pat = re.compile(LORA_TARGET_REGEX)
    return [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and pat.fullmatch(n)]


def _attach_adapter(model, parts, sd, rank, alpha, adapter_name, device) -> None:
    from peft import LoraConfig, inject_adapter_in_model, set_peft_model_state_dict

    cfg = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=LORA_TARGET_REGEX)
    inject_adapter_in_model(cfg, model, adapter_name=adapter_name)
    state = {}
    for module, (a, b) in parts.lora.items():
        dt = model.get_submodule(module).weight.dtype
        state[f"{module}.lora_A.weight"] = sd.load(a, dt, device)
        state[f"{module}.lora_B.weight"] = sd.load(b, dt, device)
    result = set_peft_model_state_dict(model, state, adapter_name=adapter_name)
    bad = [k for k in getattr(result, "unexpected_keys", []) if "lora" in k]
    if bad:
        raise CheckpointError(f"peft rejected LoRA keys: {format_keys(bad)}")
    model.to(device)
