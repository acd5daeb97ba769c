"""Procedural "talking face" dataset with exact ground truth (evaluation.md §6), in the TalkVerse training layout.

Everything is numpy-only and deterministic per seed. The §6 recipe is written for 64×64; here every pixel quantity
is scaled by ``size / 64`` so the same identity renders at 128×128 (the demo model's resolution) with the same
geometry.

Pieces:
- :class:`FaceIdentity` / :func:`draw_identity`: per-seed colours and face geometry (64-px units).
- :func:`babble_audio`: harmonic carrier × syllable gate (no dependency); :func:`espeak_audio`: espeak-ng speech
  with an RMS-envelope gate (optional, needs ``espeak-ng`` on PATH).
- :func:`openness_per_frame`: ground-truth mouth openness, the mean gate over each 40 ms frame.
- :func:`render_clip`: anti-aliased frames (exact per-column vertical coverage with 4 sub-columns per pixel, i.e.
  2-bit sub-pixel precision in x and exact in y), plus 68 face keypoints, person box and mouth box per frame.
- :func:`mouth_readout`: the model-free readout (fraction of "dark red" pixels).
- :func:`write_synthetic_dataset`: mp4 (H.264 + AAC) + DWPose npz + text embeddings + metadata.csv + ground truth.

Run ``python -m talkverse.testing.synthetic --help`` (or ``scripts/make_synthetic_dataset.py``). Modules: ``faces``,
``speech``, ``dataset``.
"""

from .dataset import clip_seeds, load_ground_truth, main, write_synthetic_dataset
from .faces import (
    BASE,
    EYE_RGB,
    MOUTH_INTERIOR_RGB,
    FaceIdentity,
    RenderResult,
    draw_identity,
    mouth_readout,
    reference_image,
    render_clip,
)
from .speech import babble_audio, babble_gate, espeak_audio, openness_per_frame

__all__ = [
    "BASE", "EYE_RGB", "MOUTH_INTERIOR_RGB", "FaceIdentity", "RenderResult", "babble_audio", "babble_gate",
    "clip_seeds", "draw_identity", "espeak_audio", "load_ground_truth", "main", "mouth_readout",
    "openness_per_frame", "reference_image", "render_clip", "write_synthetic_dataset",
]
