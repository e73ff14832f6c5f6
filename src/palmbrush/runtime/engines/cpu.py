"""The cpu engine: fused, channels-last kernels compiled by Numba, for style networks.

Tensors keep ONNX's logical NCHW shape but live in channels-last memory (as PyTorch's
channels_last does): a kernel's output is `buffer[N, H, W, C].transpose(0, 3, 1, 2)`, so
reference kernels read it unchanged and NHWC frames enter and leave without copies. Kernels
that want channels-last inputs say so (`layout`), and the executor converts a value at most
once. A FusedConv runs as one pass that reads its input through pad/upsample index tables and
collects instance-norm statistics while it writes, then one in-place pass for the norm,
activation and residual. Everything else is declined with a reason.
"""

from __future__ import annotations

import importlib.util
import weakref

import numpy as np

from ..errors import Unsupported
from ..registry import declines

NAME = "cpu"
PRIORITY = 5  # after torch (oneDNN convolutions), before the reference engine
NARROW = 8  # below this many output channels, convolutions vectorize over input channels
ACTIVATIONS = {"none": 0, "relu": 1, "leaky_relu": 2, "sigmoid": 3}


def available() -> bool:
    return importlib.util.find_spec("numba") is not None


def unavailable_reason() -> str:
    return "Numba is not installed (pip install palmbrush[cpu])"


def set_threads(n: int) -> None:
    import numba

    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))


def _k():
    from ._cpu import kernels

    return kernels


# ---- layout -------------------------------------------------------------------------------


def nhwc(x: np.ndarray) -> np.ndarray:
    """The [N, H, W, C] float32 view of a logical NCHW array (a copy only if it is not
    channels-last in memory already)."""
    view = np.asarray(x).transpose(0, 2, 3, 1)
    if view.dtype != np.float32 or not view.flags.c_contiguous:
        view = np.ascontiguousarray(view, dtype=np.float32)
    return view


def empty(n: int, c: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """A new channels-last tensor: (its [N, H, W, C] buffer, its logical NCHW view)."""
    buffer = np.empty((n, h, w, c), np.float32)
    return buffer, buffer.transpose(0, 3, 1, 2)


def is_channels_last(x) -> bool:
    return isinstance(x, np.ndarray) and x.ndim == 4 and x.transpose(0, 2, 3, 1).flags.c_contiguous


# ---- index tables -------------------------------------------------------------------------


def table(n: int, up: int, before: int, after: int, mode: str, zeros=(0, 0)) -> np.ndarray:
    """For each coordinate of an axis of length n, upsampled (nearest) by `up`, padded by
    before/after in `mode`, then zero-padded by zeros[0]/zeros[1]: the stored coordinate it
    reads, or -1 for a zero."""
    length = n * up
    p = np.arange(-zeros[0], length + before + after + zeros[1], dtype=np.int64)
    inside = (p >= 0) & (p < length + before + after)
    q = p - before
    if mode == "reflect":
        q = np.abs(q)
        q = np.where(q >= length, 2 * (length - 1) - q, q)
    elif mode == "edge":
        q = np.clip(q, 0, length - 1)
    else:
        inside &= (q >= 0) & (q < length)
    return np.where(inside, np.clip(q, 0, length - 1) // up, -1).astype(np.int64)


# ---- weights ------------------------------------------------------------------------------

_WEIGHTS: dict[int, np.ndarray] = {}


def _weights(w: np.ndarray, narrow: bool) -> np.ndarray:
    """OIHW weights rearranged for a kernel, converted once per weight array."""
    key = id(w) * 2 + narrow
    found = _WEIGHTS.get(key)
    if found is None:
        perm = (0, 2, 3, 1) if narrow else (2, 3, 1, 0)
        found = np.ascontiguousarray(np.asarray(w, np.float32).transpose(perm))
        _WEIGHTS[key] = found
        weakref.finalize(w, _WEIGHTS.pop, key, None)
    return found


# ---- kernels ------------------------------------------------------------------------------


def _check_conv(ctx) -> None:
    a = ctx.attrs
    if ctx.dtype(0) != np.float32 or ctx.rank(0) != 4:
        raise Unsupported("float32 4-D input only")
    if ctx.const(1) is None:
        raise Unsupported("weights computed at run time")
    if a.get("group", 1) != 1:
        raise Unsupported(f"group={a['group']} (group 1 only)")
    if a.get("auto_pad", "NOTSET") != "NOTSET":
        raise Unsupported(f"auto_pad={a['auto_pad']}")
    if ctx.has(5) and ctx.rank(5) != 4:
        raise Unsupported("residual of another rank")


def _epilogue(y, sums, squares, scale, bias, norm, epsilon, activation, alpha, residual):
    """In place on y [H, W, C]: instance norm from row statistics, activation, residual."""
    k = _k()
    channels = y.shape[-1]
    if norm == "instance":
        count = y.shape[0] * y.shape[1]
        mean = sums.sum(axis=0) / count
        var = np.maximum(squares.sum(axis=0) / count - mean * mean, 0.0)
        gain = np.asarray(scale, np.float64) / np.sqrt(var + epsilon)
        shift = np.asarray(bias, np.float64) - mean * gain
    elif activation == "none" and residual is None:
        return
    else:
        gain, shift = np.ones(channels), np.zeros(channels)
    extra = np.empty((0, 0, 0), np.float32) if residual is None else residual
    k.finish(y, gain.astype(np.float32), shift.astype(np.float32), ACTIVATIONS[activation],
             np.float32(alpha), extra, y)  # fmt: skip


def finish(y4, scale, bias, residual, *, norm, epsilon, activation, alpha, stats=None):
    """Norm, activation and residual on a channels-last [N, H, W, C] buffer, in place.
    `stats` (sums, squares) per image if the producer collected them; else computed here."""
    k = _k()
    for n in range(y4.shape[0]):
        y = y4[n]
        if stats is not None:
            sums, squares = stats[n]
        elif norm == "instance":
            sums = np.empty((y.shape[0], y.shape[2]))
            squares = np.empty_like(sums)
            k.row_stats(y, sums, squares)
        else:
            sums = squares = None
        res = None if residual is None else _residual(residual, y4.shape)[n]
        _epilogue(y, sums, squares, scale, bias, norm, epsilon, activation, alpha, res)


def _residual(r, shape) -> np.ndarray:
    view = nhwc(r)
    return view if view.shape == shape else np.ascontiguousarray(np.broadcast_to(view, shape))


def input_tables(x_shape, attrs):
    """Row and column tables for a FusedConv/Conv input of logical shape [N, C, H, W]."""
    pre = attrs.get("pre_pads") or [0, 0, 0, 0]
    pads = attrs.get("pads") or [0, 0, 0, 0]
    up = attrs.get("upsample") or [1, 1]
    mode = attrs.get("pad_mode", "constant")
    rows = table(x_shape[2], up[0], pre[0], pre[2], mode, (pads[0], pads[2]))
    cols = table(x_shape[3], up[1], pre[1], pre[3], mode, (pads[1], pads[3]))
    return rows, cols


def out_size(length: int, k: int, stride: int, dilation: int) -> int:
    return (length - dilation * (k - 1) - 1) // stride + 1


@declines(_check_conv)
def fused_conv(X, W, B=None, scale=None, bias=None, residual=None, *, norm="none",
               epsilon=1e-5, activation="none", alpha=0.01, **attrs):  # fmt: skip
    """Pad/upsample -> Conv -> instance norm -> activation -> + residual, channels-last."""
    k = _k()
    x4 = nhwc(X)
    co, _, kh, kw = W.shape
    strides = tuple(attrs.get("strides") or (1, 1))
    dilations = tuple(attrs.get("dilations") or (1, 1))
    rows, cols = input_tables(X.shape, attrs)
    ho = out_size(rows.size, kh, strides[0], dilations[0])
    wo = out_size(cols.size, kw, strides[1], dilations[1])
    buffer, out = empty(X.shape[0], co, ho, wo)
    b = np.zeros(co, np.float32) if B is None else np.asarray(B, np.float32)
    narrow = co < NARROW
    conv = k.conv_narrow if narrow else k.conv_wide
    w = _weights(W, narrow)
    stats = []
    for n in range(X.shape[0]):
        if norm == "instance":
            sums, squares = np.empty((ho, co)), np.empty((ho, co))
        else:
            sums = squares = np.empty((0, 0))
        conv(x4[n], w, b, rows, cols, strides, dilations, buffer[n], sums, squares)
        stats.append((sums, squares))
    finish(buffer, scale, bias, residual, norm=norm, epsilon=epsilon, activation=activation,
           alpha=alpha, stats=stats)  # fmt: skip
    return out


@declines(_check_conv)
def conv(X, W, B=None, **attrs):
    return fused_conv(X, W, B, **attrs)


def _check_pad(ctx) -> None:
    pads = ctx.const(1) if ctx.has(1) else None
    if ctx.dtype(0) != np.float32 or ctx.rank(0) != 4:
        raise Unsupported("float32 4-D input only")
    if pads is None or len(pads) != 8 or any(pads[[0, 1, 4, 5]]) or (pads < 0).any():
        raise Unsupported("needs constant, non-negative pads on H and W only")
    if ctx.attrs.get("mode", "constant") not in ("constant", "reflect", "edge"):
        raise Unsupported(f"mode {ctx.attrs['mode']}")
    fill = ctx.const(2) if ctx.has(2) else None
    if (ctx.has(2) and fill is None) or (fill is not None and fill.any()) or ctx.has(3):
        raise Unsupported("non-zero fill value or axes")


@declines(_check_pad)
def pad(data, pads, constant_value=None, axes=None, *, mode="constant"):
    top, left, bottom, right = (int(p) for p in pads[[2, 3, 6, 7]])
    if not (top or left or bottom or right):
        return data
    return gather(data, table(data.shape[2], 1, top, bottom, mode),
                   table(data.shape[3], 1, left, right, mode))  # fmt: skip


def gather(x, rows, cols):
    """x (logical NCHW) read through row/column index tables, into a new channels-last tensor."""
    k = _k()
    x4 = nhwc(x)
    buffer, out = empty(x.shape[0], x.shape[1], rows.size, cols.size)
    for n in range(x.shape[0]):
        k.gather(x4[n], rows, cols, buffer[n])
    return out


def check_nearest(ctx) -> None:
    """Claim only nearest resizes by integer factors whose ONNX coordinates are floor(x / s)."""
    a = ctx.attrs
    if ctx.dtype(0) != np.float32 or ctx.rank(0) != 4:
        raise Unsupported("float32 4-D input only")
    if a["mode"] != "nearest" or a.get("axes") or a.get("antialias"):
        raise Unsupported(f"mode {a['mode']} (nearest only)")
    scales = ctx.const(2) if ctx.has(2) else None
    if scales is None or scales.size != 4 or any(scales[:2] != 1):
        raise Unsupported("needs constant scales on H and W")
    if any(s != int(s) or s < 1 for s in scales[2:]):
        raise Unsupported(f"non-integer scales {list(scales)}")
    floor_like = {("asymmetric", "floor"), ("half_pixel", "round_prefer_floor"),
                  ("pytorch_half_pixel", "round_prefer_floor")}  # fmt: skip
    if (a["coordinate_transformation_mode"], a["nearest_mode"]) not in floor_like:
        raise Unsupported(f"{a['coordinate_transformation_mode']}/{a['nearest_mode']} coordinates")


@declines(check_nearest)
def resize(X, roi=None, scales=None, sizes=None, **attrs):
    sh, sw = int(scales[2]), int(scales[3])
    return gather(X, table(X.shape[2], sh, 0, 0, "edge"), table(X.shape[3], sw, 0, 0, "edge"))


KERNELS = {"FusedConv": fused_conv, "Conv": conv, "Pad": pad, "Resize": resize}


NCHW_TO_NHWC, NHWC_TO_NCHW = [0, 2, 3, 1], [0, 3, 1, 2]


def _check_from_image(ctx) -> None:
    if ctx.rank(0) != 4 or ctx.attrs["perm"] != NHWC_TO_NCHW:
        raise Unsupported("NHWC uint8 frames to NCHW tensors only")


@declines(_check_from_image)
def from_image(x, *, perm, scale):
    """A uint8 NHWC frame to a channels-last float tensor, in one pass."""
    n, h, w, c = x.shape
    buffer, out = empty(n, c, h, w)
    _k().from_image(np.ascontiguousarray(x), np.float32(scale), buffer)
    return out


def _check_to_image(ctx) -> None:
    if ctx.dtype(0) != np.float32 or ctx.rank(0) != 4 or ctx.attrs["perm"] != NCHW_TO_NHWC:
        raise Unsupported("float32 NCHW tensors to NHWC frames only")


@declines(_check_to_image)
def to_image(x, *, perm, scale, low, high):
    """A float tensor (any layout; channels-last is read in order) to a uint8 NHWC frame."""
    view = np.ascontiguousarray(np.asarray(x).transpose(0, 2, 3, 1))  # no copy if channels-last
    out = np.empty(view.shape, np.uint8)
    _k().to_image(view, np.float32(scale), np.float32(low), np.float32(high), out)
    return out


KERNELS.update({"FromImage": from_image, "ToImage": to_image})
