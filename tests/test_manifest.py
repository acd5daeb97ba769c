"""Key names and shapes against the reference manifests (checkpoints.md §7, points 1-6). CPU, meta device, no weights."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import peft
import pytest
import torch
from diffusers import WanTransformer3DModel

from helpers import load_script
from talkverse.configs import model_config
from talkverse.convert.wan_keys import (
    NEW_MODULE_PREFIXES,
    diffusers_to_original,
    is_new_module_key,
    original_to_diffusers,
)
from talkverse.manifest import (
    build_meta_model,
    compare,
    model_keys_original,
    num_params,
    peft_key_to_plain,
    read_manifest,
)
from talkverse.models.transformer_talkverse import TalkVerseTransformer3DModel

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REF = SHARED / "reference"
FULL_TSV = REF / "s2v5b_state_dict_shapes.tsv"
S2V14B_TSV = FULL_TSV.parent / "parity_s2v14b" / "s2v14b_state_dict_shapes.tsv"  # the config is detected: s2v_14b
TI2V_TSV = REF / "ti2v5b_state_dict_shapes.tsv"
ADDED_TSV = REF / "s2v5b_added_keys_vs_ti2v5b.tsv"

needs_shared = pytest.mark.skipif(
    not FULL_TSV.is_file(), reason=f"shared reference folder absent ({SHARED}): manifests not available"
)

FULL_PARAMS = 5_704_930_777
TI2V_PARAMS = 4_999_787_712
ADDED_PARAMS = 705_143_065
LORA_PARAMS = 275_251_200
LORA_TARGETS = r"blocks\.\d+\.(attn1\.(to_q|to_k|to_out\.0)|attn2\.(to_q|to_k|to_out\.0)|ffn\.net\.(0\.proj|2))"

# Wan2.2-TI2V-5B transformer config of the Diffusers repo (checkpoints.md §2).
TI2V_DIFFUSERS_CONFIG = dict(
    patch_size=(1, 2, 2), num_attention_heads=24, attention_head_dim=128, in_channels=48, out_channels=48,
    text_dim=4096, freq_dim=256, ffn_dim=14336, num_layers=30, cross_attn_norm=True,
    qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024,
)


@pytest.fixture(scope="module")
def meta_model() -> TalkVerseTransformer3DModel:
    return build_meta_model("s2v_5b")


@pytest.fixture(scope="module")
def ours(meta_model) -> dict[str, tuple[int, ...]]:
    return model_keys_original(meta_model)


@pytest.fixture(scope="module")
def wan_meta() -> WanTransformer3DModel:
    with torch.device("meta"):
        return WanTransformer3DModel(**TI2V_DIFFUSERS_CONFIG)


def _load_script():
    return load_script("check_manifest")


# 1-3. Full manifest: equal key sets, equal shapes, parameter total.
@needs_shared
def test_full_manifest_equal(ours):
    manifest = read_manifest(FULL_TSV)
    assert len(manifest) == 976
    missing = sorted(set(manifest) - set(ours))
    extra = sorted(set(ours) - set(manifest))
    assert not missing and not extra, f"missing {missing[:10]}, extra {extra[:10]}"
    bad = {k: (manifest[k], ours[k]) for k in manifest if manifest[k] != ours[k]}
    assert not bad, f"shape mismatches: {list(bad.items())[:10]}"
    assert num_params(manifest) == num_params(ours) == FULL_PARAMS

    result = compare(manifest, ours)
    assert result.ok and result.scope == "full"
    assert result.summary() == "976/976 keys, equal shapes, 5,704,930,777 parameters"


def test_our_totals_without_manifest(meta_model, ours):
    sd = meta_model.state_dict()
    assert len(sd) == len(ours) == 976
    assert sum(t.numel() for t in sd.values()) == FULL_PARAMS
    new = {k: s for k, s in ours.items() if is_new_module_key(k)}
    assert len(new) == 151 and num_params(new) == ADDED_PARAMS
    # New-module keys keep their reference names (and the casual_ misspelling) verbatim.
    assert all(diffusers_to_original(k) == k for k in sd if is_new_module_key(k))
    assert "casual_audio_encoder.weights" in sd


# 4. Base subset == TI2V manifest; the added manifest == our new-module subset.
@needs_shared
def test_ti2v_manifest_equals_base_subset(ours):
    manifest = read_manifest(TI2V_TSV)
    base = {k: s for k, s in ours.items() if not k.startswith(NEW_MODULE_PREFIXES)}
    assert len(manifest) == len(base) == 825
    assert manifest == base
    assert num_params(manifest) == TI2V_PARAMS

    result = compare(manifest, ours)
    assert result.ok and result.scope == "base" and result.outside == 151
    assert result.summary().startswith("825/825 keys of the base subset, equal shapes, 4,999,787,712 parameters")

    added = read_manifest(ADDED_TSV)
    assert added == {k: s for k, s in ours.items() if is_new_module_key(k)}
    assert num_params(added) == ADDED_PARAMS


def test_diffusers_wan_equals_our_base(meta_model, wan_meta):
    wan_sd = wan_meta.state_dict()
    ours_sd = meta_model.state_dict()
    ours_base = {k: tuple(v.shape) for k, v in ours_sd.items() if not is_new_module_key(k)}
    assert {k: tuple(v.shape) for k, v in wan_sd.items()} == ours_base
    # The key map round-trips on every diffusers key.
    for k in wan_sd:
        assert original_to_diffusers(diffusers_to_original(k)) == k


@needs_shared
def test_diffusers_wan_maps_onto_ti2v_manifest(wan_meta):
    manifest = read_manifest(TI2V_TSV)
    mapped = {}
    for k, v in wan_meta.state_dict().items():
        orig = diffusers_to_original(k)
        assert orig is not None, k
        assert orig not in mapped, f"two diffusers keys map to {orig}"
        mapped[orig] = tuple(v.shape)
    assert mapped == manifest  # 1:1, shapes equal
    # And back: every manifest key maps onto a diffusers key.
    assert {original_to_diffusers(k) for k in manifest} == set(wan_meta.state_dict())


# 5. LoRA r=128 on q/k/o of both attentions + ffn.0/ffn.2, never v.
def test_lora_adapter_keys():
    model = build_meta_model("s2v_5b")
    cfg = peft.LoraConfig(r=128, lora_alpha=128, lora_dropout=0.0, target_modules=LORA_TARGETS)
    peft.inject_adapter_in_model(cfg, model)

    adapted = [n for n, m in model.named_modules() if isinstance(m, peft.tuners.lora.LoraLayer)]
    assert len(adapted) == 240
    assert not any(".to_v" in n for n in adapted)

    sd = model.state_dict()
    lora = {k: tuple(v.shape) for k, v in sd.items() if ".lora_" in k}
    assert len(lora) == 480
    assert num_params(lora) == LORA_PARAMS

    exported = {diffusers_to_original(peft_key_to_plain(k)): s for k, s in lora.items()}
    assert len(exported) == 480 and None not in exported
    pat = re.compile(
        r"blocks\.(\d+)\.((self_attn|cross_attn)\.(q|k|o)|ffn\.(0|2))\.lora_(A|B)\.weight"
    )
    dim, ffn, r = 3072, 14336, 128
    for key, shape in exported.items():
        m = pat.fullmatch(key)
        assert m, key
        assert 0 <= int(m.group(1)) < 30
        fan_in, fan_out = (dim, ffn) if m.group(5) == "0" else (ffn, dim) if m.group(5) == "2" else (dim, dim)
        assert shape == ((r, fan_in) if m.group(6) == "A" else (fan_out, r)), (key, shape)
    # 8 targets x 30 blocks, each with an A and a B.
    assert len({k.rsplit(".lora_", 1)[0] for k in exported}) == 240

    # The full key map of the adapted model: base weights fold back onto the 976 original keys, plus the 480 LoRA keys.
    keys = model_keys_original(model)
    assert len(keys) == 976 + 480
    assert {k: s for k, s in keys.items() if ".lora_" not in k} == model_keys_original(build_meta_model("s2v_5b"))


# 6. Non-persistent state does not reach the state_dict.
def test_no_rope_tables_or_pre_norms_in_state_dict(meta_model):
    assert list(meta_model.named_buffers()) == []
    bad = [k for k in meta_model.state_dict() if re.search(r"rope|freqs|pre_norm", k)]
    assert not bad
    assert not [n for n, _ in meta_model.named_modules() if "pre_norm" in n]

    torch.manual_seed(0)
    tiny = TalkVerseTransformer3DModel(**model_config("s2v_tiny"))
    before = list(tiny.state_dict())
    tiny.rotary_emb(2, 8, 8, True, torch.device("cpu"))  # fills the RoPE cache
    assert len(tiny._rope_cache) == 1
    assert list(tiny.state_dict()) == before


# The script.
@needs_shared
@pytest.mark.parametrize(
    "tsv, expected",
    [
        (FULL_TSV, "976/976 keys, equal shapes, 5,704,930,777 parameters"),
        (TI2V_TSV, "825/825 keys of the base subset, equal shapes, 4,999,787,712 parameters"),
        (ADDED_TSV, "151/151 keys of the new-module subset, equal shapes, 705,143,065 parameters"),
        (S2V14B_TSV, "1260/1260 keys, equal shapes, 16,295,755,609 parameters"),
    ],
)
def test_script_passes(tsv, expected, capsys):
    assert _load_script().main([str(tsv)]) == 0
    assert expected in capsys.readouterr().out


@needs_shared
def test_script_fails_on_changed_shape(tmp_path, capsys):
    lines = FULL_TSV.read_text().splitlines()
    i = next(n for n, line in enumerate(lines) if line.startswith("blocks.7.ffn.0.weight\t"))
    lines[i] = "blocks.7.ffn.0.weight\t[14336, 3071]"
    bad = tmp_path / "bad.tsv"
    bad.write_text("\n".join(lines) + "\n")
    assert _load_script().main([str(bad)]) == 1
    out = capsys.readouterr().out
    assert "blocks.7.ffn.0.weight: manifest [14336, 3071] vs ours [14336, 3072]" in out
    assert "MISMATCH" in out


def test_script_fails_on_missing_and_extra_keys(tmp_path, ours, capsys):
    # Synthetic full manifest (no shared folder needed): drop one key, add an unknown one.
    lines = [f"{k}\t{list(s)}" for k, s in ours.items() if k != "head.modulation"]
    lines.append("audio_injector.injector.11.q.weight\t[3072, 3072]")
    bad = tmp_path / "bad.tsv"
    bad.write_text("\n".join(lines) + "\n")
    assert _load_script().main([str(bad)]) == 1
    out = capsys.readouterr().out
    assert "missing keys (in manifest, not ours): 1\n  audio_injector.injector.11.q.weight" in out
    assert "extra keys (ours, not in manifest): 1\n  head.modulation" in out


def test_read_manifest_rejects_malformed(tmp_path):
    p = tmp_path / "m.tsv"
    p.write_text("a.weight\t[1, 2]\n\nb.weight\t[3]\n")
    assert read_manifest(p) == {"a.weight": (1, 2), "b.weight": (3,)}
    for text in ("a.weight [1, 2]\n", "a.weight\t[1, x]\n", "a.weight\t[1]\na.weight\t[1]\n", "a\t{\"x\": 1}\n"):
        p.write_text(text)
        with pytest.raises(ValueError):
            read_manifest(p)


@pytest.mark.slow
@needs_shared
def test_script_runs_standalone():
    """The script runs from a bare checkout (no install): exit 0 on the full manifest, from any working directory."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "check_manifest.py"), str(FULL_TSV), "--config", "s2v_5b"],
        capture_output=True, text=True, cwd=REPO.parent, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "976/976 keys, equal shapes, 5,704,930,777 parameters" in proc.stdout
