"""Schemas of network layers: convolution, pooling, normalization, dense, softmax, resize."""

from __future__ import annotations

import math

import numpy as np

from ..errors import ModelError
from .rules import (
    broadcast,
    check_weights,
    differ,
    kernel_of,
    norm_axis,
    times,
    window_attr,
    window_pads,
    window_shape,
)
from .schema import REQUIRED, Schema

WINDOW = {
    "auto_pad": "NOTSET",
    "dilations": None,
    "kernel_shape": None,
    "pads": None,
    "strides": None,
}
CONV = {**WINDOW, "group": 1}


def _conv(ctx):
    check_weights(ctx)
    kernel, x, w = kernel_of(ctx), ctx.shape(0), ctx.shape(1)
    if kernel is None:
        return [(ctx.dtype(0), None if x is None else (x[0], None, *[None] * (len(x) - 2)))]
    return [(ctx.dtype(0), window_shape(ctx, kernel, None if w is None else w[0]))]


def _conv_transpose(ctx):
    check_weights(ctx, transpose=True)
    x, w, kernel = ctx.shape(0), ctx.shape(1), kernel_of(ctx)
    if x is None or kernel is None:
        return [(ctx.dtype(0), None)]
    channels = times(w[1], ctx.attrs["group"]) if w is not None else None
    n = len(kernel)
    if len(x) != n + 2:
        raise ctx.fail(f"input rank {len(x)} does not match a {n}-D kernel")
    strides, dilations = window_attr(ctx, "strides", n, 1), window_attr(ctx, "dilations", n, 1)
    extra = window_attr(ctx, "output_padding", n, 0)
    given = ctx.attrs.get("output_shape")
    if given:
        if len(given) not in (n, n + 2):
            raise ctx.fail(f"output_shape {list(given)} does not fit a {n}-D kernel")
        return [(ctx.dtype(0), (x[0], channels, *given[-n:]))]
    spatial = []
    for i, size in enumerate(x[2:]):
        if not isinstance(size, int):
            spatial.append(None)
        elif ctx.attrs["auto_pad"] in ("SAME_UPPER", "SAME_LOWER"):
            spatial.append(size * strides[i])
        else:
            pads = window_pads(ctx, x[2:], kernel, strides, dilations)[i]
            span = (kernel[i] - 1) * dilations[i] + 1
            spatial.append(strides[i] * (size - 1) + extra[i] + span - pads[0] - pads[1])
    return [(ctx.dtype(0), (x[0], channels, *spatial))]


def _pool(ctx):
    return [(ctx.dtype(0), _pool_shape(ctx)), (np.dtype(np.int64), _pool_shape(ctx))]


def _pool_shape(ctx):
    x = ctx.shape(0)
    return window_shape(
        ctx,
        ctx.attrs["kernel_shape"],
        None if x is None else x[1],
        ceil=bool(ctx.attrs.get("ceil_mode")),
    )


def _per_channel(ctx):
    """Inputs after the first hold one value per channel of the input [N, C, ...]."""
    x = ctx.shape(0)
    if x is None or len(x) < 2:
        return [(ctx.dtype(0), x)]
    for i in range(1, len(ctx.inputs)):
        s = ctx.shape(i)
        if s is not None and (len(s) != 1 or differ(s[0], x[1])):
            raise ctx.fail(f"input {i} has shape {list(s)}; input {list(x)} has {x[1]} channels")
    return [(ctx.dtype(0), x)]


def _along_axis(ctx):
    """Softmax and LogSoftmax: the input's shape, along an axis it has."""
    if ctx.shape(0) is not None:
        norm_axis(ctx.attrs["axis"], len(ctx.shape(0)), ctx)
    return [(ctx.dtype(0), ctx.shape(0))]


def _global_pool(ctx):
    x = ctx.shape(0)
    return [(ctx.dtype(0), None if x is None else (*x[:2], *[1] * (len(x) - 2)))]


def _layer_norm(ctx):
    x = ctx.shape(0)
    if x is None:
        return [(ctx.dtype(0), None)] * 3
    axis = norm_axis(ctx.attrs["axis"], len(x), ctx)
    stats = (*x[:axis], *[1] * (len(x) - axis))
    return [(ctx.dtype(0), x), (np.dtype(np.float32), stats), (np.dtype(np.float32), stats)]


def _gemm(ctx):
    a, b = ctx.shape(0), ctx.shape(1)
    if a is None or b is None:
        return [(ctx.dtype(0), None)]
    if len(a) != 2 or len(b) != 2:
        raise ctx.fail(f"Gemm needs 2-D inputs, got ranks {len(a)} and {len(b)}")
    m, k = (a[1], a[0]) if ctx.attrs["transA"] else a
    k2, n = (b[1], b[0]) if ctx.attrs["transB"] else b
    if isinstance(k, int) and isinstance(k2, int) and k != k2:
        raise ctx.fail(f"inner dimensions differ: {k} and {k2}")
    return [(ctx.dtype(0), (m, n))]


def matmul_shape(ctx, a, b):
    if a is None or b is None:
        return None
    a2, b2 = (1, *a) if len(a) == 1 else a, (*b, 1) if len(b) == 1 else b
    k, k2 = a2[-1], b2[-2]
    if isinstance(k, int) and isinstance(k2, int) and k != k2:
        raise ctx.fail(f"inner dimensions differ: {k} and {k2}")
    batch = broadcast(a2[:-2], b2[:-2], ctx=ctx)
    out = (*batch, a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


def _matmul(ctx):
    return [(ctx.dtype(0), matmul_shape(ctx, ctx.shape(0), ctx.shape(1)))]


def _resize(ctx):
    x = ctx.shape(0)
    if x is None:
        return [(ctx.dtype(0), None)]
    rank = len(x)
    axes = [norm_axis(a, rank, ctx) for a in (ctx.attrs.get("axes") or range(rank))]
    sizes, scales = _resize_targets(ctx)
    out = list(x)
    if sizes is not None:
        out = _apply_sizes(ctx, x, axes, sizes)
    elif scales is not None:
        if len(scales) != len(axes):
            raise ctx.fail(f"{len(scales)} scales for {len(axes)} axes")
        for axis, scale in zip(axes, scales):
            if scale <= 0:
                raise ctx.fail(f"scale {scale} must be positive")
            out[axis] = math.floor(x[axis] * scale) if isinstance(x[axis], int) else None
    else:
        out = [x[i] if i not in axes else None for i in range(rank)]
    return [(ctx.dtype(0), tuple(out))]


def _resize_targets(ctx):
    if ctx.node.op == "Upsample":
        return None, _floats(ctx.const(1))
    sizes = ctx.ints(3) if ctx.has(3) else None
    scales = _floats(ctx.const(2)) if ctx.has(2) else None
    if ctx.has(3) and sizes is None:
        return "unknown", None
    if sizes is not None and len(sizes) == 0:
        sizes = None
    if scales is not None and len(scales) == 0:
        scales = None
    if sizes is None and scales is None and ctx.has(2) and ctx.const(2) is None:
        return None, None
    return sizes, scales


def _floats(value):
    return None if value is None else [float(v) for v in np.asarray(value).reshape(-1)]


def _apply_sizes(ctx, x, axes, sizes):
    if sizes == "unknown":
        return [None if i in axes else d for i, d in enumerate(x)]
    if len(sizes) != len(axes):
        raise ctx.fail(f"{len(sizes)} sizes for {len(axes)} axes")
    out = list(x)
    policy = ctx.attrs.get("keep_aspect_ratio_policy", "stretch")
    if policy == "stretch":
        for axis, size in zip(axes, sizes):
            out[axis] = size
        return out
    if not all(isinstance(x[a], int) for a in axes):
        return [None if i in axes else d for i, d in enumerate(x)]
    ratios = [s / x[a] for a, s in zip(axes, sizes)]
    scale = min(ratios) if policy == "not_larger" else max(ratios)
    for axis in axes:
        out[axis] = round(x[axis] * scale)
    return out


def _check_resize(attrs, node):
    if attrs.get("antialias"):
        raise ModelError(f"{node.label()}: Resize with antialias=1 is not supported")
    if attrs["mode"] not in ("nearest", "linear", "cubic"):
        raise ModelError(f"{node.label()}: unknown Resize mode '{attrs['mode']}'")


def _check_batchnorm(attrs, node):
    if attrs.get("training_mode"):
        raise ModelError(f"{node.label()}: BatchNormalization in training mode is not inference")


def _check_conv(attrs, node):
    if attrs.get("auto_pad") not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
        raise ModelError(f"{node.label()}: unknown auto_pad '{attrs.get('auto_pad')}'")


RESIZE = {
    "antialias": 0,
    "axes": None,
    "coordinate_transformation_mode": "half_pixel",
    "cubic_coeff_a": -0.75,
    "exclude_outside": 0,
    "extrapolation_value": 0.0,
    "keep_aspect_ratio_policy": "stretch",
    "mode": "nearest",
    "nearest_mode": "round_prefer_floor",
}

# Nearest coordinates that are floor(x / s) for an integer upsampling factor s.
FLOOR_LIKE = {("asymmetric", "floor"), ("half_pixel", "round_prefer_floor"),
              ("pytorch_half_pixel", "round_prefer_floor")}  # fmt: skip


def nearest_factors(attrs: dict, scales) -> list[int] | str:
    """[sh, sw] when a Resize of a 4-D tensor by these constant scales is a nearest upsampling
    of H and W by integer factors with floor coordinates (a gather through index tables: what
    FusedConv's upsample and the fast engines compute); otherwise why it is not."""
    a = {**RESIZE, **attrs}
    if a["mode"] != "nearest" or a["axes"] or a["antialias"]:
        return f"mode {a['mode']} (nearest only)"
    if scales is None or scales.size != 4 or any(scales[:2] != 1):
        return "needs constant scales on H and W"
    if any(s != int(s) or s < 1 for s in scales[2:]):
        return f"non-integer scales {list(scales)}"
    if (a["coordinate_transformation_mode"], a["nearest_mode"]) not in FLOOR_LIKE:
        return f"{a['coordinate_transformation_mode']}/{a['nearest_mode']} coordinates"
    return [int(s) for s in scales[2:]]


SCHEMAS = [
    Schema("Conv", (2, 3), (1, 1), CONV, _conv, _check_conv),
    Schema(
        "ConvTranspose",
        (2, 3),
        (1, 1),
        {**CONV, "output_padding": None, "output_shape": None},
        _conv_transpose,
        _check_conv,
    ),
    Schema(
        "MaxPool",
        (1, 1),
        (1, 2),
        {**WINDOW, "kernel_shape": REQUIRED, "ceil_mode": 0, "storage_order": 0},
        _pool,
        _check_conv,
    ),
    Schema(
        "AveragePool",
        (1, 1),
        (1, 1),
        {**WINDOW, "kernel_shape": REQUIRED, "ceil_mode": 0, "count_include_pad": 0},
        _pool,
        _check_conv,
    ),
    Schema("GlobalAveragePool", (1, 1), (1, 1), {}, _global_pool),
    Schema("GlobalMaxPool", (1, 1), (1, 1), {}, _global_pool),
    Schema("InstanceNormalization", (3, 3), (1, 1), {"epsilon": 1e-5}, _per_channel),
    Schema(
        "BatchNormalization",
        (5, 5),
        (1, 3),
        {"epsilon": 1e-5, "momentum": 0.9, "training_mode": 0},
        _per_channel,
        _check_batchnorm,
    ),
    Schema(
        "LayerNormalization",
        (2, 3),
        (1, 3),
        {"axis": -1, "epsilon": 1e-5, "stash_type": 1},
        _layer_norm,
    ),
    Schema("Gemm", (2, 3), (1, 1), {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0}, _gemm),
    Schema("MatMul", (2, 2), (1, 1), {}, _matmul),
    Schema("Softmax", (1, 1), (1, 1), {"axis": -1}, _along_axis),
    Schema("LogSoftmax", (1, 1), (1, 1), {"axis": -1}, _along_axis),
    Schema("Resize", (1, 4), (1, 1), RESIZE, _resize, _check_resize),
    Schema("Upsample", (2, 2), (1, 1), {"mode": "nearest"}, _resize, _check_resize),
]
