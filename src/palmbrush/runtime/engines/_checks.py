"""Assignment-time checks that several engines share (NumPy only: importing this imports no
engine's library). Each raises Unsupported(reason) for a node the kernel does not run."""

from __future__ import annotations

import numpy as np

from ..errors import Unsupported


def conv_2d(ctx) -> None:
    """A float32 2-D convolution (4-D input) with explicit pads and a 4-D residual if any."""
    x = ctx.shape(0)
    if ctx.dtype(0) != np.float32:
        raise Unsupported(f"{ctx.dtype(0)} input (float32 only)")
    if x is None or len(x) != 4:
        raise Unsupported("only 2-D convolutions (4-D input)")
    if ctx.attrs.get("auto_pad", "NOTSET") != "NOTSET":
        raise Unsupported(f"auto_pad={ctx.attrs['auto_pad']}")
    if ctx.has(5) and ctx.shape(5) is not None and len(ctx.shape(5)) != 4:
        raise Unsupported("residual of another rank")


def spatial_pad(ctx, modes) -> None:
    """A Pad of a float32 4-D tensor on H and W only, by constant non-negative amounts, in one
    of `modes`, with zero fill."""
    pads = ctx.const(1) if ctx.has(1) else None
    if ctx.dtype(0) != np.float32 or ctx.rank(0) != 4:
        raise Unsupported("float32 4-D input only")
    if pads is None or len(pads) != 8 or any(pads[[0, 1, 4, 5]]) or (pads < 0).any():
        raise Unsupported("needs constant, non-negative pads on H and W only")
    if ctx.attrs.get("mode", "constant") not in modes:
        raise Unsupported(f"mode {ctx.attrs['mode']}")
    fill = ctx.const(2) if ctx.has(2) else None
    if (ctx.has(2) and fill is None) or (fill is not None and fill.any()) or ctx.has(3):
        raise Unsupported("non-zero fill value or axes")
