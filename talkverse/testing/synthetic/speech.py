"""Synthetic speech with exact ground truth (evaluation.md §6): babble (a harmonic carrier x a syllable gate), or
espeak-ng speech with an RMS-envelope gate; the ground-truth mouth openness is the mean gate over each 40 ms frame."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
from typing import Optional

import numpy as np

from ...media.constants import FPS, SAMPLE_RATE

SR = SAMPLE_RATE


# ----------------------------------------------------------------------------------------------------- audio
def _carrier(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Harmonic carrier: f0 U(90,230) Hz, ±8 % vibrato at U(0.2,0.6) Hz, 11 harmonics at amplitude 1/k."""
    t = np.arange(n) / sr
    f0 = rng.uniform(90, 230)
    fv = rng.uniform(0.2, 0.6)
    f = f0 * (1.0 + 0.08 * np.sin(2 * np.pi * fv * t + rng.uniform(0, 2 * np.pi)))
    ph = 2 * np.pi * np.cumsum(f) / sr
    y = np.zeros(n)
    for k in range(1, 12):
        y += np.sin(k * ph) / k
    return y


def babble_gate(n: int, rng: np.random.Generator, sr: int = SR) -> tuple[np.ndarray, list[tuple[int, int, float]]]:
    """Syllable gate [n] in [0,1] and its segments (start, length, level) in samples.

    First onset U(0,300) ms; voiced segments U(60,250) ms with a sin^0.7 envelope × level U(0.3,1); gaps U(40,300) ms.
    """
    gate = np.zeros(n, np.float64)
    segs = []
    pos = int(rng.uniform(0, 0.300) * sr)
    while pos < n:
        length = int(rng.uniform(0.060, 0.250) * sr)
        level = float(rng.uniform(0.3, 1.0))
        u = (np.arange(length) + 0.5) / length
        env = level * np.sin(np.pi * u) ** 0.7
        end = min(n, pos + length)
        gate[pos:end] = env[: end - pos]
        segs.append((pos, length, level))
        pos += length + int(rng.uniform(0.040, 0.300) * sr)
    return gate, segs


def babble_audio(seconds: float, seed: int, sr: int = SR) -> tuple[np.ndarray, np.ndarray]:
    """(wave float32 [n], gate float32 [n]) with n = round(seconds·sr): carrier × gate, peak-normalised to 0.5,
    plus N(0, 0.003) noise. Needs nothing beyond numpy."""
    rng = np.random.default_rng([int(seed), 0xA0D])
    n = int(round(seconds * sr))
    gate, _ = babble_gate(n, rng, sr)
    y = _carrier(n, rng, sr) * gate
    peak = float(np.abs(y).max())
    if peak > 0:
        y = y * (0.5 / peak)
    y = y + rng.normal(0, 0.003, n)
    return y.astype(np.float32), gate.astype(np.float32)


_ESPEAK_VOICES = ("en+m1", "en+m3", "en+m5", "en+f1", "en+f2", "en+f4", "en-us+m2", "en-us+f3")
_SYLL = ("ba", "ma", "pa", "lo", "mi", "to", "ne", "su", "ka", "ri", "do", "wa", "fe", "vo", "ha", "ju")


def _babble_text(rng: np.random.Generator, words: int) -> str:
    return " ".join("".join(rng.choice(_SYLL, int(rng.integers(1, 4)))) for _ in range(words))


def espeak_audio(text: Optional[str], seed: int, sr: int = SR, seconds: Optional[float] = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Speech from espeak-ng (voice/speed/pitch varied by ``seed``) as (wave float32, gate float32 in [0,1]).

    ``text=None`` makes pseudo-words from the seed. The gate is the 10 ms RMS envelope (smoothed over 30 ms),
    divided by its maximum. With ``seconds`` the output is cut or zero-padded to round(seconds·sr) samples.
    Raises RuntimeError when espeak-ng is not installed.
    """
    exe = shutil.which("espeak-ng") or shutil.which("espeak")
    if exe is None:
        raise RuntimeError("espeak-ng not found on PATH; use audio='babble'")
    import soundfile as sf

    rng = np.random.default_rng([int(seed), 0xE5])
    if text is None:
        text = _babble_text(rng, max(3, int(round((seconds or 3.0) * 2.5))))
    voice = _ESPEAK_VOICES[int(rng.integers(len(_ESPEAK_VOICES)))]
    speed, pitch = int(rng.integers(130, 181)), int(rng.integers(30, 71))
    with tempfile.TemporaryDirectory() as td:
        wav = os.path.join(td, "s.wav")
        subprocess.run([exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", wav, text],
                       check=True, capture_output=True)
        y, in_sr = sf.read(wav, dtype="float32", always_2d=True)
    y = y.mean(1)
    if in_sr != sr:
        n_out = int(round(len(y) * sr / in_sr))
        y = np.interp(np.arange(n_out) * (in_sr / sr), np.arange(len(y)), y).astype(np.float32)
    if seconds is not None:
        n = int(round(seconds * sr))
        y = np.pad(y, (0, max(0, n - len(y))))[:n]
    peak = float(np.abs(y).max()) if len(y) else 0.0
    if peak > 0:
        y = y * (0.5 / peak)
    hop = sr // 100
    m = int(math.ceil(len(y) / hop))
    fr = np.pad(y, (0, m * hop - len(y))).reshape(m, hop)
    rms = np.sqrt((fr.astype(np.float64) ** 2).mean(1))
    rms = np.convolve(rms, np.ones(3) / 3, mode="same")
    rms = np.where(rms < 0.01 * max(rms.max(), 1e-12), 0.0, rms)
    env = rms / rms.max() if rms.max() > 0 else rms
    gate = np.interp(np.arange(len(y)), np.arange(m) * hop + hop / 2, env)
    return y.astype(np.float32), np.clip(gate, 0, 1).astype(np.float32)


def openness_per_frame(gate: np.ndarray, sr: int = SR, fps: int = FPS) -> np.ndarray:
    """Ground-truth openness [T] = the mean gate over each frame's 1/fps seconds (640 samples at 16 kHz / 25 fps).

    T = **ceil**(len(gate) / (sr/fps)); a trailing partial frame is the mean of the samples it has.
    (The dataset writer makes the audio exactly T·640 samples long, so there is no partial frame there.)
    """
    gate = np.asarray(gate, np.float64)
    spf = sr / fps
    if spf != int(spf):
        raise ValueError(f"sr/fps must be an integer, got {sr}/{fps}")
    spf = int(spf)
    T = int(math.ceil(len(gate) / spf))
    pad = T * spf - len(gate)
    g = np.pad(gate, (0, pad)).reshape(T, spf)
    cnt = np.full(T, spf, np.float64)
    if pad:
        cnt[-1] = spf - pad
    return np.clip(g.sum(1) / cnt, 0.0, 1.0).astype(np.float32)


