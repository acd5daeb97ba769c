"""A synthetic dataset in the TalkVerse training layout: mp4 (H.264 + AAC) + DWPose npz + text embeddings +
metadata.csv + ground truth, and its command line (``python -m talkverse.testing.synthetic``)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ...media.constants import FPS, SAMPLE_RATE
from .faces import FaceIdentity, draw_identity, reference_image, render_clip
from .speech import babble_audio, espeak_audio, openness_per_frame

SR = SAMPLE_RATE


# ----------------------------------------------------------------------------------------------------- dataset
def clip_seeds(seed: int, index: int) -> dict[str, int]:
    """Per-clip seeds derived from (base seed, clip index): identity, audio, render (blinks) and length."""
    ss = np.random.SeedSequence([int(seed), int(index), 0x5E7])
    v = ss.generate_state(4, dtype=np.uint32)
    return {"identity": int(v[0]), "audio": int(v[1]), "render": int(v[2]), "length": int(v[3])}


def _text_embedding(caption: str, text_dim: int, seed: int):
    import hashlib

    import torch

    h = int.from_bytes(hashlib.sha256(caption.encode("utf-8")).digest()[:8], "little")
    g = torch.Generator().manual_seed((h ^ (int(seed) * 0x9E3779B1)) & ((1 << 63) - 1))
    L = 3 + int(torch.randint(0, 6, (1,), generator=g))
    return torch.randn(L, text_dim, generator=g)


def write_synthetic_dataset(root: str | os.PathLike, num_clips: int, size: int = 128,
                            seconds: tuple[float, float] = (2.0, 4.0), seed: int = 0, text_dim: int = 40,
                            audio: str = "babble", identities: Optional[Sequence[FaceIdentity]] = None,
                            caption: str = "a person is speaking to the camera", crf: int = 10,
                            still: bool = False, verbose: bool = False) -> Path:
    """Write ``num_clips`` talking clips in the TalkVerse training layout under ``root``; return metadata.csv.

    Per clip ``clip_XXXXX`` (seeds from ``clip_seeds(seed, index)``; use different base seeds for disjoint splits):
      - ``videos/<id>.mp4``: 25 fps H.264 (crf ``crf``) + AAC 16 kHz mono; length U(seconds) rounded to whole frames,
        audio exactly T·640 samples;
      - ``videos/<id>.npz``: DWPose layout, ``keypoints_info`` (T,1,133,3) (face 23..90), ``person_bbox_xyxy`` (T,4);
      - ``videos/<id>.gt.npz``: ``openness`` [T] f32, ``mouth_box`` [T,4] i32, ``identity`` (JSON of FaceIdentity),
        ``audio_seed``, ``render_seed``, ``blinks``, ``audio_kind``, ``still``;
    plus ``text_embeddings/videos/<id>.safetensors`` (a deterministic random [L, text_dim] per caption, standing in
    for umT5), ``text_embeddings/null.safetensors`` [1, text_dim], ``metadata.csv`` (video_path, caption,
    scenes "0,T-1", fps 25). Generation references: :func:`reference_image` of the stored identity (or the CLI's
    ``--reference_png``).
    ``identities`` (optional) overrides the per-clip identity (cycled). ``still``: every frame is the identity's
    :func:`reference_image` (closed mouth, no head motion, no blinks; the audio is still written), the copy task of
    ``tests/test_reference_copy.py``.
    """
    import soundfile as sf
    import torch

    from ...data.rows import write_metadata_csv
    from ...data.text_cache import TextEmbeddingCache
    from ...media.writer import VideoWriter

    if audio not in ("babble", "espeak"):
        raise ValueError(f"audio must be 'babble' or 'espeak', got {audio!r}")
    lo, hi = float(seconds[0]), float(seconds[1])
    if not (0 < lo <= hi):
        raise ValueError(f"bad seconds range {seconds}")
    root = Path(root)
    (root / "videos").mkdir(parents=True, exist_ok=True)
    cache = TextEmbeddingCache(root / "text_embeddings")
    g = torch.Generator().manual_seed(int(seed))
    cache.write_null(torch.randn(1, text_dim, generator=g))
    rows = []
    spf = SR // FPS
    for c in range(int(num_clips)):
        t0 = time.perf_counter()
        cs = clip_seeds(seed, c)
        clip = f"clip_{c:05d}"
        rel = f"videos/{clip}.mp4"
        ident = identities[c % len(identities)] if identities else draw_identity(cs["identity"])
        secs = float(np.random.default_rng(cs["length"]).uniform(lo, hi))
        T = max(1, int(round(secs * FPS)))
        if audio == "babble":
            wave, gate = babble_audio(T / FPS, cs["audio"])
        else:
            wave, gate = espeak_audio(None, cs["audio"], seconds=T / FPS)
        wave, gate = wave[: T * spf], gate[: T * spf]
        openness = np.zeros(T) if still else openness_per_frame(gate)
        res = render_clip(ident, openness, size=size, seed=cs["render"], blinks=not still, still=still)
        t_gen = time.perf_counter() - t0
        wav = root / "videos" / f".{clip}.wav"
        sf.write(str(wav), wave, SR, subtype="FLOAT")
        try:
            with VideoWriter(root / rel, fps=FPS, crf=crf, audio=wav) as vw:
                vw.write(res.frames)
        finally:
            wav.unlink(missing_ok=True)
        np.savez(root / "videos" / f"{clip}.npz", keypoints_info=res.keypoints, person_bbox_xyxy=res.person_bbox)
        np.savez(root / "videos" / f"{clip}.gt.npz", openness=openness, mouth_box=res.mouth_box,
                 identity=np.array(ident.to_json()), audio_seed=np.int64(cs["audio"]),
                 render_seed=np.int64(cs["render"]), blinks=res.blinks.astype(np.int64), audio_kind=np.array(audio),
                 still=np.bool_(still))
        cache.write(Path(rel).with_suffix("").as_posix(), _text_embedding(caption, text_dim, seed))
        rows.append({"video_path": rel, "caption": caption, "scenes": f"0,{T - 1}", "fps": str(FPS)})
        if verbose:
            print(f"{clip}: {T} frames, generate {t_gen:.3f}s, total {time.perf_counter() - t0:.3f}s",
                  file=sys.stderr)
    return write_metadata_csv(root / "metadata.csv", rows)


def load_ground_truth(gt_path: str | os.PathLike) -> dict:
    """Read ``videos/<id>.gt.npz``: openness, mouth_box, identity (FaceIdentity), audio_seed, render_seed, blinks."""
    with np.load(gt_path) as z:
        out = {k: z[k] for k in z.files}
    out["identity"] = FaceIdentity.from_json(str(out["identity"]))
    for k in ("audio_seed", "render_seed"):
        if k in out:
            out[k] = int(out[k])
    if "audio_kind" in out:
        out["audio_kind"] = str(out["audio_kind"])
    return out


# ----------------------------------------------------------------------------------------------------- CLI
def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(
        prog="make_synthetic_dataset",
        description="Write a procedural talking-face dataset (evaluation.md §6) in the TalkVerse training layout: "
                    "videos/<clip>.mp4 (25 fps H.264 + AAC 16 kHz), videos/<clip>.npz (DWPose layout), "
                    "videos/<clip>.gt.npz (ground-truth openness, mouth box, identity, seeds), "
                    "text_embeddings/ (random stand-ins for umT5) and metadata.csv. Prints the CSV path. "
                    "Use different --seed values for disjoint train / held-out splits.")
    p.add_argument("--out", required=True, help="output directory (created)")
    p.add_argument("--num_clips", type=int, default=8, help="number of clips (default 8)")
    p.add_argument("--size", type=int, default=128, help="square frame size in pixels; the recipe is scaled by "
                                                           "size/64 (default 128)")
    p.add_argument("--min_seconds", type=float, default=2.0, help="shortest clip length (default 2)")
    p.add_argument("--max_seconds", type=float, default=4.0, help="longest clip length (default 4)")
    p.add_argument("--seed", type=int, default=0, help="base seed; clip seeds derive from (seed, index) (default 0)")
    p.add_argument("--audio", choices=("babble", "espeak"), default="babble",
                   help="babble: harmonic carrier × syllable gate, no dependency (default); espeak: espeak-ng "
                        "pseudo-words with varied voices, gate from the RMS envelope")
    p.add_argument("--text_dim", type=int, default=40, help="width of the stand-in text embeddings (default 40)")
    p.add_argument("--caption", default="a person is speaking to the camera", help="caption for every clip")
    p.add_argument("--crf", type=int, default=10, help="libx264 CRF (default 10)")
    p.add_argument("--reference_png", action="store_true",
                   help="also write <out>/reference_<clip>.png, the closed-mouth frame of each clip's identity")
    p.add_argument("-v", "--verbose", action="store_true", help="print per-clip timings to stderr")
    a = p.parse_args(argv)
    csv_path = write_synthetic_dataset(a.out, a.num_clips, size=a.size, seconds=(a.min_seconds, a.max_seconds),
                                       seed=a.seed, text_dim=a.text_dim, audio=a.audio, caption=a.caption,
                                       crf=a.crf, verbose=a.verbose)
    if a.reference_png:
        from PIL import Image

        for c in range(a.num_clips):
            gt = load_ground_truth(Path(a.out) / "videos" / f"clip_{c:05d}.gt.npz")
            Image.fromarray(reference_image(gt["identity"], a.size)).save(Path(a.out) / f"reference_clip_{c:05d}.png")
    print(csv_path)
    return 0

