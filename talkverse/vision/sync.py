"""AV-corr: a lip-sync proxy from mouth opening vs speech energy with a lag scan (evaluation.md §2).

This is an offline proxy, *not* SyncNet's Sync-C / Sync-D (LSE-C/D); never report it under those names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MIN_FRAMES = 6  # Pearson needs > 5 frames where both signals are finite


@dataclass
class SyncResult:
    """Result of the AV-corr lag scan.

    offset: argmax_k r_k in frames; k > 0: the mouth lags the audio, k < 0: the video leads. None when no lag had
        enough frames. Ties go to the smallest |k|.
    corr0: r_0 (NaN when lag 0 had too few frames).
    best: max_k r_k.
    conf: best − median_k r_k (same shape as LSE-C = median distance − min distance).
    curve: lag -> r_k (NaN where fewer than 6 frames were usable).
    """

    offset: int | None
    corr0: float
    best: float
    conf: float
    curve: dict[int, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        def f(x):
            return None if x is None or not np.isfinite(x) else float(x)

        return {
            "offset": self.offset,
            "corr0": f(self.corr0),
            "best": f(self.best),
            "conf": f(self.conf),
            "curve": {str(k): f(v) for k, v in self.curve.items()},
        }


def _lag_corr(m: np.ndarray, e: np.ndarray, k: int) -> float:
    """Pearson r between z-scored m[t + k] and e[t] over the t where both are finite."""
    t_len = len(m)
    lo, hi = max(0, -k), min(t_len, t_len - k)
    if hi - lo < MIN_FRAMES:
        return float("nan")
    a, b = m[lo + k : hi + k], e[lo:hi]
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < MIN_FRAMES:
        return float("nan")
    a, b = a[ok], b[ok]
    sa, sb = a.std(), b.std()
    if sa <= 1e-12 or sb <= 1e-12:
        return 0.0  # a constant signal carries no timing information: uncorrelated
    za, zb = (a - a.mean()) / sa, (b - b.mean()) / sb
    return float(np.clip(np.mean(za * zb), -1.0, 1.0))


def av_sync(mouth, energy, max_lag: int = 10) -> SyncResult:
    """Scan k ∈ [−max_lag, max_lag]: r_k = Pearson(m[t + k], e[t]). See :class:`SyncResult` for the outputs."""
    m = np.asarray(mouth, dtype=np.float64).ravel()
    e = np.asarray(energy, dtype=np.float64).ravel()
    if m.shape != e.shape:
        raise ValueError(f"mouth and energy must have the same length, got {m.shape[0]} and {e.shape[0]}")
    if max_lag < 0:
        raise ValueError(f"max_lag must be >= 0, got {max_lag}")
    lags = list(range(-max_lag, max_lag + 1))
    curve = {k: _lag_corr(m, e, k) for k in lags}
    r = np.array([curve[k] for k in lags])
    finite = np.isfinite(r)
    if not finite.any():
        return SyncResult(None, float("nan"), float("nan"), float("nan"), curve)
    best = float(r[finite].max())
    offset = min((k for k in lags if np.isfinite(curve[k]) and curve[k] == best), key=lambda k: (abs(k), k))
    conf = best - float(np.median(r[finite]))
    return SyncResult(int(offset), float(curve[0]), best, conf, curve)
