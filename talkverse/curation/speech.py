"""Stage 3, speech (docs/curation.md): silero-vad (weights in its wheel) measures the fraction of the clip that is
speech. Below ``min_speech_ratio``: ``no_speech`` (silence, music or noise without speech)."""

from __future__ import annotations

from .clipio import read_clip_audio
from .records import add_scores, reject

STAGE = "speech"


class SpeechStage:
    """A Ray actor: loads the silero-vad model once."""

    def __init__(self, cfg):
        import torch
        from silero_vad import load_silero_vad

        torch.set_num_threads(1)
        self.cfg = cfg
        self.model = load_silero_vad()

    def speech_ratio(self, wave) -> float:
        import torch
        from silero_vad import get_speech_timestamps

        if len(wave) == 0:
            return 0.0
        ts = get_speech_timestamps(torch.from_numpy(wave), self.model, sampling_rate=16000,
                                   threshold=self.cfg.speech.vad_threshold)
        return sum(t["end"] - t["start"] for t in ts) / len(wave)

    def __call__(self, row: dict) -> dict:
        if row["stage"]:
            return row
        ratio = self.speech_ratio(read_clip_audio(row, shift=0.0))
        add_scores(row, speech_ratio=ratio)
        if ratio < self.cfg.speech.min_speech_ratio:
            return reject(row, STAGE, "no_speech", f"speech ratio {ratio:.2f} < {self.cfg.speech.min_speech_ratio}")
        return row
