"""Reference kernels for Resize and Upsample: separable, one axis at a time.

For each resized axis, every output index gets a list of (input index, weight) taps from the
coordinate transformation and the interpolation mode; the axis is then a weighted gather.
"""

from __future__ import annotations

import math

import numpy as np


def resize(
    X,
    roi=None,
    scales=None,
    sizes=None,
    *,
    antialias,
    axes,
    coordinate_transformation_mode,
    cubic_coeff_a,
    exclude_outside,
    extrapolation_value,
    keep_aspect_ratio_policy,
    mode,
    nearest_mode,
):
    axes = [a % X.ndim for a in (axes or range(X.ndim))]
    out_sizes, scale_list = _targets(X.shape, axes, scales, sizes, keep_aspect_ratio_policy)
    roi = _roi(roi, axes)
    y = X.astype(np.float64) if mode != "nearest" else X
    outside = np.zeros((1,) * X.ndim, dtype=bool)
    for k, axis in enumerate(axes):
        size_in, size_out, scale = X.shape[axis], out_sizes[k], scale_list[k]
        if (
            size_in == size_out
            and scale == 1
            and coordinate_transformation_mode != "tf_crop_and_resize"
        ):
            continue
        coords = _coordinates(
            np.arange(size_out, dtype=np.float64),
            size_in,
            size_out,
            scale,
            coordinate_transformation_mode,
            roi[k],
        )
        idx, weights = _taps(coords, size_in, mode, nearest_mode, cubic_coeff_a, exclude_outside)
        y = _apply(y, axis, idx, weights)
        if coordinate_transformation_mode == "tf_crop_and_resize":
            mask = (coords < 0) | (coords > size_in - 1)
            outside = outside | mask.reshape([-1 if i == axis else 1 for i in range(X.ndim)])
    if coordinate_transformation_mode == "tf_crop_and_resize":
        y = np.where(outside, extrapolation_value, y)
    if X.dtype.kind in "iu" and mode != "nearest":
        info = np.iinfo(X.dtype)
        y = np.clip(np.round(y), info.min, info.max)
    return y.astype(X.dtype)


def upsample(X, scales, *, mode):
    """Upsample (deprecated in opset 10): Resize with scales and asymmetric coordinates."""
    return resize(
        X,
        None,
        scales,
        None,
        antialias=0,
        axes=None,
        coordinate_transformation_mode="asymmetric",
        cubic_coeff_a=-0.75,
        exclude_outside=0,
        extrapolation_value=0.0,
        keep_aspect_ratio_policy="stretch",
        mode=mode,
        nearest_mode="floor",
    )


def _targets(shape, axes, scales, sizes, policy):
    if sizes is not None and sizes.size:
        sizes = [int(s) for s in sizes]
        if policy != "stretch":
            ratios = [s / shape[a] for a, s in zip(axes, sizes)]
            scale = min(ratios) if policy == "not_larger" else max(ratios)
            return [round(shape[a] * scale) for a in axes], [scale] * len(axes)
        return sizes, [s / shape[a] for a, s in zip(axes, sizes)]
    scales = [float(s) for s in scales]
    return [math.floor(shape[a] * s) for a, s in zip(axes, scales)], scales


def _roi(roi, axes):
    n = len(axes)
    if roi is None or not roi.size:
        return [(0.0, 1.0)] * n
    roi = [float(v) for v in roi]
    return [(roi[k], roi[k + n]) for k in range(n)]


def _coordinates(x, size_in, size_out, scale, mode, roi):
    """Map output indices to (fractional) input coordinates."""
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        adjustment = size_out / (scale * size_in)
        center = size_in / 2 * (1 - adjustment)
        return center + (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if size_out > 1 else np.zeros_like(x)
    if mode == "align_corners":
        resized = scale * size_in  # ONNX uses the unrounded resized length here
        return x * (size_in - 1) / (resized - 1) if size_out > 1 else np.zeros_like(x)
    if mode == "asymmetric":
        return x / scale
    if mode == "tf_crop_and_resize":
        start, end = roi
        if size_out > 1:
            return start * (size_in - 1) + x * (end - start) * (size_in - 1) / (size_out - 1)
        return np.full_like(x, 0.5 * (start + end) * (size_in - 1))
    raise ValueError(f"unknown coordinate_transformation_mode '{mode}'")


def _taps(coords, size_in, mode, nearest_mode, a, exclude_outside):
    """(indices, weights), each (K, size_out): K input taps per output index."""
    if mode == "nearest":
        idx = _round(coords, nearest_mode).astype(np.int64)
        return np.clip(idx, 0, size_in - 1)[None], np.ones((1, len(coords)))
    base = np.floor(coords)
    t = coords - base
    if mode == "linear":
        offsets, weights = [0, 1], [1 - t, t]
    else:
        offsets = [-1, 0, 1, 2]
        weights = [_cubic(t + 1, a), _cubic(t, a), _cubic(1 - t, a), _cubic(2 - t, a)]
    idx = np.stack([base + o for o in offsets]).astype(np.int64)
    weights = np.stack(weights)
    if exclude_outside:
        weights = np.where((idx < 0) | (idx >= size_in), 0.0, weights)
        weights = weights / weights.sum(axis=0, keepdims=True)
    return np.clip(idx, 0, size_in - 1), weights


def _cubic(d, a):
    """Keys' cubic convolution kernel at distance d (0 <= d <= 2)."""
    d = np.abs(d)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, far)


def _round(x, nearest_mode):
    if nearest_mode == "round_prefer_floor":
        return np.where(x - np.floor(x) == 0.5, np.floor(x), np.round(x))
    if nearest_mode == "round_prefer_ceil":
        return np.where(x - np.floor(x) == 0.5, np.ceil(x), np.round(x))
    if nearest_mode == "floor":
        return np.floor(x)
    if nearest_mode == "ceil":
        return np.ceil(x)
    raise ValueError(f"unknown nearest_mode '{nearest_mode}'")


def _apply(y, axis, idx, weights):
    """Weighted gather along axis: out[..., j, ...] = sum_k w[k, j] * y[..., idx[k, j], ...]."""
    shape = [-1 if i == axis else 1 for i in range(y.ndim)]
    if len(idx) == 1:
        return np.take(y, idx[0], axis=axis)
    total = None
    for k in range(len(idx)):
        part = np.take(y, idx[k], axis=axis) * weights[k].reshape(shape)
        total = part if total is None else total + part
    return total


KERNELS = {"Resize": resize, "Upsample": upsample}
