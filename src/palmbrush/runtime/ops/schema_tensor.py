"""Schemas of tensor-manipulation ops: shapes, slicing, joining, padding, reductions."""

from __future__ import annotations

import numpy as np

from ..errors import ModelError
from .rules import broadcast, check_reflect, constant_value, norm_axis, numel, slice_length
from .schema import REQUIRED, Schema

INT64 = np.dtype(np.int64)


def _concat(ctx):
    shapes = [ctx.shape(i) for i in range(len(ctx.inputs)) if ctx.has(i)]
    if any(s is None for s in shapes):
        return [(ctx.dtype(0), None)]
    axis = norm_axis(ctx.attrs["axis"], len(shapes[0]), ctx)
    if any(len(s) != len(shapes[0]) for s in shapes):
        raise ctx.fail("inputs have different ranks")
    sizes = [s[axis] for s in shapes]
    total = sum(sizes) if all(isinstance(d, int) for d in sizes) else None
    return [(ctx.dtype(0), (*shapes[0][:axis], total, *shapes[0][axis + 1 :]))]


def split_sizes(ctx, dim, n: int) -> list | None:
    if ctx.has(1):
        return ctx.ints(1)  # None when the sizes are only known at run time
    if not isinstance(dim, int):
        return None
    if ctx.opset < 18 and dim % n:
        raise ctx.fail(f"cannot split {dim} into {n} equal parts")
    part = -(-dim // n)
    return [min(part, max(dim - part * i, 0)) for i in range(n)]


def _split(ctx):
    x, n = ctx.shape(0), len(ctx.node.outputs)
    if x is None:
        return [(ctx.dtype(0), None)] * n
    axis = norm_axis(ctx.attrs["axis"], len(x), ctx)
    if ctx.attrs.get("num_outputs") not in (None, n):
        raise ctx.fail(f"num_outputs={ctx.attrs['num_outputs']} but the node has {n} outputs")
    sizes = split_sizes(ctx, x[axis], n) or [None] * n
    if len(sizes) != n:
        raise ctx.fail(f"split has {len(sizes)} parts for {n} outputs")
    known = isinstance(x[axis], int) and all(isinstance(s, int) for s in sizes)
    if known and sum(sizes) != x[axis]:
        raise ctx.fail(f"split sizes {sizes} do not add up to {x[axis]}")
    return [(ctx.dtype(0), (*x[:axis], s, *x[axis + 1 :])) for s in sizes]


def _bind_split(attrs, node):
    """Without sizes or num_outputs, Split makes as many equal parts as the node has outputs."""
    has_sizes = len(node.inputs) > 1 and node.inputs[1]
    if not has_sizes and attrs.get("num_outputs") is None:
        return {**attrs, "num_outputs": len(node.outputs)}
    return attrs


def _slice(ctx):
    x = ctx.shape(0)
    starts, ends = ctx.ints(1), ctx.ints(2)
    if x is None:
        return [(ctx.dtype(0), None)]
    axes = ctx.ints(3) if ctx.has(3) else list(range(len(starts or [])))
    steps = ctx.ints(4) if ctx.has(4) else [1] * len(axes or [])
    if starts is None or ends is None or axes is None or steps is None:
        return [(ctx.dtype(0), (None,) * len(x))]
    out = list(x)
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = norm_axis(axis, len(x), ctx)
        if step == 0:
            raise ctx.fail("slice step is 0")
        dim = x[axis]
        out[axis] = slice_length(dim, start, end, step) if isinstance(dim, int) else None
    return [(ctx.dtype(0), tuple(out))]


def _gather(ctx):
    x, idx = ctx.shape(0), ctx.shape(1)
    if x is None or idx is None:
        return [(ctx.dtype(0), None)]
    axis = norm_axis(ctx.attrs["axis"], len(x), ctx)
    return [(ctx.dtype(0), (*x[:axis], *idx, *x[axis + 1 :]))]


def _reshape(ctx):
    target, x = ctx.ints(1), ctx.shape(0)
    if target is None:
        n = ctx.shape(1)[0] if ctx.shape(1) else None
        return [(ctx.dtype(0), None if not isinstance(n, int) else (None,) * n)]
    out = list(target)
    for i, d in enumerate(out):
        if d == 0 and not ctx.attrs["allowzero"]:
            out[i] = x[i] if x is not None and i < len(x) else None
        elif d < -1:
            raise ctx.fail(f"reshape target {target} has a negative dimension")
    if out.count(-1) > 1:
        raise ctx.fail(f"reshape target {target} has more than one -1")
    total = numel(x)
    if -1 in out:
        rest = numel(tuple(d for d in out if d != -1))
        known = total is not None and rest not in (None, 0)
        out[out.index(-1)] = total // rest if known else None
    size = numel(tuple(out))
    if total is not None and size is not None and total != size:
        raise ctx.fail(f"cannot reshape {list(x)} ({total} elements) into {target}")
    return [(ctx.dtype(0), tuple(out))]


def _transpose(ctx):
    x = ctx.shape(0)
    if x is None:
        return [(ctx.dtype(0), None)]
    perm = ctx.attrs.get("perm") or list(range(len(x)))[::-1]
    if sorted(perm) != list(range(len(x))):
        raise ctx.fail(f"perm {perm} is not a permutation of {len(x)} axes")
    return [(ctx.dtype(0), tuple(x[p] for p in perm))]


def _flatten(ctx):
    x = ctx.shape(0)
    if x is None:
        return [(ctx.dtype(0), None)]
    axis = ctx.attrs["axis"]
    axis = axis + len(x) if axis < 0 else axis
    if not 0 <= axis <= len(x):
        raise ctx.fail(f"axis {ctx.attrs['axis']} is out of range for rank {len(x)}")
    return [(ctx.dtype(0), (numel(x[:axis]), numel(x[axis:])))]


def _squeeze(ctx):
    x = ctx.shape(0)
    axes = ctx.ints(1) if ctx.has(1) else None
    if x is None or (ctx.has(1) and axes is None):
        return [(ctx.dtype(0), None)]
    if axes is None:
        if not all(isinstance(d, int) for d in x):
            return [(ctx.dtype(0), None)]
        return [(ctx.dtype(0), tuple(d for d in x if d != 1))]
    axes = {norm_axis(a, len(x), ctx) for a in axes}
    for a in axes:
        if isinstance(x[a], int) and x[a] != 1:
            raise ctx.fail(f"cannot squeeze axis {a} of size {x[a]}")
    return [(ctx.dtype(0), tuple(d for i, d in enumerate(x) if i not in axes))]


def _unsqueeze(ctx):
    x, axes = ctx.shape(0), ctx.ints(1)
    if x is None or axes is None:
        return [(ctx.dtype(0), None)]
    rank = len(x) + len(axes)
    axes = sorted(norm_axis(a, rank, ctx) for a in axes)
    rest = iter(x)
    return [(ctx.dtype(0), tuple(1 if i in axes else next(rest) for i in range(rank)))]


def _expand(ctx):
    target = ctx.ints(1)
    if target is None:
        return [(ctx.dtype(0), None)]
    if any(d < 0 for d in target):
        raise ctx.fail(f"expand target {target} has a negative dimension")
    return [(ctx.dtype(0), broadcast(ctx.shape(0), tuple(target), ctx=ctx))]


def _tile(ctx):
    x, reps = ctx.shape(0), ctx.ints(1)
    if x is None or reps is None:
        return [(ctx.dtype(0), None if x is None else (None,) * len(x))]
    if len(reps) != len(x) or any(r < 0 for r in reps):
        raise ctx.fail(f"repeats {reps} do not fit rank {len(x)}")
    return [(ctx.dtype(0), tuple(d * r if isinstance(d, int) else None for d, r in zip(x, reps)))]


def _shape(ctx):
    x = ctx.shape(0)
    if x is None:
        return [(INT64, (None,))]
    start, end = ctx.attrs["start"], ctx.attrs["end"]
    dims = x[slice(start, end)]
    const = np.array(dims, np.int64) if all(isinstance(d, int) for d in dims) else None
    return [(INT64, (len(dims),), const)]


def _size(ctx):
    n = numel(ctx.shape(0))
    return [(INT64, (), None if n is None else np.array(n, np.int64))]


def _constant(ctx):
    value = np.asarray(constant_value(**ctx.attrs))
    return [(value.dtype, tuple(value.shape), value)]


def _constant_of_shape(ctx):
    shape = ctx.ints(0)
    value = ctx.attrs.get("value")
    dtype = np.asarray(value).dtype if value is not None else np.dtype(np.float32)
    if shape is not None and any(d < 0 for d in shape):
        raise ctx.fail(f"shape {shape} has a negative dimension")
    return [(dtype, None if shape is None else tuple(shape))]


def _range(ctx):
    start, limit, delta = (ctx.const(i) for i in range(3))
    if start is None or limit is None or delta is None:
        return [(ctx.dtype(0), (None,))]
    if float(delta) == 0:
        raise ctx.fail("Range delta is 0")
    n = max(int(np.ceil((float(limit) - float(start)) / float(delta))), 0)
    return [(ctx.dtype(0), (n,))]


def _pad(ctx):
    x, pads = ctx.shape(0), ctx.ints(1)
    if x is None or pads is None:
        return [(ctx.dtype(0), None if x is None else (None,) * len(x))]
    axes = ctx.ints(3) if ctx.has(3) else list(range(len(x)))
    axes = [norm_axis(a, len(x), ctx) for a in axes]
    if len(pads) != 2 * len(axes):
        raise ctx.fail(f"{len(pads)} pads for {len(axes)} axes")
    out = list(x)
    for i, axis in enumerate(axes):
        if isinstance(out[axis], int):
            check_reflect(ctx, ctx.attrs["mode"], out[axis], max(pads[i], pads[i + len(axes)]))
            out[axis] += pads[i] + pads[i + len(axes)]
    return [(ctx.dtype(0), tuple(out))]


def _check_pad(attrs, node):
    if attrs["mode"] not in ("constant", "reflect", "edge", "wrap"):
        raise ModelError(f"{node.label()}: unknown Pad mode '{attrs['mode']}'")


def _constant_validate(attrs, node):
    given = [k for k, v in attrs.items() if v is not None]
    if len(given) != 1:
        raise ModelError(f"{node.label()}: Constant needs exactly one value attribute")
    if given[0] == "sparse_value":
        raise ModelError(f"{node.label()}: sparse Constant values are not supported")


CONSTANT = {
    k: None
    for k in (
        "value",
        "value_float",
        "value_floats",
        "value_int",
        "value_ints",
        "value_string",
        "value_strings",
        "sparse_value",
    )
}

SCHEMAS = [
    Schema("Concat", (1, -1), (1, 1), {"axis": REQUIRED}, _concat),
    Schema(
        "Split", (1, 2), (1, 1 << 16), {"axis": 0, "num_outputs": None}, _split, bind=_bind_split
    ),
    Schema("Slice", (3, 5), (1, 1), {}, _slice),
    Schema("Gather", (2, 2), (1, 1), {"axis": 0}, _gather),
    Schema("Reshape", (2, 2), (1, 1), {"allowzero": 0}, _reshape),
    Schema("Transpose", (1, 1), (1, 1), {"perm": None}, _transpose),
    Schema("Flatten", (1, 1), (1, 1), {"axis": 1}, _flatten),
    Schema("Squeeze", (1, 2), (1, 1), {}, _squeeze),
    Schema("Unsqueeze", (2, 2), (1, 1), {}, _unsqueeze),
    Schema("Expand", (2, 2), (1, 1), {}, _expand),
    Schema("Tile", (2, 2), (1, 1), {}, _tile),
    Schema("Shape", (1, 1), (1, 1), {"start": 0, "end": None}, _shape),
    Schema("Size", (1, 1), (1, 1), {}, _size),
    Schema("Constant", (0, 0), (1, 1), CONSTANT, _constant, _constant_validate),
    Schema("ConstantOfShape", (1, 1), (1, 1), {"value": None}, _constant_of_shape),
    Schema("Range", (3, 3), (1, 1), {}, _range),
    Schema("Pad", (2, 4), (1, 1), {"mode": "constant"}, _pad, _check_pad),
]
