"""Labelled contact sheets: a grid of pictures, each with a caption under it."""

from __future__ import annotations

import unicodedata

import numpy as np

from . import require

GAP = 6


def _font(size: int):
    ImageFont = require("PIL.ImageFont", "pillow")
    try:
        return ImageFont.load_default(size=size)  # FreeType build of Pillow >= 10.1
    except (TypeError, AttributeError, OSError):
        return ImageFont.load_default()


def _drawable(label: str) -> str:
    """Pillow's built-in font has ASCII glyphs only: accents are dropped (Cezanne, Rhone)
    rather than drawn as boxes; other characters become '?'."""
    plain = unicodedata.normalize("NFKD", label)
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    return plain.encode("ascii", "replace").decode()


def labelled_grid(tiles: list[tuple[str, np.ndarray]], per_row: int, font_size: int = 14):
    """A PIL image: `tiles` (caption, (H, W, 3) uint8) row by row, `per_row` to a row, each
    centred in a column as wide as the widest tile, its caption right under it; a row is as
    high as its tallest tile. An empty caption draws nothing."""
    Image = require("PIL.Image", "pillow")
    ImageDraw = require("PIL.ImageDraw", "pillow")
    font = _font(font_size)
    cell_w = max(t.shape[1] for _, t in tiles)
    caption = font_size + 6 if any(label for label, _ in tiles) else 0
    rows = [tiles[i : i + per_row] for i in range(0, len(tiles), per_row)]
    heights = [max(t.shape[0] for _, t in row) + caption for row in rows]
    columns = min(per_row, len(tiles))
    size = (GAP + columns * (cell_w + GAP), GAP + sum(h + GAP for h in heights))
    sheet = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(sheet)
    y = GAP
    for row, height in zip(rows, heights):
        for i, (label, tile) in enumerate(row):
            x = GAP + i * (cell_w + GAP) + (cell_w - tile.shape[1]) // 2
            sheet.paste(Image.fromarray(tile), (x, y))
            if label:
                centre = x + tile.shape[1] // 2
                draw.text((centre, y + tile.shape[0] + 2), _drawable(label), fill="black",
                          font=font, anchor="ma")  # fmt: skip
        y += height + GAP
    return sheet
