"""Helpers shared by subcommands: parsing sizes, making feeds, printing tables."""

from __future__ import annotations

import numpy as np

from palmbrush.errors import PalmbrushError


def parse_size(text: str) -> tuple[int, int]:
    """'640x480' (width x height) -> (height, width)."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise PalmbrushError(
            f"size must look like 640x480 (width x height), got '{text}'"
        ) from None
    if not (1 <= width <= 16384 and 1 <= height <= 16384):
        raise PalmbrushError(f"size {text} is outside 1x1 to 16384x16384")
    return height, width


def input_shapes(predictor, size: tuple[int, int] | None) -> dict[str, tuple[int, ...]]:
    """Concrete shapes for each input: image-like inputs get the size, other free dims 1."""
    shapes = {}
    for value in predictor.inputs:
        if value.shape is None:
            raise PalmbrushError(f"input '{value.name}' has no declared shape; cannot pick a size")
        dims = list(value.shape)
        spatial = _spatial_axes(dims)
        for i, d in enumerate(dims):
            if isinstance(d, int):
                continue
            if size is not None and i in spatial:
                dims[i] = size[spatial.index(i)]
            elif i in spatial:
                raise PalmbrushError(
                    f"input '{value.name}' has a free size {dims}; pass --size WxH"
                )
            else:
                dims[i] = 1
        shapes[value.name] = tuple(dims)
    return shapes


def _spatial_axes(dims: list) -> list[int]:
    """Height and width axes of a 4-D image input: NHWC when the last dim is 1 or 3."""
    if len(dims) != 4:
        return []
    return [1, 2] if dims[3] in (1, 3, 4) and dims[1] not in (1, 3, 4) else [2, 3]


def random_feeds(predictor, shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    feeds = {}
    for value in predictor.inputs:
        shape, dtype = shapes[value.name], value.dtype or np.dtype(np.float32)
        if dtype.kind == "f":
            feeds[value.name] = rng.random(shape, dtype=np.float32).astype(dtype)
        elif dtype.kind == "b":
            feeds[value.name] = rng.random(shape) < 0.5
        else:
            info = np.iinfo(dtype)
            feeds[value.name] = rng.integers(max(info.min, 0), min(info.max, 255) + 1, shape, dtype)
    return feeds


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def human(n: float) -> str:
    for unit in ("", "K", "M", "G", "T"):
        if abs(n) < 1000:
            return f"{n:.3g}{unit}"
        n /= 1000
    return f"{n:.3g}P"
