"""Video sizes: the resolution bucket tables (inference.md §2) and the one size-string parser.

Order conventions. Every size in code is ``(height, width)``, the order of tensors ``[..., H, W]``. Every size *string*
is written width first, ``"W*H"`` or ``"WxH"`` (Wan's ``--size 1280*704`` convention), and :func:`parse_width_height`
is the only function that reads one. Table keys are height / width ratios; table sizes are multiples of 64.
"""

from __future__ import annotations

import re
from collections.abc import Sequence


def _table(entries: str) -> list[tuple[float, tuple[int, int]]]:
    """"key:H,W key:H,W ..." -> [(key, (H, W)), ...] (keys increasing, as the tables are searched)."""
    out = []
    for item in entries.split():
        key, hw = item.split(":")
        h, w = hw.split(",")
        out.append((float(key), (int(h), int(w))))
    return out


# The tables, entry = key (H / W) : H,W, in table order (by increasing key).
BUCKETS: dict[str, list[tuple[float, tuple[int, int]]]] = {
    "fasttalk-720": _table("""
        0.22:448,2048 0.29:512,1792 0.36:576,1600 0.45:640,1408 0.55:704,1280 0.63:768,1216 0.76:832,1088
        0.88:896,1024 1.00:960,960 1.14:1024,896 1.31:1088,832 1.50:1152,768 1.58:1216,768 1.82:1280,704
        1.91:1344,704 2.20:1408,640 2.30:1472,640 2.67:1536,576 2.89:1664,576 3.62:1856,512 3.75:1920,512"""),
    "fasttalk-480": _table("""
        0.26:320,1216 0.38:384,1024 0.50:448,896 0.67:512,768 0.82:576,704 1.00:640,640 1.22:704,576
        1.50:768,512 1.86:832,448 2.00:896,448 2.50:960,384 2.83:1088,384 3.60:1152,320 3.80:1216,320
        4.00:1280,320"""),
}
# A fixed size must be a multiple of the 5B's token stride (VAE 16 x patch 2). The CLIs check it before any model
# loads; the pipeline checks the loaded model's own stride.
SIZE_MULTIPLE = 32
Table = Sequence[tuple[float, tuple[int, int]]]


def nearest_in_table(height: int, width: int, table: Table) -> tuple[int, int]:
    """The (H, W) whose key is closest to height / width; ties go to the first entry in table order."""
    if height <= 0 or width <= 0:
        raise ValueError(f"invalid image size {width}x{height}")
    ratio = height / width
    best_key, best_hw = table[0]
    for key, hw in table[1:]:
        if abs(key - ratio) < abs(best_key - ratio):  # strict '<' keeps the first entry on ties
            best_key, best_hw = key, hw
    return tuple(best_hw)


def choose_bucket(height: int, width: int, bucket: str = "fasttalk-720") -> tuple[int, int]:
    """The named table's (H, W) nearest to the aspect ratio of a height x width image."""
    if bucket not in BUCKETS:
        raise ValueError(f"unknown size bucket {bucket!r}; valid: {', '.join(BUCKETS)}")
    return nearest_in_table(height, width, BUCKETS[bucket])


def table_sizes() -> list[tuple[int, int]]:
    """Every (H, W) of any bucket table, deduplicated, in table order."""
    seen: list[tuple[int, int]] = []
    for table in BUCKETS.values():
        seen += [hw for _, hw in table if hw not in seen]
    return seen


def parse_width_height(text: str) -> tuple[int, int]:
    """``"W*H"`` or ``"WxH"`` (width first) -> ``(height, width)``. The only parser of size strings."""
    m = re.fullmatch(r"\s*(\d+)\s*[*xX×]\s*(\d+)\s*", str(text))
    if m is None or not int(m.group(1)) or not int(m.group(2)):
        raise ValueError(f"{text!r} is not a size of the form W*H (width first, e.g. 1280*704)")
    return int(m.group(2)), int(m.group(1))


def table_size(text: str) -> tuple[int, int]:
    """The reference's ``--size W*H``: (H, W), which must appear in a bucket table."""
    examples = "1280*704, 704*1280, 960*960, 896*448, 448*896, 640*640"
    try:
        h, w = parse_width_height(text)
    except ValueError:
        raise ValueError(f"--size {text!r} is not of the form W*H (e.g. 1280*704); valid: {examples}, ...") from None
    if (h, w) not in table_sizes():
        raise ValueError(f"--size {w}*{h} is not in the {'/'.join(BUCKETS)} tables; valid: {examples}, ...")
    return h, w


def check_size_spec(spec: str) -> str:
    """A ``size_bucket`` value: a table name, or a fixed ``WxH`` whose sides are multiples of 32. Returns it."""
    if spec in BUCKETS:
        return spec
    try:
        h, w = parse_width_height(spec)
    except ValueError:
        h = w = 0
    if not h or h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
        raise ValueError(f"size bucket {spec!r}: use {', '.join(BUCKETS)} or a fixed WxH (width first) with "
                         f"multiples of {SIZE_MULTIPLE}, e.g. 128x128")
    return spec


def resolve_size(height: int, width: int, spec: str | tuple[int, int] | Table) -> tuple[int, int]:
    """The output (H, W) for a height x width source under ``spec``: a table name (nearest aspect ratio), a fixed
    ``WxH`` string, an explicit (H, W) tuple, or a custom table ``[(key, (H, W)), ...]``."""
    if isinstance(spec, str):
        return choose_bucket(height, width, spec) if spec in BUCKETS else parse_width_height(check_size_spec(spec))
    if isinstance(spec, tuple) and len(spec) == 2 and all(isinstance(v, int) for v in spec):
        return spec
    return nearest_in_table(height, width, list(spec))
