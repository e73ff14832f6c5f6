"""Schemas of reductions and of the space <-> depth rearrangements."""

from __future__ import annotations

from .rules import norm_axis
from .schema import REQUIRED, Schema

REDUCE = {"axes": None, "keepdims": 1, "noop_with_empty_axes": 0}


def _depth_to_space(ctx):
    x, b = ctx.shape(0), ctx.attrs["blocksize"]
    if x is None:
        return [(ctx.dtype(0), None)]
    n, c, h, w = x
    return [(ctx.dtype(0), (n, _div(c, b * b, ctx), _mul(h, b), _mul(w, b)))]


def _space_to_depth(ctx):
    x, b = ctx.shape(0), ctx.attrs["blocksize"]
    if x is None:
        return [(ctx.dtype(0), None)]
    n, c, h, w = x
    return [(ctx.dtype(0), (n, _mul(c, b * b), _div(h, b, ctx), _div(w, b, ctx)))]


def _mul(d, k):
    return d * k if isinstance(d, int) else None


def _div(d, k, ctx):
    if not isinstance(d, int):
        return None
    if d % k:
        raise ctx.fail(f"dimension {d} is not divisible by {k}")
    return d // k


def reduce_axes(ctx, rank: int) -> list[int] | None:
    """Reduction axes from the attribute (older opsets) or the second input (newer)."""
    axes = ctx.attrs.get("axes")
    if ctx.has(1):
        axes = ctx.ints(1)
        if axes is None:
            return None
    if not axes:
        return [] if ctx.attrs["noop_with_empty_axes"] else list(range(rank))
    return sorted({norm_axis(a, rank, ctx) for a in axes})


def _reduce(ctx):
    x = ctx.shape(0)
    if x is None:
        return [(ctx.dtype(0), None)]
    axes = reduce_axes(ctx, len(x))
    if axes is None:
        return [(ctx.dtype(0), (None,) * len(x) if ctx.attrs["keepdims"] else None)]
    if ctx.attrs["keepdims"]:
        return [(ctx.dtype(0), tuple(1 if i in axes else d for i, d in enumerate(x)))]
    return [(ctx.dtype(0), tuple(d for i, d in enumerate(x) if i not in axes))]


SCHEMAS = [
    Schema("DepthToSpace", (1, 1), (1, 1), {"blocksize": REQUIRED, "mode": "DCR"}, _depth_to_space),
    Schema("SpaceToDepth", (1, 1), (1, 1), {"blocksize": REQUIRED}, _space_to_depth),
    *(
        Schema(op, (1, 2), (1, 1), REDUCE, _reduce)
        for op in (
            "ReduceMean",
            "ReduceSum",
            "ReduceMax",
            "ReduceMin",
            "ReduceProd",
            "ReduceL1",
            "ReduceL2",
            "ReduceSumSquare",
            "ReduceLogSumExp",
        )
    ),
]
