"""Reusable inference rules: shape arithmetic shared by many schemas."""

from __future__ import annotations

import math

import numpy as np
from onnx import numpy_helper

from ..ir import Dim, Shape
from .infer import InferCtx


def same(i: int = 0, dtype=None):
    """Output 0 has input i's shape, and its dtype unless `dtype` is given."""

    def rule(ctx: InferCtx):
        return [(dtype or ctx.dtype(i), ctx.shape(i))]

    return rule


def broadcast(*shapes: Shape, ctx: InferCtx | None = None) -> Shape:
    """Numpy-style (multidirectional) broadcasting of possibly symbolic shapes."""
    if any(s is None for s in shapes):
        return None
    rank = max((len(s) for s in shapes), default=0)
    out: list[Dim] = []
    for axis in range(rank):
        dims = [s[len(s) - rank + axis] for s in shapes if len(s) - rank + axis >= 0]
        out.append(_broadcast_dim(dims, ctx, shapes))
    return tuple(out)


def _broadcast_dim(dims: list[Dim], ctx, shapes) -> Dim:
    not_one = {d for d in dims if d != 1}
    if not not_one:
        return 1
    ints = {d for d in not_one if isinstance(d, int)}
    if len(ints) > 1 and ctx is not None:
        raise ctx.fail(f"shapes {[list(s) for s in shapes]} do not broadcast")
    if ints:
        return ints.pop()
    return not_one.pop() if len(not_one) == 1 else None


def broadcast_rule(dtype=None, dtype_from: int = 0):
    def rule(ctx: InferCtx):
        shapes = [ctx.shape(i) for i in range(len(ctx.inputs)) if ctx.has(i)]
        return [(dtype or ctx.dtype(dtype_from), broadcast(*shapes, ctx=ctx))]

    return rule


def norm_axis(axis: int, rank: int, ctx: InferCtx) -> int:
    if not -rank <= axis < max(rank, 1):
        raise ctx.fail(f"axis {axis} is out of range for rank {rank}")
    return axis % max(rank, 1)


def window_dim(
    size: Dim, kernel: int, stride: int, dilation: int, pads: tuple[int, int], ceil: bool = False
) -> Dim:
    """Output length of a sliding window (conv or pool) over `size` input positions."""
    if not isinstance(size, int):
        return None
    span = dilation * (kernel - 1) + 1
    room = size + pads[0] + pads[1] - span
    if room < 0:
        return -1  # reported by the caller as an empty or negative output
    out = (math.ceil(room / stride) if ceil else room // stride) + 1
    if ceil and (out - 1) * stride >= size + pads[0]:
        out -= 1  # the last window must start inside the input or the left padding
    return out


def window_attr(ctx: InferCtx, name: str, n: int, default: int, per_axis: int = 1) -> list[int]:
    """A window attribute (strides, dilations, pads...) of an n-D window, default if absent;
    given, it must have per_axis entries for each of the n axes."""
    value = ctx.attrs.get(name)
    if not value:
        return [default] * (per_axis * n)
    if len(value) != per_axis * n:
        raise ctx.fail(f"{name} {list(value)} has {len(value)} entries; expected {per_axis * n}")
    return list(value)


def window_pads(ctx: InferCtx, spatial: Shape, kernel, strides, dilations) -> list[tuple[int, int]]:
    """Resolve pads / auto_pad into (begin, end) per spatial axis, for concrete sizes."""
    auto_pad = ctx.attrs.get("auto_pad", "NOTSET")
    n = len(kernel)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for size, k, s, d in zip(spatial, kernel, strides, dilations):
            if not isinstance(size, int):
                pads.append((0, 0))
                continue
            total = max(0, (math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size)
            small, big = total // 2, total - total // 2
            pads.append((small, big) if auto_pad == "SAME_UPPER" else (big, small))
        return pads
    if auto_pad == "VALID":
        return [(0, 0)] * n
    pads = window_attr(ctx, "pads", n, 0, per_axis=2)
    return [(pads[i], pads[i + n]) for i in range(n)]


def window_shape(ctx: InferCtx, kernel, channels: Dim, ceil: bool = False) -> Shape:
    """(N, C, *spatial) after a conv or pool window with the node's strides/pads/dilations."""
    shape = ctx.shape(0)
    if shape is None:
        return None
    n = len(kernel)
    if len(shape) != n + 2:
        raise ctx.fail(f"input rank {len(shape)} does not match a {n}-D kernel")
    strides = window_attr(ctx, "strides", n, 1)
    dilations = window_attr(ctx, "dilations", n, 1)
    pads = window_pads(ctx, shape[2:], kernel, strides, dilations)
    spatial = []
    for size, k, s, d, p in zip(shape[2:], kernel, strides, dilations, pads):
        out = window_dim(size, k, s, d, p, ceil)
        if isinstance(out, int) and out <= 0:
            raise ctx.fail(f"window of {k} does not fit input size {size} (padding {p})")
        spatial.append(out)
    return (shape[0], channels, *spatial)


def kernel_of(ctx, weight_index: int = 1) -> list[int] | None:
    """The window: kernel_shape, which must restate the weight's spatial dims, or those dims."""
    given, w = ctx.attrs.get("kernel_shape"), ctx.shape(weight_index)
    spatial = None if w is None else list(w[2:])
    if given and spatial is not None and not _restates(given, spatial):
        raise ctx.fail(f"kernel_shape {list(given)} contradicts weight shape {list(w)}")
    if given:
        return list(given)
    if spatial is None or not all(isinstance(d, int) for d in spatial):
        return None
    return spatial


def check_weights(ctx, w_index: int = 1, b_index: int = 2, transpose: bool = False) -> None:
    """Weights [M, C/group, k...] (transposed: [C, M/group, k...]) and a bias [M] must fit the
    input [N, C, ...]: same rank, channels split evenly into groups."""
    x, w, group = ctx.shape(0), ctx.shape(w_index), ctx.attrs["group"]
    if x is None or w is None:
        return
    if len(w) != len(x):
        raise ctx.fail(f"weight shape {list(w)} has rank {len(w)}; input {list(x)} has {len(x)}")
    c_in = w[0] if transpose else times(w[1], group)
    if differ(x[1], c_in):
        raise ctx.fail(
            f"input has {x[1]} channels; weights expect {c_in} "
            f"(input {list(x)}, weights {list(w)}, group {group})"
        )
    if isinstance(w[0], int) and w[0] % group:
        raise ctx.fail(f"weight shape {list(w)} does not split into {group} groups")
    b = ctx.shape(b_index) if ctx.has(b_index) else None
    m = times(w[1], group) if transpose else w[0]
    if b is not None and (len(b) != 1 or differ(b[0], m)):
        raise ctx.fail(f"bias shape {list(b)} does not match weight shape {list(w)} ({m} outputs)")


def _restates(given: list[int], dims: list) -> bool:
    return len(given) == len(dims) and not any(map(differ, given, dims))


def differ(a: Dim, b: Dim) -> bool:
    """Two dims that are both known and not equal."""
    return isinstance(a, int) and isinstance(b, int) and a != b


def times(d: Dim, k: int) -> Dim:
    return d * k if isinstance(d, int) else None


def numel(shape: Shape) -> Dim:
    if shape is None or not all(isinstance(d, int) for d in shape):
        return None
    return int(np.prod(shape, dtype=np.int64))


def slice_range(dim: int, start: int, end: int, step: int) -> tuple[int, int]:
    """ONNX Slice bounds for one axis: negatives count from the end, then clamp per step sign."""
    start = start + dim if start < 0 else start
    end = end + dim if end < 0 else end
    if step > 0:
        return min(max(start, 0), dim), min(max(end, 0), dim)
    return min(max(start, -1), dim - 1), min(max(end, -1), dim - 1)


def slice_length(dim: int, start: int, end: int, step: int) -> int:
    start, end = slice_range(dim, start, end, step)
    return max(0, -(-(end - start) // step))


def check_reflect(ctx: InferCtx, mode: str, size: int, pad: int) -> None:
    """Reflection cannot pad more than size - 1: the input is too small for the network."""
    if mode == "reflect" and pad > size - 1:
        raise ctx.fail(f"reflect padding of {pad} needs an axis longer than {pad}, got {size}")


def constant_value(**attrs):
    """Constant: whichever one value attribute the node carries."""
    given = {k: v for k, v in attrs.items() if v is not None}
    ((name, value),) = given.items()
    if name == "value":
        return value if isinstance(value, np.ndarray) else numpy_helper.to_array(value)
    dtypes = {
        "value_float": np.float32,
        "value_floats": np.float32,
        "value_int": np.int64,
        "value_ints": np.int64,
    }
    return np.array(value, dtype=dtypes.get(name, object))
