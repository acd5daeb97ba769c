"""Resolution bucket tables (inference.md §2) and `--size` parsing.

Keys are height / width ratios; sizes are (H, W), all multiples of 64. Tokens per latent frame = (H/32)·(W/32).
"""

from __future__ import annotations

import re


# (key, (H, W)) in table order, i.e. by increasing key.
BUCKETS: dict[str, list[tuple[float, tuple[int, int]]]] = {
    "fasttalk-720": [
        (0.22, (448, 2048)),
        (0.29, (512, 1792)),
        (0.36, (576, 1600)),
        (0.45, (640, 1408)),
        (0.55, (704, 1280)),
        (0.63, (768, 1216)),
        (0.76, (832, 1088)),
        (0.88, (896, 1024)),
        (1.00, (960, 960)),
        (1.14, (1024, 896)),
        (1.31, (1088, 832)),
        (1.50, (1152, 768)),
        (1.58, (1216, 768)),
        (1.82, (1280, 704)),
        (1.91, (1344, 704)),
        (2.20, (1408, 640)),
        (2.30, (1472, 640)),
        (2.67, (1536, 576)),
        (2.89, (1664, 576)),
        (3.62, (1856, 512)),
        (3.75, (1920, 512)),
    ],
    "fasttalk-480": [
        (0.26, (320, 1216)),
        (0.38, (384, 1024)),
        (0.50, (448, 896)),
        (0.67, (512, 768)),
        (0.82, (576, 704)),
        (1.00, (640, 640)),
        (1.22, (704, 576)),
        (1.50, (768, 512)),
        (1.86, (832, 448)),
        (2.00, (896, 448)),
        (2.50, (960, 384)),
        (2.83, (1088, 384)),
        (3.60, (1152, 320)),
        (3.80, (1216, 320)),
        (4.00, (1280, 320)),
    ],
}


def _table(bucket: str) -> list[tuple[float, tuple[int, int]]]:
    try:
        return BUCKETS[bucket]
    except KeyError:
        raise ValueError(f"unknown size bucket {bucket!r}; valid: {', '.join(BUCKETS)}") from None


def choose_bucket(height: int, width: int, bucket: str = "fasttalk-720") -> tuple[int, int]:
    """Return the (H, W) whose key is closest to height / width; ties go to the first entry in table order."""
    table = _table(bucket)
    if height <= 0 or width <= 0:
        raise ValueError(f"invalid image size {width}x{height}")
    ratio = height / width
    best_key, best_hw = table[0]
    for key, hw in table[1:]:
        # strict '<' keeps the first entry on ties
        if abs(key - ratio) < abs(best_key - ratio):
            best_key, best_hw = key, hw
    return best_hw


def valid_sizes() -> list[tuple[int, int]]:
    """All (H, W) that appear in any bucket table, deduplicated, in table order."""
    seen: list[tuple[int, int]] = []
    for table in BUCKETS.values():
        for _, hw in table:
            if hw not in seen:
                seen.append(hw)
    return seen


def parse_size(size: str) -> tuple[int, int]:
    """Parse a Wan-style ``"W*H"`` (or ``"WxH"``) string into (H, W), validated against the bucket tables."""
    m = re.fullmatch(r"\s*(\d+)\s*[*xX×]\s*(\d+)\s*", str(size))
    sizes = valid_sizes()
    examples = "1280*704, 704*1280, 960*960, 896*448, 448*896, 640*640"
    names = "/".join(BUCKETS)
    if m is None:
        raise ValueError(f"--size {size!r} is not of the form W*H (e.g. 1280*704); valid: {examples}, ...")
    w, h = int(m.group(1)), int(m.group(2))
    if (h, w) not in sizes:
        raise ValueError(f"--size {w}*{h} is not in the {names} tables; valid: {examples}, ...")
    return h, w
