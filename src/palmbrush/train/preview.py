"""Contact sheets: held-aside content images next to what the network makes of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from palmbrush.atomic import atomic_path
from palmbrush.media.images import fit

from .data import read_rgb


@torch.no_grad()
def stylize(net: torch.nn.Module, rgb: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255
    y = net(x)[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0)
    return y.numpy()


def contact_sheet(rows: list[list[np.ndarray]], labels: list[str] | None = None) -> Image.Image:
    """A grid of images; each row the same height, columns padded with white."""
    gap = 4
    height = max(sum(max(i.shape[0] for i in row) for row in rows) + gap * (len(rows) + 1), 1)
    width = max(sum(i.shape[1] for i in row) + gap * (len(row) + 1) for row in rows)
    top = 16 if labels else 0
    sheet = Image.new("RGB", (width, height + top), "white")
    draw = ImageDraw.Draw(sheet)
    for i, label in enumerate(labels or []):
        draw.text((gap + i * (width // len(labels)), 2), label, fill="black")
    y = gap + top
    for row in rows:
        x = gap
        for image in row:
            sheet.paste(Image.fromarray(image), (x, y))
            x += image.shape[1] + gap
        y += max(i.shape[0] for i in row) + gap
    return sheet


def write_preview(net, paths: list[Path], style: np.ndarray, out: Path, size: int = 192) -> None:
    """Row per image: the photo and the network's painting of it; the style on the first row."""
    was_training = net.training
    net.eval()
    factor = net.cfg.factor
    rows = []
    for i, path in enumerate(paths):
        photo = fit(read_rgb(path), size, factor)
        row = [photo, stylize(net, photo)]
        if i == 0:
            row.append(fit(style, size, 1))
        rows.append(row)
    net.train(was_training)
    with atomic_path(out, keep_suffix=True) as tmp:
        contact_sheet(rows).save(tmp)
