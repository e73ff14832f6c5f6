"""Reference kernels for linear quantization: q = saturate(round(x / scale) + zero_point)."""

from __future__ import annotations

import numpy as np

from ...ops.dtypes import onnx_to_numpy
from .nn import conv


def _along(param, axis, ndim):
    """Broadcast a per-tensor (scalar) or per-axis (1-D) parameter against a rank-ndim tensor."""
    param = np.asarray(param)
    if param.ndim == 0 or (param.size == 1 and ndim == 0):
        return param.reshape(())
    shape = [1] * ndim
    shape[axis % ndim] = -1
    return param.reshape(shape)


def _saturate(values, dtype):
    info = np.iinfo(dtype)
    return np.clip(values, info.min, info.max).astype(dtype)


def quantize_linear(x, y_scale, y_zero_point=None, *, axis, saturate, block_size, output_dtype):
    if output_dtype:
        dtype = onnx_to_numpy(output_dtype)
    else:
        dtype = y_zero_point.dtype if y_zero_point is not None else np.dtype(np.uint8)
    scale = _along(y_scale, axis, x.ndim).astype(np.float32)
    zero = 0 if y_zero_point is None else _along(y_zero_point, axis, x.ndim).astype(np.int64)
    q = np.rint(x.astype(np.float32) / scale).astype(np.float64) + zero
    return _saturate(q, dtype)


def dequantize_linear(x, x_scale, x_zero_point=None, *, axis, block_size):
    scale = _along(x_scale, axis, x.ndim)
    zero = 0 if x_zero_point is None else _along(x_zero_point, axis, x.ndim).astype(np.int64)
    return ((x.astype(np.int64) - zero) * scale).astype(x_scale.dtype)


def _requantize(acc, real_scale, y_scale, y_zero_point):
    """Integer accumulators -> output quantized domain, rounding half to even."""
    y = np.rint(acc.astype(np.float64) * real_scale / np.float64(y_scale))
    return _saturate(y + y_zero_point.astype(np.int64), y_zero_point.dtype)


def qlinear_conv(
    x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B=None, **window
):
    """Conv on integers (x - zx) * (w - zw) + B, then requantized to y's scale and zero point."""
    xi = x.astype(np.int64) - np.int64(x_zero_point)
    wi = w.astype(np.int64) - _along(w_zero_point, 0, w.ndim).astype(np.int64)
    acc = conv(xi, wi, None if B is None else B.astype(np.int64), **window)
    scale = _along(np.asarray(w_scale, np.float64) * np.float64(x_scale), 1, acc.ndim)
    return _requantize(acc, scale, y_scale, y_zero_point)


def qlinear_matmul(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point):
    ai = a.astype(np.int64) - np.int64(a_zero_point)
    bi = b.astype(np.int64) - np.asarray(b_zero_point).astype(np.int64)
    acc = np.matmul(ai, bi)
    scale = np.float64(a_scale) * np.asarray(b_scale, np.float64)
    return _requantize(acc, scale, y_scale, y_zero_point)


KERNELS = {
    "QuantizeLinear": quantize_linear,
    "DequantizeLinear": dequantize_linear,
    "QLinearConv": qlinear_conv,
    "QLinearMatMul": qlinear_matmul,
}
