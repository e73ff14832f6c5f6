"""Numba kernels on channels-last (H, W, C) float32 arrays, parallel over output rows.

Padding, nearest upsampling and cropping are never materialized by these kernels: a
convolution reads its input through two index tables (one per axis) that map each row/column
of the padded, upsampled input to a row/column of the stored one (-1: a zero). Compiled
kernels are cached on disk (cache=True), so only the first process ever compiles them.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# Activation codes shared with engines/cpu.py.
NONE, RELU, LEAKY_RELU, SIGMOID = 0, 1, 2, 3


@njit(parallel=True, fastmath=True, cache=True)
def gather(x, rows, cols, out):
    """out[i, j] = x[rows[i], cols[j]] (a zero where an index is -1)."""
    height, width, channels = out.shape
    for i in prange(height):
        r = rows[i]
        for j in range(width):
            c = cols[j]
            if r < 0 or c < 0:
                for k in range(channels):
                    out[i, j, k] = 0.0
            else:
                for k in range(channels):
                    out[i, j, k] = x[r, c, k]


@njit(parallel=True, fastmath=True, cache=True)
def conv_wide(x, w, b, rows, cols, stride, dilation, out, sums, squares):
    """Direct convolution, vectorized over output channels. w is [kh, kw, ci, co].
    With sums/squares of shape [height, co] (not [0, 0]), also each row's statistics."""
    height, width, co = out.shape
    kh, kw, ci, _ = w.shape
    sy, sx = stride
    dy, dx = dilation
    for oy in prange(height):
        acc = np.empty((width, co), np.float32)
        for ox in range(width):
            for o in range(co):
                acc[ox, o] = b[o]
        for ky in range(kh):
            r = rows[oy * sy + ky * dy]
            if r < 0:
                continue
            for kx in range(kw):
                for ox in range(width):
                    c = cols[ox * sx + kx * dx]
                    if c < 0:
                        continue
                    for i in range(ci):
                        v = x[r, c, i]
                        for o in range(co):
                            acc[ox, o] += v * w[ky, kx, i, o]
        for ox in range(width):
            for o in range(co):
                out[oy, ox, o] = acc[ox, o]
        if sums.shape[0] > 0:
            _stats(acc, sums[oy], squares[oy])


@njit(parallel=True, fastmath=True, cache=True)
def conv_narrow(x, w, b, rows, cols, stride, dilation, out, sums, squares):
    """Direct convolution for few output channels, vectorized over input channels.
    w is [co, kh, kw, ci]; sums/squares as in conv_wide."""
    height, width, co = out.shape
    _, kh, kw, ci = w.shape
    sy, sx = stride
    dy, dx = dilation
    for oy in prange(height):
        for ox in range(width):
            for o in range(co):
                total = np.float32(b[o])
                for ky in range(kh):
                    r = rows[oy * sy + ky * dy]
                    if r < 0:
                        continue
                    for kx in range(kw):
                        c = cols[ox * sx + kx * dx]
                        if c < 0:
                            continue
                        for i in range(ci):
                            total += x[r, c, i] * w[o, ky, kx, i]
                out[oy, ox, o] = total
        if sums.shape[0] > 0:
            _stats(out[oy], sums[oy], squares[oy])


@njit(fastmath=True, cache=True)
def _stats(row, sums, squares):
    """sums[k], squares[k] = sum and sum of squares (float64) of row[:, k]."""
    width, channels = row.shape
    for k in range(channels):
        sums[k] = 0.0
        squares[k] = 0.0
    for j in range(width):
        for k in range(channels):
            v = np.float64(row[j, k])
            sums[k] += v
            squares[k] += v * v


@njit(parallel=True, cache=True)
def row_stats(y, sums, squares):
    """Per row and channel of y [height, width, c]: sum and sum of squares, for instance norm."""
    for i in prange(y.shape[0]):
        _stats(y[i], sums[i], squares[i])


@njit(parallel=True, fastmath=True, cache=True)
def finish(y, gain, shift, activation, alpha, residual, out):
    """out = act(y * gain + shift) (+ residual), per channel gain/shift; out may be y."""
    height, width, channels = y.shape
    add = residual.shape[0] > 0
    for i in prange(height):
        for j in range(width):
            for k in range(channels):
                v = y[i, j, k] * gain[k] + shift[k]
                if activation == 1:
                    v = max(v, np.float32(0.0))
                elif activation == 2:
                    v = v if v >= 0 else v * alpha
                elif activation == 3:
                    v = np.float32(1.0) / (np.float32(1.0) + np.exp(-v))
                if add:
                    v += residual[i, j, k]
                out[i, j, k] = v


@njit(parallel=True, fastmath=False, cache=True)
def from_image(frame, scale, out):
    """out = float32(frame) / scale, element by element (same order: NHWC in and out)."""
    flat_in, flat_out = frame.reshape(-1), out.reshape(-1)
    for i in prange(flat_in.size):
        flat_out[i] = np.float32(flat_in[i]) / scale


@njit(parallel=True, fastmath=False, cache=True)
def to_image(x, scale, low, high, out):
    """out = uint8(clip(round_half_even(x * scale), low, high)), element by element."""
    flat_in, flat_out = x.reshape(-1), out.reshape(-1)
    for i in prange(flat_in.size):
        v = np.rint(flat_in[i] * scale)  # rint rounds half to even, as ONNX Round does
        flat_out[i] = np.uint8(min(max(v, low), high))
