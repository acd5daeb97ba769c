"""Audio front end: decode -> 16 kHz mono -> wav2vec2 hidden states -> 25 fps -> per-clip buckets."""

from .bucketing import (bucket_clips, bucket_columns, clip_slice, decimate_25fps, num_frames_50hz,
                        reference_num_clips)
from .errors import AudioError
from .io import SAMPLE_RATE, decode_audio, load_audio, resample, to_mono
from .wav2vec import AudioFeatureExtractor, AudioModelError, Wav2Vec2Features, check_model_folder, fixed_hidden_states

__all__ = [
    "AudioError", "AudioFeatureExtractor", "AudioModelError", "SAMPLE_RATE", "Wav2Vec2Features", "bucket_clips",
    "bucket_columns", "check_model_folder", "clip_slice", "decimate_25fps", "decode_audio", "fixed_hidden_states",
    "load_audio", "num_frames_50hz", "reference_num_clips", "resample", "to_mono",
]
