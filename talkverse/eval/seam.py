"""Seam measure for region dubbing (issue 20): is the pasted region's border visible?

The band is where the paste alpha ramps (0 < alpha < 1), grown by one pixel so the step from the untouched source
into the ramp counts too. The measure is the mean gradient magnitude of the luma (forward differences, 0-255 scale)
over the band in the output, over the same pixels in the source: about 1 for an invisible seam; a hard edge or a
colour jump raises it (the issue's bar: <= 1.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SeamMeasure:
    output: float  # mean gradient magnitude over the band, output
    source: float  # the same over the source
    pixels: int  # band pixels summed over the frames

    @property
    def ratio(self) -> float:
        return self.output / max(self.source, 1e-6)


def feather_band(alpha: np.ndarray) -> np.ndarray:
    """bool [H, W]: the ramp of a paste alpha [H, W] (0 < alpha < 1), dilated by one pixel (4-neighbourhood)."""
    ramp = (alpha > 0) & (alpha < 1)
    band = ramp.copy()
    band[1:] |= ramp[:-1]
    band[:-1] |= ramp[1:]
    band[:, 1:] |= ramp[:, :-1]
    band[:, :-1] |= ramp[:, 1:]
    return band


def gradient_magnitude(frame: np.ndarray) -> np.ndarray:
    """float [H, W]: |grad| of the luma of a uint8 frame [H, W, 3] (forward differences, last row/column 0)."""
    y = frame.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    gx = np.zeros_like(y)
    gy = np.zeros_like(y)
    gx[:, :-1] = y[:, 1:] - y[:, :-1]
    gy[:-1] = y[1:] - y[:-1]
    return np.hypot(gx, gy)


def seam_measure(output, source, bands) -> SeamMeasure:
    """Over frames ``output`` and ``source`` uint8 [T, H, W, 3] and ``bands`` bool [T, H, W] (or one [H, W])."""
    output, source = np.asarray(output), np.asarray(source)
    bands = np.broadcast_to(np.asarray(bands, bool), output.shape[:3])
    o = s = 0.0
    n = 0
    for t in range(len(output)):
        b = bands[t]
        if not b.any():
            continue
        o += float(gradient_magnitude(output[t])[b].sum())
        s += float(gradient_magnitude(source[t])[b].sum())
        n += int(b.sum())
    return SeamMeasure(o / max(n, 1), s / max(n, 1), n)
