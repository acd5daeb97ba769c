"""Per-video-frame speech energy for the lip-sync proxy (evaluation.md §2)."""

from __future__ import annotations

import numpy as np

from ..media.constants import FPS

BAND_HZ = (300.0, 3400.0)
RMS_FLOOR = 1e-4


def speech_energy(wave, sr: int, num_frames: int, fps: float = FPS) -> np.ndarray:
    """e_t = log(rms_t + 1e-4) of band-passed speech, one value per video frame: float64 [num_frames].

    * 4th-order Butterworth band-pass 300–3400 Hz (upper edge capped at 0.95·Nyquist), zero-phase
      (``scipy.signal.sosfiltfilt``);
    * rms_t over a 2-frame window centred on the frame centre (t + 0.5) / fps, i.e. [t − 0.5, t + 1.5) / fps,
      clipped to the signal; NaN for a frame whose window lies wholly outside the audio.
    """
    from scipy.signal import butter, sosfiltfilt

    wave = np.asarray(wave, dtype=np.float64)
    if wave.ndim == 2:  # [channels, samples] or [samples, channels]: mix down
        wave = wave.mean(axis=0 if wave.shape[0] < wave.shape[1] else 1)
    if wave.ndim != 1:
        raise ValueError(f"expected a mono waveform [samples], got shape {wave.shape}")
    if sr <= 0 or fps <= 0:
        raise ValueError(f"sample rate and fps must be positive, got sr={sr}, fps={fps}")
    num_frames = int(num_frames)
    out = np.full(num_frames, np.nan, np.float64)
    if num_frames == 0 or wave.size == 0:
        return out

    lo, hi = BAND_HZ[0], min(BAND_HZ[1], 0.95 * sr / 2.0)
    if hi <= lo:
        raise ValueError(f"sample rate {sr} Hz is too low for the {lo:.0f}-{BAND_HZ[1]:.0f} Hz speech band")
    sos = butter(4, [lo, hi], btype="bandpass", fs=sr, output="sos")
    padlen = 3 * (2 * len(sos) + 1)
    if wave.size > padlen:
        y = sosfiltfilt(sos, wave)
    else:  # too short for the default edge padding: pad with zeros, filter, cut back
        y = sosfiltfilt(sos, np.pad(wave, padlen))[padlen:-padlen]

    csum = np.concatenate([[0.0], np.cumsum(y * y)])
    n = y.size
    t = np.arange(num_frames, dtype=np.float64)
    start = np.clip(np.round((t - 0.5) / fps * sr).astype(np.int64), 0, n)
    stop = np.clip(np.round((t + 1.5) / fps * sr).astype(np.int64), 0, n)
    count = stop - start
    ok = count > 0
    ms = (csum[stop[ok]] - csum[start[ok]]) / count[ok]
    out[ok] = np.log(np.sqrt(np.maximum(ms, 0.0)) + RMS_FLOOR)
    return out
