"""Labelled contact sheets: a grid of pictures, each with a caption under it."""

from __future__ import annotations

import numpy as np

from . import require

GAP = 6


def _font(size: int):
    ImageFont = require("PIL.ImageFont", "pillow")
    try:
        return ImageFont.load_default(size=size)  # FreeType build of Pillow >= 10.1
    except (TypeError, AttributeError, OSError):
        return ImageFont.load_default()


def labelled_grid(tiles: list[tuple[str, np.ndarray]], per_row: int, font_size: int = 14):
    """A PIL image: `tiles` (caption, (H, W, 3) uint8) row by row, `per_row` to a row, each
    cell as large as the largest tile; an empty caption leaves no caption line."""
    Image = require("PIL.Image", "pillow")
    ImageDraw = require("PIL.ImageDraw", "pillow")
    font = _font(font_size)
    cell_w = max(t.shape[1] for _, t in tiles)
    cell_h = max(t.shape[0] for _, t in tiles)
    caption = font_size + 6 if any(label for label, _ in tiles) else 0
    rows = -(-len(tiles) // per_row)
    columns = min(per_row, len(tiles))
    sheet = Image.new(
        "RGB", (GAP + columns * (cell_w + GAP), GAP + rows * (cell_h + caption + GAP)), "white"
    )
    draw = ImageDraw.Draw(sheet)
    for i, (label, tile) in enumerate(tiles):
        x = GAP + (i % per_row) * (cell_w + GAP)
        y = GAP + (i // per_row) * (cell_h + caption + GAP)
        sheet.paste(Image.fromarray(tile), (x + (cell_w - tile.shape[1]) // 2, y))
        if label:
            draw.text(
                (x + cell_w // 2, y + cell_h + 2), label, fill="black", font=font, anchor="ma"
            )
    return sheet
