"""Flicker as the warping error (Lai et al., ECCV 2018; as in ReCoNet, Huang et al.).

Optical flow is computed on consecutive INPUT frames (OpenCV DIS, preset medium): b is the
flow t+1 -> t, f the flow t -> t+1. A pixel is valid (not occluded) where the two agree,
|b + w(f)|^2 < 0.01 (|b|^2 + |w(f)|^2) + 0.5 with w(f) = f warped by b, and where b points
inside frame t. The error of a pair is the mean over valid pixels of |O[t+1] - warp(O[t], b)|,
on a 0-1 scale averaged over RGB; a clip's error is the mean over its pairs. The same number
for the input frames themselves is the floor a stylization is compared with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from palmbrush.errors import PalmbrushError
from palmbrush.media import require

from .warp import inside, warp


@dataclass(frozen=True)
class Pair:
    back: np.ndarray  # (H, W, 2) flow from frame t+1 to frame t, pixels
    valid: np.ndarray  # (H, W) bool: not occluded, and inside frame t


def pairs(frames: Sequence[np.ndarray]) -> list[Pair]:
    """Flow and occlusion for each consecutive pair of (H, W, 3) uint8 input frames."""
    cv2 = require("cv2", "opencv-python-headless", "lab")
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    grey = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]
    out = []
    for now, nxt in pairwise(grey):
        back = dis.calc(nxt, now, None)  # frame t+1 (x) ~ frame t (x + back(x))
        ahead = dis.calc(now, nxt, None)
        out.append(Pair(back, consistent(back, ahead)))
    return out


def consistent(back: np.ndarray, ahead: np.ndarray) -> np.ndarray:
    """The forward-backward check: (H, W) bool, True where the flows undo each other."""
    ahead_back = warp(ahead, back)  # w(f): f at the point b leads to
    gap = np.sum((back + ahead_back) ** 2, -1)
    size = np.sum(back**2, -1) + np.sum(ahead_back**2, -1)
    return (gap < 0.01 * size + 0.5) & inside(back)


def warping_error(frames: Sequence[np.ndarray], flows: Sequence[Pair]) -> float:
    """Mean over pairs of the mean absolute difference, valid pixels, 0-1 scale, RGB mean
    (pairs with no valid pixel, a cut, say, are left out; see `usable`)."""
    errors = []
    for (now, nxt), pair in zip(pairwise(frames), flows, strict=True):
        if pair.valid.any():
            moved = warp(now.astype(np.float32) / 255, pair.back)
            diff = np.abs(nxt.astype(np.float32) / 255 - moved).mean(-1)  # (H, W)
            errors.append(float(diff[pair.valid].mean()))
    return float(np.mean(errors))


def usable(flows: Sequence[Pair]) -> int:
    """Pairs with any valid pixel; a clip needs one."""
    count = sum(bool(p.valid.any()) for p in flows)
    if not count:
        raise PalmbrushError("no pair of frames has a pixel the flow can follow (all occluded)")
    return count


def flicker(frames: Sequence[np.ndarray], stylize: Callable[[np.ndarray], np.ndarray],
            flows: Sequence[Pair] | None = None) -> dict:  # fmt: skip
    """The warping error of `stylize` on `frames`, its floor (the input's own) and their ratio.
    `flows` may be passed in to measure many models on one clip with one flow computation."""
    flows = pairs(frames) if flows is None else flows
    used = usable(flows)
    styled = [stylize(f) for f in frames]
    error, floor = warping_error(styled, flows), warping_error(frames, flows)
    valid = float(np.mean([p.valid.mean() for p in flows]))
    return {"warping_error": error, "floor": floor, "ratio": error / floor if floor else None,
            "frames": len(frames), "pairs": used, "valid": valid}  # fmt: skip
