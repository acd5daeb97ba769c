"""S2V-14B audio chain parity (``parity_s2v14b/audio/``; s2v14b.md §4.1): wav -> wav2vec2 (24 layers, final-LN fix)
-> 30 fps linear interpolation -> 16 fps buckets (half-to-even indices, exact) -> the tiny DiT's causal audio encoder
on each 12-frame clip."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import load_file

from ..loaders.wav2vec import load_wav2vec
from ..media.audio import load_audio
from ..models.audio_columns import bucket_fps, bucket_indices, interpolate_30fps, reference_num_clips_fps
from .common import S2V_14B, CaseResult, register

ABS_TOL = 1e-4  # max abs on the audio features (README)
TOL = 1e-4  # relative, the causal audio encoder's outputs
FEATURE_FPS, VIDEO_FPS = 30, 16


def _clip_checks(res: CaseResult, fixtures: Path, exp: dict, emb12: torch.Tensor) -> None:
    from .dit import model_from_fixture

    model = model_from_fixture(fixtures / "dit_tiny")
    enc = model.casual_audio_encoder
    for r in sorted({int(m.group(1)) for k in exp if (m := re.match(r"clip(\d+)_f12\.", k))}):
        p = f"clip{r}_f12."
        audio = emb12[..., 12 * r:12 * (r + 1)]
        res.check_abs(p + "audio_input", audio, exp[p + "audio_input"], ABS_TOL)
        with torch.no_grad():
            prefix = audio[..., :1].expand(*audio.shape[:-1], model.config.motion_frames)
            full = torch.cat([prefix, audio], dim=-1)
            res.check(p + "mixed", enc.mix_layers(full), exp[p + "mixed"], TOL)
            local_full, global_full = enc(full)
            local, glob = model.encode_audio(audio)
        res.check(p + "local_full", local_full, exp[p + "local_full"], TOL)
        res.check(p + "global_full", global_full, exp[p + "global_full"], TOL)
        res.check(p + "local", local, exp[p + "local"], TOL)
        res.check(p + "global", glob, exp[p + "global"], TOL)


@register("audio", "audio", "speech.wav", models=(S2V_14B,))
def run(fixtures: Path, folder: Path) -> Iterator[CaseResult]:
    res = CaseResult("audio/speech_s2v14b")
    try:
        exp = load_file(folder / "expected_speech.safetensors")
        features = load_wav2vec(folder / "tiny_wav2vec2_24l")
        wave = torch.from_numpy(load_audio(folder / "speech.wav"))
        res.check_abs("waveform_16k", wave, exp["waveform_16k"], ABS_TOL)
        iv = features.normalize(wave.numpy())
        res.check_abs("input_values", iv, exp["input_values"], ABS_TOL)
        hs = features.hidden_states(iv)
        res.check_abs("hidden_states_50hz", hs, exp["hidden_states_50hz"], ABS_TOL)
        feat = interpolate_30fps(hs)
        res.check_abs("feat_30fps", feat, exp["feat_30fps"], ABS_TOL)
        res.check_abs("feat_30fps_layerwise", features.features(wave.numpy(), FEATURE_FPS), exp["feat_30fps"], ABS_TOL)
        emb12 = None
        for n in sorted(int(m.group(1)) for k in exp if (m := re.fullmatch(r"audio_emb_f(\d+)", k))):
            clips = reference_num_clips_fps(feat.shape[1], n, FEATURE_FPS, VIDEO_FPS)
            res.check_exact(f"num_repeat_f{n}", torch.tensor([clips]), exp[f"num_repeat_f{n}"].reshape(1))
            idx = torch.from_numpy(bucket_indices(clips * n, FEATURE_FPS, VIDEO_FPS))
            res.check_exact(f"bucket_index_f{n}", idx, exp[f"bucket_index_f{n}"])
            emb = bucket_fps(feat, clips * n, FEATURE_FPS, VIDEO_FPS)
            res.check_abs(f"audio_emb_f{n}", emb, exp[f"audio_emb_f{n}"], ABS_TOL)
            emb12 = emb if n == 12 else emb12
        if emb12 is not None:
            _clip_checks(res, fixtures, exp, emb12)
    except Exception as e:  # noqa: BLE001 - reported as a failed case
        res.error = f"{type(e).__name__}: {e}"
    yield res
