"""Content images for training: random crops, rescales and flips, reproducible per step.

The batch for step s is a pure function of (seed, s), so a resumed run sees exactly the
batches an uninterrupted one would have seen, and a worker process can prepare them ahead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from palmbrush.errors import PalmbrushError

SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


def find_images(folder: Path, exclude: Sequence[str] = ()) -> list[Path]:
    """Every image file below `folder`, sorted, but for those below its sub-folders named in
    `exclude` (held aside, e.g. the photos metrics are measured on); a clear error if there
    are none, or if an excluded sub-folder does not exist (a typo would train on it)."""
    if not folder.is_dir():
        raise PalmbrushError(f"content folder not found: {folder}")
    root = folder.resolve()
    held = [(folder / e).resolve() for e in exclude]  # "a/../b" and links: the folder reached
    for name, sub in zip(exclude, held):
        if not sub.is_relative_to(root) or sub == root:
            raise PalmbrushError(f"--exclude {name}: not a sub-folder of {folder}")
        if not sub.is_dir():
            raise PalmbrushError(f"--exclude {name}: no such folder in {folder}")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file()
                   and not any(p.resolve().is_relative_to(h) for h in held))  # fmt: skip
    if not paths:
        raise PalmbrushError(f"no images (jpg, png, webp, ...) found in {folder}")
    return paths


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8; raises PalmbrushError naming the file if it does not decode."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise PalmbrushError(f"cannot read image {path}: {exc}") from None


def decodable(paths: list[Path]) -> tuple[list[Path], int]:
    """The paths that decode, and how many did not."""
    good = []
    for path in paths:
        try:
            read_rgb(path)
            good.append(path)
        except PalmbrushError:
            pass
    return good, len(paths) - len(good)


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.array(rgb, copy=True)).permute(2, 0, 1).float() / 255


def random_crop(rgb: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Rescale so the short side is size x U(1, 1.5), crop size x size, maybe flip."""
    h, w = rgb.shape[:2]
    scale = size * rng.uniform(1.0, 1.5) / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    image = Image.fromarray(rgb).resize((nw, nh), Image.Resampling.BILINEAR)
    top, left = rng.integers(0, nh - size + 1), rng.integers(0, nw - size + 1)
    crop = np.asarray(image)[top : top + size, left : left + size]
    return crop[:, ::-1] if rng.random() < 0.5 else crop


class StepBatches(torch.utils.data.Dataset):
    """Index = training step; item = the (B, 3, size, size) batch for that step."""

    def __init__(self, paths: list[Path], size: int, batch: int, seed: int):
        self.paths, self.size, self.batch, self.seed = paths, size, batch, seed

    def __len__(self) -> int:
        return 1 << 62

    def __getitem__(self, step: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, step])
        picks = rng.integers(0, len(self.paths), self.batch)
        crops = [random_crop(read_rgb(self.paths[i]), self.size, rng) for i in picks]
        return torch.stack([to_tensor(c) for c in crops])  # (B, 3, size, size)


def loader(batches: StepBatches, start: int, stop: int, workers: int):
    """Batches for steps start..stop-1, prepared `workers` processes ahead of the trainer."""
    return torch.utils.data.DataLoader(
        batches,
        batch_size=None,
        sampler=range(start, stop),
        num_workers=workers,
        prefetch_factor=4 if workers else None,
        persistent_workers=False,
    )


def hold_aside(paths: list[Path], count: int = 4) -> tuple[list[Path], list[Path]]:
    """(training paths, preview paths): a few evenly spaced images kept out of training."""
    if len(paths) <= 2 * count:
        return paths, paths[:count]
    chosen = set(paths[:: len(paths) // count][:count])
    return [p for p in paths if p not in chosen], sorted(chosen)
