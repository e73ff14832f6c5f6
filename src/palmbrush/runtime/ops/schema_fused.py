"""Schemas of palmbrush's own fused ops (domain "palmbrush"), made by the graph passes.

FusedConv computes, in order: nearest upsample (upsample) -> pad (pre_pads, pad_mode) -> Conv ->
instance norm (norm) -> activation -> + residual. Its reference kernel is literally that
composition of reference kernels, so fusing never changes a number on the reference engine.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError
from ..ir import Value
from .infer import InferCtx
from .rules import broadcast, check_reflect
from .schema import Schema
from .schema_nn import CONV, _conv

FUSED = {
    **CONV,
    "upsample": None,  # [sh, sw] integer nearest-upsampling factors folded in from a Resize
    "pad_mode": "constant",  # how pre_pads fill: constant (zeros), reflect or edge
    "pre_pads": None,  # [top, left, bottom, right] padding folded in from a Pad node
    "norm": "none",  # "none" or "instance"
    "epsilon": 1e-5,  # instance norm epsilon
    "activation": "none",  # "none", "relu", "leaky_relu" or "sigmoid"
    "alpha": 0.01,  # leaky_relu slope
}


def _fused_conv(ctx: InferCtx):
    [(dtype, shape)] = _conv_part(ctx)
    if ctx.has(5):  # the residual add broadcasts exactly like the Add it replaced
        shape = broadcast(shape, ctx.shape(5), ctx=ctx)
    return [(dtype, shape)]


def _conv_part(ctx: InferCtx):
    x = ctx.shape(0)
    pads = ctx.attrs.get("pre_pads") or [0, 0, 0, 0]
    up = ctx.attrs.get("upsample") or [1, 1]
    if x is not None and len(x) == 4:
        x = (*x[:2], *(d * u if isinstance(d, int) else None for d, u in zip(x[2:], up)))
        for i, d in enumerate(x[2:]):
            if isinstance(d, int):
                check_reflect(ctx, ctx.attrs["pad_mode"], d, max(pads[i], pads[i + 2]))
        padded = (*x[:2], *(d + pads[i] + pads[i + 2] if isinstance(d, int) else None
                            for i, d in enumerate(x[2:])))  # fmt: skip
        inner = InferCtx(ctx.node, ctx.attrs, [Value("x", ctx.dtype(0), padded), *ctx.inputs[1:]],
                         ctx.opset)  # fmt: skip
        return _conv(inner)
    return _conv(ctx)


def _validate(attrs, node):
    checks = {
        "pad_mode": ("constant", "reflect", "edge"),
        "norm": ("none", "instance"),
        "activation": ("none", "relu", "leaky_relu", "sigmoid"),
    }
    for name, allowed in checks.items():
        if attrs[name] not in allowed:
            raise ModelError(f"{node.label()}: {name}={attrs[name]!r} is not one of {allowed}")
    if attrs["pre_pads"] is not None and len(attrs["pre_pads"]) != 4:
        raise ModelError(f"{node.label()}: pre_pads needs 4 values (top, left, bottom, right)")
    up = attrs["upsample"]
    if up is not None and (len(up) != 2 or any(int(u) != u or u < 1 for u in up)):
        raise ModelError(f"{node.label()}: upsample needs 2 positive integers, got {up}")


SCHEMAS = [Schema("FusedConv", (2, 6), (1, 1), FUSED, _fused_conv, _validate)]


# FromImage: y = Transpose(Cast(x, float32), perm) / scale   (a uint8 frame to the network's input)
# ToImage:   y = Cast(Transpose(Clip(Round(x * scale), low, high), perm), uint8)   (and back)
IMAGE = {"perm": None, "scale": 255.0}


def _permuted(ctx: InferCtx, dtype):
    x, perm = ctx.shape(0), ctx.attrs["perm"]
    if x is None or perm is None:
        return [(dtype, x)]
    if sorted(perm) != list(range(len(x))):
        raise ctx.fail(f"perm {perm} is not a permutation of {len(x)} axes")
    return [(dtype, tuple(x[p] for p in perm))]


def _from_image(ctx: InferCtx):
    if ctx.dtype(0) != np.uint8:
        raise ctx.fail(f"input must be uint8, got {ctx.dtype(0)}")
    return _permuted(ctx, np.dtype(np.float32))


def _to_image(ctx: InferCtx):
    return _permuted(ctx, np.dtype(np.uint8))


SCHEMAS += [
    Schema("FromImage", (1, 1), (1, 1), IMAGE, _from_image),
    Schema("ToImage", (1, 1), (1, 1), {**IMAGE, "low": 0.0, "high": 255.0}, _to_image),
]


# The YUV path's conversions (media/yuv.py writes them as ONNX ops; passes/fuse_yuv.py folds
# them), with the colour matrices as constant inputs, exactly as the Convs they replace had them:
# YUVToImage(y, u, v, W, B): uint8 NHWC RGB = Cast(Transpose(Clip(Round(Conv1x1(Concat(y,
#   nearest 2x (u, v)), W, B)), 0, 255))); y [N, H, W], u and v [N, H/2, W/2]
# ImageToYUV(frame, Wy, By, Wuv, Buv): y = Cast(Clip(Round(Conv1x1(rgb, Wy, By)))), (u, v) the
#   same of Conv(Pad(rgb, 1 row each side, edge), Wuv, Buv, 4x2 window, stride 2)
# FromYUV = FromImage(YUVToImage(...)) and ToYUV = ImageToYUV(ToImage(...)): the gathers.
def _planes_shape(ctx: InferCtx) -> tuple:
    y = ctx.shape(0)
    if y is None or len(y) != 3:
        raise ctx.fail(f"the Y plane must be [N, H, W], got {y}")
    for i in (1, 2):
        c = ctx.shape(i)
        if c is None or len(c) != 3:
            raise ctx.fail(f"the chroma planes must be [N, H/2, W/2], got {c}")
        for full, half in zip(y[1:], c[1:]):
            if isinstance(full, int) and isinstance(half, int) and full != 2 * half:
                raise ctx.fail(f"chroma plane {c} is not half of the Y plane {y}")
    return y


def _yuv_to_image(ctx: InferCtx):
    n, h, w = _planes_shape(ctx)
    return [(np.dtype(np.uint8), (n, h, w, 3))]


def _from_yuv(ctx: InferCtx):
    n, h, w = _planes_shape(ctx)
    return [(np.dtype(np.float32), (n, 3, h, w))]


def _halves(n, h, w) -> list:
    half = tuple(d // 2 if isinstance(d, int) else None for d in (h, w))
    for d in (h, w):
        if isinstance(d, int) and d % 2:
            raise ModelError(f"yuv420p planes need an even height and width, got {h}x{w}")
    u8 = np.dtype(np.uint8)
    return [(u8, (n, h, w)), (u8, (n, *half)), (u8, (n, *half))]


def _image_to_yuv(ctx: InferCtx):
    x = ctx.shape(0)
    if x is None or len(x) != 4 or ctx.dtype(0) != np.uint8:
        raise ctx.fail(f"needs a uint8 [N, H, W, 3] frame, got {ctx.dtype(0)} {x}")
    return _halves(x[0], x[1], x[2])


def _to_yuv(ctx: InferCtx):
    x = ctx.shape(0)
    if x is None or len(x) != 4:
        raise ctx.fail(f"needs a [N, 3, H, W] tensor, got {x}")
    return _halves(x[0], x[2], x[3])


SCHEMAS += [
    Schema("YUVToImage", (5, 5), (1, 1), {}, _yuv_to_image),
    Schema("FromYUV", (5, 5), (1, 1), {"scale": 255.0}, _from_yuv),
    Schema("ImageToYUV", (5, 5), (3, 3), {}, _image_to_yuv),
    Schema("ToYUV", (5, 5), (3, 3), {"scale": 255.0, "low": 0.0, "high": 255.0}, _to_yuv),
]
OPS = {s.op for s in SCHEMAS}
