"""Diagnostic PNG of a :class:`VideoEvaluation`: matplotlib (Agg) when installed, else a plain Pillow rendering."""

from __future__ import annotations

import os
from typing import Union

import numpy as np


def _z(x):
    x = np.asarray(x, np.float64)
    ok = np.isfinite(x)
    if ok.sum() < 2 or x[ok].std() == 0:
        return np.where(ok, 0.0, np.nan)
    return (x - x[ok].mean()) / x[ok].std()


def _panels(ev):
    """[(title, xlabel, [(label, x, y), ...]), ...] — the same content for both renderers."""
    t = np.arange(ev.num_frames) / ev.fps
    panels = []
    if ev.sync is not None:
        panels.append(
            (
                f"mouth ({ev.method}) vs speech energy, z-scored",
                "time (s)",
                [("mouth", t, _z(ev.mouth)), ("energy", t, _z(ev.energy))],
            )
        )
        lags = np.array(sorted(ev.sync.curve))
        panels.append(
            (
                f"AV-corr lag curve (k>0: mouth lags) offset={ev.sync.offset} best={ev.sync.best:.3f}",
                "lag k (frames)",
                [("r_k", lags, np.array([ev.sync.curve[k] for k in lags]))],
            )
        )
    d = ev.drift
    panels.append(
        (
            f"colour chi2 vs first frame (slope {d.colour_chi2_slope_per_min:+.3g}/min)",
            "time (s)",
            [("per frame", t, d.colour_chi2), ("per second", d.seconds, d.colour_chi2_per_second)],
        )
    )
    panels.append(
        (
            f"appearance distance (pixel L1, 32x32) (slope {d.appearance_slope_per_min:+.3g}/min)",
            "time (s)",
            [("per frame", t, d.appearance), ("per second", d.seconds, d.appearance_per_second)],
        )
    )
    return panels


def _plot_matplotlib(ev, path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    panels = _panels(ev)
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.6 * len(panels)))
    for ax, (title, xlabel, lines) in zip(np.atleast_1d(axes), panels):
        for label, x, y in lines:
            ax.plot(x, y, label=label, marker="o" if len(x) <= 30 else None, markersize=3)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(os.path.basename(ev.video), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)


def _plot_pillow(ev, path) -> None:
    from PIL import Image, ImageDraw

    panels = _panels(ev)
    w, ph = 900, 240
    img = Image.new("RGB", (w, ph * len(panels)), "white")
    draw = ImageDraw.Draw(img)
    colours = [(31, 119, 180), (255, 127, 14), (44, 160, 44)]
    for p, (title, xlabel, lines) in enumerate(panels):
        top = p * ph
        x0, x1, y0, y1 = 50, w - 20, top + 25, top + ph - 30
        draw.rectangle([x0, y0, x1, y1], outline=(0, 0, 0))
        draw.text((x0, top + 5), title, fill=(0, 0, 0))
        draw.text((x0, y1 + 8), xlabel, fill=(0, 0, 0))
        xs = np.concatenate([np.asarray(x, float) for _, x, _ in lines])
        ys = np.concatenate([np.asarray(y, float) for _, _, y in lines])
        ys = ys[np.isfinite(ys)]
        if xs.size == 0 or ys.size == 0:
            continue
        xmin, xmax = xs.min(), xs.max() if xs.max() > xs.min() else xs.min() + 1
        ymin, ymax = ys.min(), ys.max() if ys.max() > ys.min() else ys.min() + 1
        draw.text((5, y0), f"{ymax:.3g}", fill=(0, 0, 0))
        draw.text((5, y1 - 10), f"{ymin:.3g}", fill=(0, 0, 0))
        for i, (label, x, y) in enumerate(lines):
            c = colours[i % len(colours)]
            pts = [
                (x0 + (xi - xmin) / (xmax - xmin) * (x1 - x0), y1 - (yi - ymin) / (ymax - ymin) * (y1 - y0))
                for xi, yi in zip(np.asarray(x, float), np.asarray(y, float))
                if np.isfinite(yi)
            ]
            if len(pts) > 1:
                draw.line(pts, fill=c, width=2)
            draw.text((x1 - 120, y0 + 5 + 12 * i), label, fill=c)
    img.save(path, format="PNG")


def plot_evaluation(ev, path: Union[str, os.PathLike]) -> str:
    """Write the diagnostic PNG; returns the renderer used ("matplotlib" or "pillow")."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        _plot_pillow(ev, path)
        return "pillow"
    _plot_matplotlib(ev, path)
    return "matplotlib"
