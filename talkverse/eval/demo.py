"""Lip-sync evaluation of a pipeline on synthetic talking-face clips with exact ground truth (evaluation.md §6).

For each held-out clip: the reference image is the clip identity's closed-mouth render, the audio is the clip's
track; the generated video's mouth openness (model-free dark-red readout) is correlated with the speech energy of
that audio over lags of ±10 frames (``av_sync``). Control: the same generated videos scored against another clip's
audio (a cyclic shift of the clip list, and every other clip's audio). The clips' ground-truth videos get the same
scores, for comparison. Fidelity: the PSNR of every generated frame against the clip's exact ground-truth frame
(re-rendered from the stored identity, openness and seed), beside the VAE round trip of the same ground truth (the
ceiling any generator behind this VAE can reach), and the eye readout (``eye_readout``: eyes that vanish read ~0).
Long clips: the correlation in the first and the last ``frames_per_clip`` window, and the colour drift (χ² of RGB
histograms to the first frame) per second; for a minute-long clip, PSNR and AV-corr over its first and last 10 s.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..media.audio import load_audio
from ..media.constants import SAMPLE_RATE
from ..vision.energy import speech_energy
from ..vision.mouth import synthetic_mouth_openness
from ..vision.sync import av_sync
from .drift import drift_per_second
from .fidelity import psnr_per_frame, window_median


@dataclass
class ClipScore:
    clip_id: str
    frames: int
    offset: int | None
    best: float
    corr0: float
    shuffled_best: float | None = None
    psnr: float | None = None  # median over frames, generated vs ground truth
    vae_psnr: float | None = None  # median over frames, VAE round trip of the ground truth vs ground truth
    eyes: float | None = None  # median eye readout of the generated frames
    eyes_truth: float | None = None  # the same of the ground truth


def clips_of(root: Path) -> list[tuple[str, Path, Path]]:
    """(clip_id, mp4, ground-truth npz) of a synthetic dataset folder."""
    with open(root / "metadata.csv") as f:
        rows = list(csv.DictReader(f))
    out = []
    for row in rows:
        mp4 = root / row["video_path"]
        out.append((mp4.stem, mp4, mp4.with_suffix(".gt.npz")))
    return out


def generate_for_clip(pipe, mp4: Path, gt: Path, frames_per_clip: int, steps: int, guidance: float, seed: int,
                      max_seconds: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 frames [T, H, W, 3] as the mp4 writer rounds them, 16 kHz audio) generated from the clip identity's
    reference image + the clip audio."""
    import torch

    from ..media.writer import frames_to_uint8
    from ..testing.synthetic import load_ground_truth, reference_image

    truth = load_ground_truth(gt)
    image = reference_image(truth["identity"], 128)
    wave = load_audio(mp4)
    if max_seconds is not None:
        wave = wave[: int(max_seconds * SAMPLE_RATE)]
    clips = pipe.iter_clips(image, wave, height=128, width=128, frames_per_clip=frames_per_clip,
                            num_inference_steps=steps, guidance_scale=guidance,
                            generator=torch.Generator().manual_seed(seed), progress=False)
    frames = torch.cat(list(clips), dim=1)  # [3, T, H, W] in [-1, 1]
    return frames_to_uint8(frames.permute(1, 2, 3, 0)).numpy(), wave


def score(frames: np.ndarray, wave: np.ndarray) -> tuple[int | None, float, float]:
    mouth = synthetic_mouth_openness(frames)
    energy = speech_energy(wave, SAMPLE_RATE, len(frames))
    r = av_sync(mouth, energy)
    return r.offset, float(r.best), float(r.corr0)


def _fit_length(wave: np.ndarray, n: int) -> np.ndarray:
    return np.resize(wave, n) if len(wave) < n else wave[:n]


def _sync_table(videos: list[np.ndarray], waves: list[np.ndarray]) -> np.ndarray:
    """best-lag AV-corr of video i against audio j (cut or tiled to video i's audio length): [N, N]."""
    n = len(videos)
    mouths = [synthetic_mouth_openness(v) for v in videos]  # once per video, not per pair
    table = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            energy = speech_energy(_fit_length(waves[j], len(waves[i])), SAMPLE_RATE, len(videos[i]))
            table[i, j] = av_sync(mouths[i], energy).best
    return table


def _summary(table: np.ndarray) -> dict:
    n = len(table)
    off = ~np.eye(n, dtype=bool)
    return {"median_best": float(np.median(np.diag(table))),
            # the control of issue 6: each clip against the next clip's audio (a cyclic shift of the clip list)
            "median_shuffled_best": float(np.median(table[np.arange(n), (np.arange(n) + 1) % n])),
            # the same control over every other clip's audio (N (N - 1) pairs): a less noisy estimate of the null
            "median_shuffled_best_all_pairs": float(np.median(table[off]))}


def ground_truth_frames(gt: Path, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """The exact ground truth of a synthetic clip, re-rendered from its ``.gt.npz``: (uint8 frames [T, H, W, 3],
    DWPose keypoints (T, 1, 133, 3))."""
    from ..testing.synthetic import load_ground_truth, render_clip

    truth = load_ground_truth(gt)
    still = bool(truth.get("still", False))
    res = render_clip(truth["identity"], truth["openness"], size=size, seed=truth["render_seed"], blinks=not still,
                      still=still)
    return res.frames, res.keypoints


def vae_round_trip(pipe, frames: np.ndarray, window: int = 97) -> np.ndarray:
    """uint8 [T, H, W, 3] -> encoded and decoded by the pipeline's VAE -> uint8 [T', H, W, 3], in windows of at most
    ``window`` frames (97 = 73 motion + 24 main frames: what training encodes jointly and what the pipeline decodes
    per continuation clip), each with a fresh causal cache. T' = T unless T < 1 + 4k (then the trailing frames the
    VAE's 1 + 4k chunking drops are dropped)."""
    import torch

    from ..media.writer import frames_to_uint8

    T = len(frames)
    if T < window:
        window = 1 + 4 * ((T - 1) // 4)
    starts = list(range(0, T - window + 1, window))
    if starts[-1] + window < T:
        starts.append(T - window)  # the last window overlaps the one before it
    out = np.zeros((max(s + window for s in starts), *frames.shape[1:]), np.uint8)
    for s in starts:
        x = torch.from_numpy(np.ascontiguousarray(frames[s:s + window])).permute(3, 0, 1, 2)[None].float()
        with torch.no_grad():
            rec = pipe.vae_codec.decode(pipe.encode_video(x / 127.5 - 1.0))[0]
        out[s:s + window] = frames_to_uint8(rec.permute(1, 2, 3, 0)).numpy()
    return out


def fidelity(pipe, frames: np.ndarray, gt: Path) -> dict:
    """PSNR of generated ``frames`` against the clip's ground truth, the VAE ceiling, and the eye readouts."""
    from ..testing.synthetic.faces import eye_readout

    truth, keypoints = ground_truth_frames(gt, frames.shape[1])
    n = min(len(frames), len(truth))
    vae = vae_round_trip(pipe, truth[:n])
    return {"psnr": float(np.median(psnr_per_frame(frames[:n], truth[:n]))),
            "vae_psnr": float(np.median(psnr_per_frame(vae, truth[:len(vae)]))),
            "eyes": float(np.median(eye_readout(frames[:n], keypoints[:n]))),
            "eyes_truth": float(np.median(eye_readout(truth[:n], keypoints[:n])))}


def evaluate_heldout(pipe, root: Path, frames_per_clip: int = 24, steps: int = 20, guidance: float = 4.0,
                     seed: int = 0, limit: int | None = None) -> dict:
    """Scores of the generated videos, and for comparison the same scores of the clips' ground-truth videos (their
    ceiling, and the null level of the shuffled control for perfectly synced video), with the fidelity scores."""
    from ..media.video import read_video_frames

    clips = clips_of(root)[:limit]
    gens = [generate_for_clip(pipe, mp4, gt, frames_per_clip, steps, guidance, seed) for _, mp4, gt in clips]
    frames, waves = [g[0] for g in gens], [g[1] for g in gens]
    table = _sync_table(frames, waves)
    scores = []
    for i, (cid, _, gt) in enumerate(clips):
        off, best, c0 = score(frames[i], waves[i])
        scores.append(ClipScore(cid, len(frames[i]), off, best, c0, float(table[i, (i + 1) % len(clips)]),
                                **fidelity(pipe, frames[i], gt)))
    lags = [abs(s.offset) for s in scores if s.offset is not None]
    truth = [read_video_frames(mp4, max_frames=len(f))[0] for (_, mp4, _), f in zip(clips, frames)]
    psnrs = [s.psnr for s in scores]
    return {"clips": [asdict(s) for s in scores], **_summary(table),
            "median_abs_lag": float(np.median(lags)) if lags else None,
            "median_psnr": float(np.median(psnrs)), "min_psnr": float(np.min(psnrs)),
            "median_vae_psnr": float(np.median([s.vae_psnr for s in scores])),
            "ground_truth": _summary(_sync_table(truth, waves))}


def evaluate_minute(pipe, root: Path, frames_per_clip: int = 24, steps: int = 20, guidance: float = 4.0,
                    seed: int = 0, window_seconds: float = 10.0, limit: int | None = None) -> dict:
    """Identity and lip sync held over a long clip: PSNR against the ground truth and AV-corr in the first and the
    last ``window_seconds``, with the per-second PSNR curve."""
    out = []
    for cid, mp4, gt in clips_of(root)[:limit]:
        frames, wave = generate_for_clip(pipe, mp4, gt, frames_per_clip, steps, guidance, seed)
        truth, _ = ground_truth_frames(gt, frames.shape[1])
        n = min(len(frames), len(truth))
        psnr = psnr_per_frame(frames[:n], truth[:n])
        mouth = synthetic_mouth_openness(frames[:n])
        energy = speech_energy(wave, SAMPLE_RATE, len(frames))[:n]
        w = int(round(window_seconds * 25))
        first, last = av_sync(mouth[:w], energy[:w]), av_sync(mouth[-w:], energy[-w:])
        per_second = [float(np.median(psnr[k:k + 25])) for k in range(0, n, 25)]
        out.append({"clip_id": cid, "frames": n, "seconds": n / 25,
                    "psnr_first": window_median(psnr, window_seconds, "first"),
                    "psnr_last": window_median(psnr, window_seconds, "last"),
                    "corr_first": float(first.best), "corr_last": float(last.best),
                    "lag_first": first.offset, "lag_last": last.offset, "psnr_per_second": per_second})
    return {"clips": out}


def evaluate_long(pipe, root: Path, frames_per_clip: int = 24, steps: int = 20, guidance: float = 4.0,
                  seed: int = 0, limit: int | None = None) -> dict:
    out = []
    for cid, mp4, gt in clips_of(root)[:limit]:
        frames, wave = generate_for_clip(pipe, mp4, gt, frames_per_clip, steps, guidance, seed)
        energy = speech_energy(wave, SAMPLE_RATE, len(frames))
        mouth = synthetic_mouth_openness(frames)
        w = max(frames_per_clip, 48)  # a window long enough for the ±10 lag scan
        first = av_sync(mouth[:w], energy[:w])
        last = av_sync(mouth[-w:], energy[-w:])
        drift = drift_per_second(frames)
        out.append({"clip_id": cid, "frames": len(frames), "clips": -(-(len(frames) + 3) // frames_per_clip),
                    "first_best": first.best, "last_best": last.best, "first_offset": first.offset,
                    "last_offset": last.offset,
                    "colour_chi2_max": float(np.max(drift.colour_chi2)),
                    "colour_chi2_slope_per_min": float(drift.colour_chi2_slope_per_min)})
    return {"clips": out}
