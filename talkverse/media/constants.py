"""The media facts every layer shares (inference.md §4, §11; training.md §2.2): one owner for each number.

Video is 25 fps; audio is 16 kHz mono (what wav2vec2 was trained on); one video frame therefore spans 640 samples.
Everything else (clip geometry, motion frames, latent sizes) belongs to the model's config, not here.
"""

from __future__ import annotations

FPS = 25
SAMPLE_RATE = 16000
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640
