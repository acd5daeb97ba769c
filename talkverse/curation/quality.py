"""Stage 4, visual quality (docs/curation.md): on frames sampled at ``sample_fps`` and resized to a fixed shorter
side: sharpness = variance of the Laplacian (``blurry``), brightness = mean grey (``too_dark``/``too_bright``),
motion = mean |grey difference| between consecutive samples (``frozen``/``chaotic``), and an aesthetic score when a
TorchScript (or ``torch.export`` ``.pt2``) predictor is given (``low_aesthetic``): [N, 3, 224, 224] in [0, 1] -> [N]."""

from __future__ import annotations

import numpy as np

from .clipio import read_clip_frames
from .records import add_scores, reject

STAGE = "quality"


def measures(frames: np.ndarray, side: int) -> dict[str, float]:
    """Sharpness, brightness and motion of RGB uint8 frames [T, H, W, 3] (medians / means over the frames)."""
    import cv2

    h, w = frames.shape[1:3]
    s = side / min(h, w)
    grey = [cv2.cvtColor(cv2.resize(f, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA),
                         cv2.COLOR_RGB2GRAY).astype(np.float32) for f in frames]
    sharp = float(np.median([cv2.Laplacian(g, cv2.CV_32F).var() for g in grey]))
    bright = float(np.mean([g.mean() for g in grey]))
    motion = float(np.mean([np.abs(a - b).mean() for a, b in zip(grey[1:], grey[:-1])])) if len(grey) > 1 else 0.0
    return {"sharpness": sharp, "brightness": bright, "motion": motion}


def aesthetic(frames: np.ndarray, model) -> float:
    """Mean score of a TorchScript predictor over centre crops [N, 3, 224, 224] in [0, 1]."""
    import cv2
    import torch

    crops = []
    for f in frames:
        h, w = f.shape[:2]
        m = min(h, w)
        c = f[(h - m) // 2:(h - m) // 2 + m, (w - m) // 2:(w - m) // 2 + m]
        crops.append(cv2.resize(c, (224, 224), interpolation=cv2.INTER_AREA))
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        return float(model(x).float().mean())


class QualityStage:
    """A Ray actor (it holds the aesthetic predictor when one is given)."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.model = None
        if cfg.quality.aesthetic_model:
            import torch

            path = str(cfg.quality.aesthetic_model)
            if path.endswith(".pt2"):  # a torch.export program
                self.model = torch.export.load(path).module()
            else:  # TorchScript
                self.model = torch.jit.load(path, map_location="cpu").eval()

    def __call__(self, row: dict) -> dict:
        if row["stage"]:
            return row
        c = self.cfg.quality
        frames = read_clip_frames(row, fps=25, every=max(1, round(25 / c.sample_fps)))
        m = measures(frames, c.analysis_side)
        if self.model is not None:
            m["aesthetic"] = aesthetic(frames, self.model)
        add_scores(row, **m)
        checks = [("blurry", m["sharpness"] < c.min_sharpness, f"sharpness {m['sharpness']:.1f} < {c.min_sharpness}"),
                  ("too_dark", m["brightness"] < c.min_brightness, f"brightness {m['brightness']:.1f}"),
                  ("too_bright", m["brightness"] > c.max_brightness, f"brightness {m['brightness']:.1f}"),
                  ("frozen", m["motion"] < c.min_motion, f"motion {m['motion']:.2f} < {c.min_motion}"),
                  ("chaotic", m["motion"] > c.max_motion, f"motion {m['motion']:.2f} > {c.max_motion}"),
                  ("low_aesthetic", "aesthetic" in m and m["aesthetic"] < c.min_aesthetic, "aesthetic score")]
        for reason, bad, detail in checks:
            if bad:
                return reject(row, STAGE, reason, detail)
        return row
