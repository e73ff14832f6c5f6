"""Reference kernels for tensor manipulation: shapes, slicing, joining, padding, reductions."""

from __future__ import annotations

import numpy as np

from ...ops.rules import constant_value, slice_range


def concat(*xs, axis):
    return np.concatenate(xs, axis=axis)


def split(x, split=None, *, axis, num_outputs):
    """Split along axis by the given sizes, or into num_outputs parts (the last may be smaller)."""
    dim = x.shape[axis]
    if split is None:
        parts = num_outputs
        size = -(-dim // parts)
        split = [min(size, max(dim - size * i, 0)) for i in range(parts)]
    edges = np.cumsum(split)[:-1]
    return tuple(np.split(x, edges, axis=axis))


def slice_(data, starts, ends, axes=None, steps=None):
    axes = range(len(starts)) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    index = [slice(None)] * data.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps):
        dim = data.shape[axis]
        start, end = slice_range(dim, int(start), int(end), int(step))
        index[axis] = slice(start, None if end < 0 else end, int(step))
    return data[tuple(index)]


def gather(data, indices, *, axis):
    dim = data.shape[axis]
    if indices.size and (indices.min() < -dim or indices.max() >= dim):
        raise IndexError(f"Gather index out of range for axis of size {dim}")
    return np.take(data, indices.astype(np.int64), axis=axis)


def reshape(data, shape, *, allowzero):
    target = [int(d) for d in shape]
    if not allowzero:
        target = [data.shape[i] if d == 0 else d for i, d in enumerate(target)]
    return data.reshape(target)


def transpose(data, *, perm):
    return np.transpose(data, perm)


def flatten(x, *, axis):
    axis = axis + x.ndim if axis < 0 else axis
    rows = int(np.prod(x.shape[:axis], dtype=np.int64))
    return x.reshape(rows, -1) if x.size else x.reshape(rows, int(np.prod(x.shape[axis:])))


def squeeze(x, axes=None):
    if axes is None:
        return np.squeeze(x)
    return np.squeeze(x, axis=tuple(int(a) for a in axes))


def unsqueeze(x, axes):
    rank = x.ndim + len(axes)
    return np.expand_dims(x, tuple(sorted(int(a) % rank for a in axes)))


def expand(x, shape):
    return np.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(int(d) for d in shape))).copy()


def tile(x, repeats):
    return np.tile(x, [int(r) for r in repeats])


def shape(x, *, start, end):
    return np.array(x.shape[slice(start, end)], dtype=np.int64)


def size(x):
    return np.array(x.size, dtype=np.int64)


def constant_of_shape(shape, *, value):
    fill = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    return np.full([int(d) for d in shape], fill[0], dtype=fill.dtype)


def range_(start, limit, delta):
    n = max(int(np.ceil((float(limit) - float(start)) / float(delta))), 0)
    return (start + np.arange(n) * delta).astype(start.dtype)


def pad(data, pads, constant_value=None, axes=None, *, mode):
    """Pad (or, for negative pads, crop) each axis; modes constant, reflect, edge, wrap."""
    axes = list(range(data.ndim)) if axes is None else [int(a) % data.ndim for a in axes]
    pads = [int(p) for p in pads]
    widths = [(0, 0)] * data.ndim
    for i, axis in enumerate(axes):
        widths[axis] = (pads[i], pads[i + len(axes)])
    crop = tuple(slice(max(-b, 0), data.shape[a] - max(-e, 0)) for a, (b, e) in enumerate(widths))
    data = data[crop]
    grow = [(max(b, 0), max(e, 0)) for b, e in widths]
    if mode == "constant":
        value = 0 if constant_value is None or not constant_value.size else constant_value.item()
        return np.pad(data, grow, mode="constant", constant_values=value)
    return np.pad(data, grow, mode={"reflect": "reflect", "edge": "edge", "wrap": "wrap"}[mode])


def depth_to_space(x, *, blocksize, mode):
    n, c, h, w = x.shape
    b = blocksize
    if mode == "DCR":
        y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    else:
        y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return y.reshape(n, c // (b * b), h * b, w * b)


def space_to_depth(x, *, blocksize):
    n, c, h, w = x.shape
    b = blocksize
    y = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
    return y.reshape(n, c * b * b, h // b, w // b)


def _reduction(fn):
    def kernel(x, axes_input=None, *, axes, keepdims, noop_with_empty_axes):
        chosen = axes if axes_input is None else [int(a) for a in axes_input]
        if not chosen:
            if noop_with_empty_axes:
                return x
            chosen = range(x.ndim)
        return np.asarray(fn(x, tuple(int(a) for a in chosen), bool(keepdims))).astype(x.dtype)

    return kernel


def _extreme(dtype, top: bool):
    """The identity of min (top=True) or max (top=False): the dtype's largest or smallest value."""
    if dtype.kind == "f":
        return np.inf if top else -np.inf
    if dtype.kind == "b":
        return top
    info = np.iinfo(dtype)
    return info.max if top else info.min


def _log_sum_exp(x, axes, keep):
    peak = np.max(x, axis=axes, keepdims=True, initial=-np.inf)
    peak = np.where(np.isfinite(peak), peak, 0)
    total = np.log(np.sum(np.exp(x - peak), axis=axes, keepdims=True)) + peak
    return total if keep else np.squeeze(total, axis=axes)


REDUCTIONS = {
    "ReduceMean": lambda x, a, k: np.mean(x, axis=a, keepdims=k),
    "ReduceSum": lambda x, a, k: np.sum(x, axis=a, keepdims=k),
    "ReduceMax": lambda x, a, k: np.max(x, axis=a, keepdims=k, initial=_extreme(x.dtype, False)),
    "ReduceMin": lambda x, a, k: np.min(x, axis=a, keepdims=k, initial=_extreme(x.dtype, True)),
    "ReduceProd": lambda x, a, k: np.prod(x, axis=a, keepdims=k),
    "ReduceL1": lambda x, a, k: np.sum(np.abs(x), axis=a, keepdims=k),
    "ReduceL2": lambda x, a, k: np.sqrt(np.sum(np.square(x), axis=a, keepdims=k)),
    "ReduceSumSquare": lambda x, a, k: np.sum(np.square(x), axis=a, keepdims=k),
    "ReduceLogSumExp": _log_sum_exp,
}

KERNELS = {
    "Concat": concat,
    "Split": split,
    "Slice": slice_,
    "Gather": gather,
    "Reshape": reshape,
    "Transpose": transpose,
    "Flatten": flatten,
    "Squeeze": squeeze,
    "Unsqueeze": unsqueeze,
    "Expand": expand,
    "Tile": tile,
    "Shape": shape,
    "Size": size,
    "Constant": constant_value,
    "ConstantOfShape": constant_of_shape,
    "Range": range_,
    "Pad": pad,
    "DepthToSpace": depth_to_space,
    "SpaceToDepth": space_to_depth,
    **{op: _reduction(fn) for op, fn in REDUCTIONS.items()},
}
