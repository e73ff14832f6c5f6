"""Reference kernels for network layers. Plain loops over kernel taps: the spec, not the speed."""

from __future__ import annotations

import numpy as np

from .window import geometry, pad_for_windows, resolve_pads, tap_view, taps


def _acc_dtype(x):
    return np.float32 if x.dtype == np.float16 else x.dtype


def conv(X, W, B=None, *, auto_pad, dilations, group, kernel_shape, pads, strides):
    """Y[n, m] = B[m] + sum over channels c of the group and taps t of W[m, c, t] * X[n, c, t']."""
    kernel = list(kernel_shape or W.shape[2:])
    strides, dilations, pads, out = geometry(X.shape, kernel, strides, dilations, auto_pad, pads)
    acc = _acc_dtype(X)
    xp = pad_for_windows(X.astype(acc), pads, out, kernel, strides, dilations, 0)
    n, m, cg = X.shape[0], W.shape[0], W.shape[1]
    mg = m // group
    y = np.zeros((n, m, *out), dtype=acc)
    for g in range(group):
        xg = xp[:, g * cg : (g + 1) * cg]
        wg = W[g * mg : (g + 1) * mg].astype(acc)
        for tap in taps(kernel):
            view = tap_view(xg, tap, out, strides, dilations)  # (N, Cg, *out)
            w = wg[(slice(None), slice(None), *tap)]  # (Mg, Cg)
            y[:, g * mg : (g + 1) * mg] += np.moveaxis(np.tensordot(w, view, ([1], [1])), 0, 1)
    if B is not None:
        y += B.astype(acc).reshape(1, m, *[1] * len(out))
    return y.astype(X.dtype, copy=False)


def conv_transpose(
    X,
    W,
    B=None,
    *,
    auto_pad,
    dilations,
    group,
    kernel_shape,
    output_padding,
    output_shape,
    pads,
    strides,
):
    """The adjoint of conv: every input pixel scatters W into the output, then pads are cropped."""
    kernel = list(kernel_shape or W.shape[2:])
    nd = len(kernel)
    strides = list(strides or [1] * nd)
    dilations = list(dilations or [1] * nd)
    extra = list(output_padding or [0] * nd)
    spatial = X.shape[2:]
    full = [
        s * (i - 1) + e + (k - 1) * d + 1
        for i, k, s, d, e in zip(spatial, kernel, strides, dilations, extra)
    ]
    begins, sizes = _transpose_crop(spatial, full, strides, auto_pad, pads, output_shape, nd)
    acc = _acc_dtype(X)
    n, cg, mg = X.shape[0], X.shape[1] // group, W.shape[1]
    room = [max(f, b + s) for f, b, s in zip(full, begins, sizes)]
    y = np.zeros((n, mg * group, *room), dtype=acc)
    for g in range(group):
        xg = X[:, g * cg : (g + 1) * cg].astype(acc)
        wg = W[g * cg : (g + 1) * cg].astype(acc)
        for tap in taps(kernel):
            w = wg[(slice(None), slice(None), *tap)]  # (Cg, Mg)
            contrib = np.moveaxis(np.tensordot(w, xg, ([0], [1])), 0, 1)  # (N, Mg, *in)
            index = [slice(None), slice(g * mg, (g + 1) * mg)]
            for t, i, s, d in zip(tap, spatial, strides, dilations):
                index.append(slice(t * d, t * d + (i - 1) * s + 1, s))
            y[tuple(index)] += contrib
    crop = tuple(slice(b, b + s) for b, s in zip(begins, sizes))
    y = y[(slice(None), slice(None), *crop)]
    if B is not None:
        y = y + B.astype(acc).reshape(1, -1, *[1] * nd)
    return np.ascontiguousarray(y).astype(X.dtype, copy=False)


def _transpose_crop(spatial, full, strides, auto_pad, pads, output_shape, nd):
    """Where the output starts inside the full scatter, and its size, per spatial axis."""
    if output_shape or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        sizes = (
            list(output_shape)[-nd:] if output_shape else [i * s for i, s in zip(spatial, strides)]
        )
        begins = []
        for f, size in zip(full, sizes):
            total = f - size
            upper = auto_pad == "SAME_UPPER"
            begins.append(max(0, total // 2 if upper else total - total // 2))
        return begins, sizes
    pairs = resolve_pads(spatial, [1] * nd, [1] * nd, [1] * nd, "NOTSET", pads)
    return [b for b, _ in pairs], [f - b - e for f, (b, e) in zip(full, pairs)]


def max_pool(X, *, auto_pad, ceil_mode, dilations, kernel_shape, pads, storage_order, strides):
    """Y = the largest input in each window; Indices = its flat position in X."""
    strides, dilations, pads, out = geometry(
        X.shape, kernel_shape, strides, dilations, auto_pad, pads, ceil_mode
    )
    low = -np.inf if X.dtype.kind == "f" else np.iinfo(X.dtype).min
    xp = pad_for_windows(X, pads, out, kernel_shape, strides, dilations, low)
    flat = _flat_positions(X.shape, pads, out, kernel_shape, strides, dilations, storage_order)
    y = np.full((*X.shape[:2], *out), low, dtype=X.dtype)
    idx = np.zeros(y.shape, dtype=np.int64)
    for tap in taps(kernel_shape):
        view = tap_view(xp, tap, out, strides, dilations)
        better = view > y
        y = np.where(better, view, y)
        idx = np.where(better, tap_view(flat, tap, out, strides, dilations), idx)
    return y, idx


def _flat_positions(shape, pads, out, kernel, strides, dilations, storage_order):
    """Flat index of every input element, padded like X (padding never wins a max)."""
    n, c, *spatial = shape
    grids = np.meshgrid(*[np.arange(s) for s in spatial], indexing="ij")
    if storage_order:
        strides_ = np.cumprod([1, *spatial[:-1]])
        within = sum(g * s for g, s in zip(grids, strides_))
    else:
        within = np.ravel_multi_index(grids, spatial)
    base = (np.arange(n * c) * int(np.prod(spatial))).reshape(n, c, *[1] * len(spatial))
    flat = base + within
    return pad_for_windows(flat, pads, out, kernel, strides, dilations, 0)


def average_pool(
    X, *, auto_pad, ceil_mode, count_include_pad, dilations, kernel_shape, pads, strides
):
    """Y = mean of each window; the divisor counts explicit padding only if count_include_pad."""
    strides, dilations, pads, out = geometry(
        X.shape, kernel_shape, strides, dilations, auto_pad, pads, ceil_mode
    )
    acc = _acc_dtype(X)
    xp = pad_for_windows(X.astype(acc), pads, out, kernel_shape, strides, dilations, 0)
    ones = np.ones((1, 1, *X.shape[2:]), dtype=acc)
    if count_include_pad:
        ones = np.pad(ones, [(0, 0), (0, 0), *pads], constant_values=1)
        counted = pad_for_windows(
            ones, [(0, 0)] * len(pads), out, kernel_shape, strides, dilations, 0
        )
    else:
        counted = pad_for_windows(ones, pads, out, kernel_shape, strides, dilations, 0)
    total = np.zeros((*X.shape[:2], *out), dtype=acc)
    count = np.zeros((1, 1, *out), dtype=acc)
    for tap in taps(kernel_shape):
        total += tap_view(xp, tap, out, strides, dilations)
        count += tap_view(counted, tap, out, strides, dilations)
    return (total / count).astype(X.dtype, copy=False)


def global_average_pool(X):
    return X.mean(axis=tuple(range(2, X.ndim)), keepdims=True, dtype=_acc_dtype(X)).astype(X.dtype)


def global_max_pool(X):
    return X.max(axis=tuple(range(2, X.ndim)), keepdims=True)


def _normalize(x, axes, epsilon):
    f = x.astype(np.float32) if x.dtype == np.float16 else x
    mean = f.mean(axis=axes, keepdims=True)
    var = ((f - mean) ** 2).mean(axis=axes, keepdims=True)
    return (f - mean) / np.sqrt(var + epsilon), mean, var


def instance_normalization(x, scale, B, *, epsilon):
    """Per sample and channel: (x - mean) / sqrt(var + epsilon) * scale + B."""
    y, _, _ = _normalize(x, tuple(range(2, x.ndim)), epsilon)
    shape = (1, -1, *[1] * (x.ndim - 2))
    return (y * scale.reshape(shape) + B.reshape(shape)).astype(x.dtype)


def batch_normalization(X, scale, B, mean, var, *, epsilon, momentum, training_mode):
    """Inference: (X - running mean) / sqrt(running var + epsilon) * scale + B."""
    shape = (1, -1, *[1] * (X.ndim - 2))
    f = X.astype(np.float32) if X.dtype == np.float16 else X
    y = (f - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + epsilon)
    return (y * scale.reshape(shape) + B.reshape(shape)).astype(X.dtype)


def layer_normalization(X, Scale, B=None, *, axis, epsilon, stash_type):
    """Normalise over the axes from `axis` on; also returns the mean and 1/std it used."""
    axes = tuple(range(axis % X.ndim, X.ndim))
    y, mean, var = _normalize(X, axes, epsilon)
    y = y * Scale + (B if B is not None else 0)
    inv = 1 / np.sqrt(var + epsilon)
    return y.astype(X.dtype), mean.astype(np.float32), inv.astype(np.float32)


def gemm(A, B, C=None, *, alpha, beta, transA, transB):
    """Y = alpha * A' B' + beta * C."""
    y = alpha * ((A.T if transA else A) @ (B.T if transB else B))
    if C is not None:
        y = y + beta * C
    return y.astype(A.dtype, copy=False)


def matmul(A, B):
    return np.matmul(A, B)


def softmax(x, *, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True)).astype(x.dtype, copy=False)


def log_softmax(x, *, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return (shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))).astype(x.dtype)


KERNELS = {
    "Conv": conv,
    "ConvTranspose": conv_transpose,
    "MaxPool": max_pool,
    "AveragePool": average_pool,
    "GlobalAveragePool": global_average_pool,
    "GlobalMaxPool": global_max_pool,
    "InstanceNormalization": instance_normalization,
    "BatchNormalization": batch_normalization,
    "LayerNormalization": layer_normalization,
    "Gemm": gemm,
    "MatMul": matmul,
    "Softmax": softmax,
    "LogSoftmax": log_softmax,
}
