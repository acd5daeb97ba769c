"""Audio decoding: any audio file (or the audio track of a video) to float32 samples, once (inference.md §4).

Decoding: ``soundfile`` (libsndfile) for what it can open (wav, flac, ogg, ...), otherwise PyAV (ffmpeg: mp3, m4a/aac,
video containers). :func:`read_audio` keeps the file's own rate and channels (what the mp4 writer muxes);
:meth:`DecodedAudio.waveform` derives the model's input from the same samples: the channel mean, resampled with
``librosa.resample(res_type="soxr_hq")``, librosa's default, which the reference used (``librosa.load``). On the parity
fixtures this path is bit-exact with ``librosa.load(path, sr=16000)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .constants import SAMPLE_RATE


class AudioError(ValueError):
    """A bad audio input: missing, unreadable, empty, or without an audio stream. The message names the file."""

    def __init__(self, path, problem: str):
        self.path, self.problem = str(path), problem
        super().__init__(f"{path}: {problem}")


@dataclass
class DecodedAudio:
    """The samples of one file: ``samples`` float32 [channels, n] at ``sample_rate`` (the file's own)."""

    path: Path
    samples: np.ndarray
    sample_rate: int
    _mono: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def seconds(self) -> float:
        return self.samples.shape[1] / self.sample_rate

    def waveform(self, sr: int = SAMPLE_RATE) -> np.ndarray:
        """Mono float32 [n'] at ``sr`` Hz (the channel mean, then soxr-HQ resampling), computed once per rate."""
        if sr not in self._mono:
            y = resample(np.ascontiguousarray(to_mono(self.samples), dtype=np.float32), self.sample_rate, sr)
            self._mono[sr] = np.ascontiguousarray(y, dtype=np.float32)
        return self._mono[sr]


def _decode_soundfile(fh) -> tuple[np.ndarray, int] | None:
    """[channels, samples] float32 and the rate, or None if libsndfile cannot read the file."""
    import soundfile as sf

    try:
        with sf.SoundFile(fh) as f:
            data = f.read(dtype="float32", always_2d=True)  # [samples, channels]
            return np.ascontiguousarray(data.T), int(f.samplerate)
    except Exception:  # libsndfile could not parse it: let ffmpeg try
        return None


def _decode_av(path: Path, fh) -> tuple[np.ndarray, int, float | None]:
    """[channels, samples] float32, the rate and the declared seconds of the first audio stream (ffmpeg, PyAV)."""
    import av

    try:
        container = av.open(fh)
    except Exception as e:
        raise AudioError(path, f"cannot be decoded as audio ({type(e).__name__}: {e})") from None
    try:
        if not container.streams.audio:
            raise AudioError(path, "has no audio stream")
        stream = container.streams.audio[0]
        declared = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
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
        return np.zeros((1, 0), np.float32), int(rate or 0), declared
    return np.concatenate(chunks, axis=1).astype(np.float32, copy=False), int(rate), declared


TRUNCATION_TOLERANCE_S = 0.1  # encoder padding and container rounding stay well below this


def _wav_declared_seconds(fh) -> float | None:
    """The length a RIFF/WAVE header declares (its ``data`` chunk size), from the header alone; None if not a WAV
    or the length is unknown. Leaves ``fh`` at the start."""
    import struct

    try:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block = rate = None
        while True:
            chunk = fh.read(8)
            if len(chunk) < 8:
                return None
            cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"fmt ":
                fmt = fh.read(size)
                rate, block = struct.unpack("<I", fmt[4:8])[0], struct.unpack("<H", fmt[12:14])[0]
                fh.seek(size % 2, 1)
            elif cid == b"data":
                # 0 and 0xFFFFFFFF are streaming writers' "unknown length" markers
                return None if not rate or not block or size in (0, 0xFFFFFFFF) else size / block / rate
            else:
                fh.seek(size + size % 2, 1)
    finally:
        fh.seek(0)


def decode_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """The file's samples as float32 [channels, samples] at its own rate, from one open of the file. Raises
    ``AudioError`` for bad input, including a file whose header declares more audio than can be decoded (a cut-off
    download, a truncated WAV): both lengths are given, rather than a silently shorter video."""
    path = Path(path)
    if not path.exists():
        raise AudioError(path, "file not found")
    if not path.is_file():
        raise AudioError(path, "not a regular file")
    with open(path, "rb") as fh:
        declared = _wav_declared_seconds(fh)
        decoded = _decode_soundfile(fh)
        if decoded is None:
            fh.seek(0)
            data, rate, from_container = _decode_av(path, fh)
            declared = declared if declared is not None else from_container
        else:
            data, rate = decoded
    if data.shape[-1] == 0:
        raise AudioError(path, "contains no audio samples (0 s)")
    if rate <= 0:
        raise AudioError(path, f"has an invalid sample rate {rate}")
    seconds = data.shape[1] / rate
    if declared is not None and seconds < declared - max(TRUNCATION_TOLERANCE_S, 0.01 * declared):
        raise AudioError(path, f"is truncated: its header declares {declared:.2f} s of audio but only {seconds:.2f} s "
                               "can be decoded")
    return data, rate


def read_audio(path: str | Path) -> DecodedAudio:
    """Decode ``path`` once; the result serves both the model (``waveform()``) and the mp4 writer (``samples``)."""
    data, rate = decode_audio(path)
    return DecodedAudio(Path(path), data, rate)


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
    return read_audio(path).waveform(sr)


def probe_duration(path: str | Path) -> float:
    """Seconds of audio from the file's header alone (no decoding); 0.0 when the header does not say."""
    try:
        import soundfile

        return float(soundfile.info(str(path)).duration)
    except Exception:  # noqa: BLE001 - not a libsndfile format: ask ffmpeg
        pass
    try:
        import av

        with av.open(str(path)) as container:
            if container.duration is not None:
                return float(container.duration) / 1_000_000  # av.time_base
            for stream in container.streams.audio:
                if stream.duration is not None and stream.time_base is not None:
                    return float(stream.duration * stream.time_base)
    except Exception:  # noqa: BLE001
        pass
    return 0.0
