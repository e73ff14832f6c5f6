"""Synthetic motion: a small random smooth warp plus noise, in NumPy, exact and seeded.

The synthetic pairs of Wang et al. (AAAI 2020, "Consistent Video Style Transfer via Compound
Regularization"): a frame and the same frame moved a little (a global shift and a smooth local
displacement) with sensor noise added. A stable stylization commutes with the motion:
N(warp(x) + noise) == warp(N(x)). The lab's stability metric measures that on model files;
training penalises it (train.losses.stability_loss) with the same perturbation.

A flow is (H, W, 2) float32 of (dx, dy) in pixels; `warp(image, flow)[y, x]` samples `image`
at (x + dx, y + dy), bilinearly (backward warping, as OpenCV's remap and PyTorch's grid_sample).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Motion:
    shift: float = 2.0  # largest global shift, pixels (uniform in each axis)
    local: float = 1.0  # largest local displacement at the control points, pixels
    grid: int = 4  # control points per axis of the local displacement
    noise: float = 2.0 / 255  # standard deviation of the Gaussian noise, 0-1 scale


def smooth_flow(rng: np.random.Generator, height: int, width: int, m: Motion = Motion()
                ) -> np.ndarray:  # fmt: skip
    """A random global shift plus a displacement interpolated from a coarse random grid."""
    control = rng.uniform(-m.local, m.local, (m.grid, m.grid, 2))
    flow = _resize_bilinear(control, height, width) + rng.uniform(-m.shift, m.shift, 2)
    return flow.astype(np.float32)  # (H, W, 2)


def _resize_bilinear(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """(g, g, C) control values spread over (height, width, C), corner to corner."""
    rows, cols = (_spread(grid.shape[i], n) for i, n in ((0, height), (1, width)))
    return np.einsum("yi,ijc,xj->yxc", rows, grid, cols, optimize=True)


def _spread(points: int, size: int) -> np.ndarray:
    """(size, points): linear interpolation weights from `points` evenly placed values."""
    at = np.linspace(0, points - 1, size)
    return np.stack([np.interp(at, np.arange(points), e) for e in np.eye(points)], 1)


def sample_points(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each output pixel samples from: (x + dx, y + dy)."""
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return xs + flow[..., 0], ys + flow[..., 1]


def inside(flow: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels whose sample point lies within the image (no border guessing)."""
    h, w = flow.shape[:2]
    x, y = sample_points(flow)
    return (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """(H, W, C) float image sampled at the flow's points, bilinear, edges clamped."""
    h, w = image.shape[:2]
    x, y = sample_points(flow)
    x, y = np.clip(x, 0, w - 1), np.clip(y, 0, h - 1)
    x0, y0 = np.minimum(np.floor(x).astype(int), w - 2), np.minimum(np.floor(y).astype(int), h - 2)
    x0, y0 = np.maximum(x0, 0), np.maximum(y0, 0)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
    bottom = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def perturbed(frame: np.ndarray, rng: np.random.Generator, m: Motion = Motion()
              ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(uint8 frame moved and noised, its flow): the second frame of a synthetic pair."""
    flow = smooth_flow(rng, *frame.shape[:2], m)
    moved = warp(frame.astype(np.float64) / 255, flow)
    noisy = moved + rng.normal(0.0, m.noise, moved.shape)
    return np.clip(np.round(noisy * 255), 0, 255).astype(np.uint8), flow
