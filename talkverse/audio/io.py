"""Decode any audio (or the audio track of a video) to 16 kHz mono float32, like ``librosa.load(path, sr=16000)``.

Decoding: ``soundfile`` (libsndfile) for what it can open (wav, flac, ogg, ...), otherwise PyAV (ffmpeg: mp3, m4a/aac,
video containers). Mix-down: mean over channels. Resampling: ``librosa.resample(res_type="soxr_hq")``, librosa's default,
which the reference used (``librosa.load``); on the parity fixtures this path is bit-exact with ``librosa.load``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import AudioError

SAMPLE_RATE = 16000


def _decode_soundfile(path: Path) -> tuple[np.ndarray, int] | None:
    """[channels, samples] float32 and the rate, or None if libsndfile cannot read the file."""
    import soundfile as sf

    try:
        with sf.SoundFile(str(path)) as f:
            data = f.read(dtype="float32", always_2d=True)  # [samples, channels]
            return np.ascontiguousarray(data.T), int(f.samplerate)
    except Exception:  # libsndfile could not parse it: let ffmpeg try
        return None


def _decode_av(path: Path) -> tuple[np.ndarray, int]:
    """[channels, samples] float32 and the rate of the first audio stream, decoded by ffmpeg (PyAV)."""
    import av

    try:
        container = av.open(str(path))
    except Exception as e:
        raise AudioError(path, f"cannot be decoded as audio ({type(e).__name__}: {e})") from None
    try:
        if not container.streams.audio:
            raise AudioError(path, "has no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp")  # float32 planar; keeps the rate and channel layout
        chunks, rate = [], stream.rate
        try:
            for frame in container.decode(stream):
                rate = frame.sample_rate or rate
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
        except AudioError:
            raise
        except Exception as e:
            raise AudioError(path, f"audio stream cannot be decoded ({type(e).__name__}: {e})") from None
    finally:
        container.close()
    if not chunks:
        return np.zeros((1, 0), np.float32), int(rate or 0)
    return np.concatenate(chunks, axis=1).astype(np.float32, copy=False), int(rate)


def decode_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """The file's samples as float32 [channels, samples] at its own rate. Raises ``AudioError`` for bad input."""
    path = Path(path)
    if not path.exists():
        raise AudioError(path, "file not found")
    if not path.is_file():
        raise AudioError(path, "not a regular file")
    decoded = _decode_soundfile(path)
    data, rate = decoded if decoded is not None else _decode_av(path)
    if data.shape[-1] == 0:
        raise AudioError(path, "contains no audio samples (0 s)")
    if rate <= 0:
        raise AudioError(path, f"has an invalid sample rate {rate}")
    return data, rate


def to_mono(data: np.ndarray) -> np.ndarray:
    """[channels, samples] -> [samples] by the channel mean (librosa.to_mono)."""
    return data.mean(axis=0) if data.shape[0] > 1 else data[0]


def resample(y: np.ndarray, orig_sr: int, sr: int = SAMPLE_RATE) -> np.ndarray:
    """librosa's default resampler (soxr, 'HQ'), which ``librosa.load`` uses."""
    if orig_sr == sr:
        return y
    import librosa

    return librosa.resample(y, orig_sr=orig_sr, target_sr=sr, res_type="soxr_hq")


def load_audio(path: str | Path, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 waveform at ``sr`` Hz from an audio file or the audio track of a video file.

    Silent audio is valid. Raises ``AudioError`` (a ``ValueError``) naming the file for a missing, corrupt or empty
    file, or one without an audio stream.
    """
    data, rate = decode_audio(path)
    y = resample(np.ascontiguousarray(to_mono(data), dtype=np.float32), rate, sr)
    return np.ascontiguousarray(y, dtype=np.float32)
