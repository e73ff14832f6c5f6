"""Schemas of the quantization ops that ONNX Runtime's quantizer emits."""

from __future__ import annotations

import numpy as np

from ..errors import ModelError
from .dtypes import onnx_to_numpy
from .rules import check_weights, kernel_of, window_shape
from .schema import Schema
from .schema_nn import CONV, matmul_shape


def _quantize(ctx):
    if ctx.attrs.get("output_dtype"):
        dtype = onnx_to_numpy(ctx.attrs["output_dtype"], ctx)
    else:
        dtype = ctx.dtype(2) if ctx.has(2) else np.dtype(np.uint8)
    return [(dtype, ctx.shape(0))]


def _dequantize(ctx):
    return [(ctx.dtype(1), ctx.shape(0))]


def _qlinear_conv(ctx):
    check_weights(ctx, w_index=3, b_index=8)
    w, kernel = ctx.shape(3), kernel_of(ctx, weight_index=3)
    if kernel is None or not all(isinstance(k, int) for k in kernel):
        return [(ctx.dtype(7), None)]
    return [(ctx.dtype(7), window_shape(ctx, kernel, None if w is None else w[0]))]


def _qlinear_matmul(ctx):
    return [(ctx.dtype(7), matmul_shape(ctx, ctx.shape(0), ctx.shape(3)))]


def _check_quant(attrs, node):
    if attrs.get("block_size"):
        raise ModelError(f"{node.label()}: blocked quantization (block_size) is not supported")


def _schemas():
    quant = {"axis": 1, "saturate": 1, "block_size": 0, "output_dtype": 0}
    return [
        Schema("QuantizeLinear", (2, 3), (1, 1), quant, _quantize, _check_quant),
        Schema(
            "DequantizeLinear",
            (2, 3),
            (1, 1),
            {"axis": 1, "block_size": 0},
            _dequantize,
            _check_quant,
        ),
        Schema("QLinearConv", (8, 9), (1, 1), CONV, _qlinear_conv),
        Schema("QLinearMatMul", (8, 8), (1, 1), {}, _qlinear_matmul),
    ]


SCHEMAS = _schemas()
