"""The cpu engine: fused kernels for style networks, compiled by Numba (no PyTorch needed).

Its tensors are planar NCHW, C-contiguous, and its kernels declare that they read planar
tensors only: the executor converts a channels-last one (the torch engine's) first, once per
run (runtime/layout.py). A FusedConv is two passes: a gather that applies the node's
upsampling and padding through one index table per axis, then a convolution (a micro-kernel
generated for the node's window size) that also collects each output row's instance-norm
statistics while the row is in cache; then one in-place pass applies the norm, activation
and residual. Frames enter and leave through FromImage / ToImage in one pass each (ToImage
reads either layout). Everything else is declined with a reason. The kernels and their
thread pool live in _numba/, shared with the torch engine.
"""

from __future__ import annotations

import numpy as np

from ..errors import Unsupported
from ..layout import PLANAR
from ..ops.schema_nn import nearest_factors
from ..registry import declines
from . import _checks, _numba
from ._numba import ops as nb
from ._numba.tables import (
    check_nearest,
    identity,
    input_tables,
    merged,
    phased,
    phases,
    source_tables,
    table,
)

NAME = "cpu"
PRIORITY = 20  # first: fastest on the small style networks palmbrush ships (bench/runtime.py)
COMPILES = True  # its kernels compile on first use on a machine (then load from disk): interim.py
compile_count = _numba.compile_count


def available() -> bool:
    return _numba.available()


def unavailable_reason() -> str:
    return "Numba is not installed (pip install palmbrush[cpu])"


def set_threads(n: int) -> None:
    import numba

    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))


def _writes_into(kernel):
    kernel.writes_into = True
    return kernel


def _planar(kernel):
    """A kernel that reads planar tensors only: the executor converts channels-last ones
    first, once per run (runtime/layout.py)."""
    kernel.layouts_in = (PLANAR,)
    return kernel


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


@_planar
@_writes_into
@declines(_check_conv)
def fused_conv(X, W, B=None, scale=None, bias=None, residual=None, *, norm="none",
               epsilon=1e-5, activation="none", alpha=0.01, out=None, **attrs):  # fmt: skip
    """Upsample/pad -> Conv -> instance norm -> activation -> + residual, planar."""
    if phased(W, attrs):
        mode = attrs["pad_mode"]
        return _upsample_conv(X, W, B, scale, bias, residual, norm=norm, epsilon=epsilon,
                              activation=activation, alpha=alpha, mode=mode, out=out)  # fmt: skip
    co, _, kh, kw = W.shape
    stride = tuple(int(s) for s in attrs.get("strides") or (1, 1))
    dilation = tuple(int(d) for d in attrs.get("dilations") or (1, 1))
    rows, cols = input_tables(X.shape, attrs)
    ho = (rows.size - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (cols.size - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    cols, taps = phases(cols, stride[1], dilation[1], kw)
    x = np.asarray(X)
    if not (identity(rows, x.shape[2]) and identity(cols, x.shape[3])
            and x.flags.c_contiguous and x.dtype == np.float32):  # fmt: skip
        shape = (x.shape[0], x.shape[1], rows.size, cols.size)
        x = nb.gather(x, rows, cols, nb.scratch("input", shape))
    out = nb.target(out, (x.shape[0], co, ho, wo))
    b = np.zeros(co, np.float32) if B is None else np.asarray(B, np.float32)
    w = np.ascontiguousarray(W, np.float32)
    res = None if residual is None else np.broadcast_to(np.asarray(residual, np.float32), out.shape)
    stats = norm == "instance"
    for n in range(x.shape[0]):
        sums, squares = (np.empty((co, ho)), np.empty((co, ho))) if stats else (nb.NO_STATS,) * 2
        nb.conv(x[n], w, b, 0, stride[0], dilation[0], taps, out[n], sums, squares)
        if not stats and activation == "none" and residual is None:
            continue
        gain, shift = nb.gain_shift(sums, squares, ho * wo, scale, bias, norm, epsilon, co)
        extra = nb.NO_RESIDUAL_2D if res is None else np.ascontiguousarray(res[n]).reshape(co, -1)
        nb.finish_planar(out[n].reshape(co, -1), gain, shift, activation, alpha, extra)
    return out


def _upsample_conv(X, W, B, scale, bias, residual, *, norm, epsilon, activation, alpha, mode,
                   out=None):  # fmt: skip
    """Nearest upsampling by 2 and a 3x3 convolution as four 2x2 phase convolutions of the
    edge-padded source (tables.merged), interleaved while normalizing."""
    n_images, ci, h, w = X.shape
    co = W.shape[0]
    x = nb.gather(
        X, *source_tables(X.shape, mode), nb.scratch("input", (n_images, ci, h + 2, w + 2))
    )
    kernels = merged(W)
    b = np.zeros(co, np.float32) if B is None else np.asarray(B, np.float32)
    z = nb.scratch("phases", (4, co, h, w))
    out = nb.target(out, (n_images, co, 2 * h, 2 * w))
    stats = norm == "instance"
    res = None if residual is None else np.broadcast_to(np.asarray(residual, np.float32), out.shape)
    for n in range(n_images):
        sums, squares = np.zeros((4, co, h)), np.zeros((4, co, h))
        for phase in range(4):
            py, px = divmod(phase, 2)
            taps = np.array([px, px + 1], np.int64)
            wanted = (sums[phase], squares[phase]) if stats else (nb.NO_STATS,) * 2
            nb.conv(x[n], kernels[phase], b, py, 1, 1, taps, z[phase], *wanted)
        gain, shift = nb.gain_shift(sums.sum(axis=0), squares.sum(axis=0), 4 * h * w, scale,
                                    bias, norm, epsilon, co)  # fmt: skip
        extra = nb.NO_RESIDUAL_3D if res is None else np.ascontiguousarray(res[n])
        nb.finish_up2(z, gain, shift, activation, alpha, extra, out[n])
    return out


@_planar
@_writes_into
@declines(_check_conv)
def conv(X, W, B=None, **attrs):
    return fused_conv(X, W, B, **attrs)


def _check_pad(ctx) -> None:
    _checks.spatial_pad(ctx, ("constant", "reflect", "edge"))


@_planar
@_writes_into
@declines(_check_pad)
def pad(data, pads, constant_value=None, axes=None, *, mode="constant", out=None):
    top, left, bottom, right = (int(p) for p in pads[[2, 3, 6, 7]])
    rows = table(data.shape[2], 1, top, bottom, mode)
    cols = table(data.shape[3], 1, left, right, mode)
    return nb.gather(data, rows, cols, nb.target(out, (*data.shape[:2], rows.size, cols.size)))


def _check_resize(ctx) -> None:
    """Nearest by integer factors (a gather), or any mode on two adjacent axes of a float32
    4-D tensor (separable resampling with the reference's taps)."""
    try:
        check_nearest(ctx)
        return
    except Unsupported:
        pass
    a = ctx.attrs
    if ctx.dtype(0) != np.float32 or ctx.rank(0) != 4:
        raise Unsupported("float32 4-D input only")
    if a.get("antialias") or a.get("axes") or \
            a["coordinate_transformation_mode"] == "tf_crop_and_resize":  # fmt: skip
        raise Unsupported("antialias, axes or tf_crop_and_resize")


@_planar
@_writes_into
@declines(_check_resize)
def resize(X, roi=None, scales=None, sizes=None, out=None, **attrs):
    factors = nearest_factors(attrs, scales) if sizes is None else "sizes"
    if not isinstance(factors, str):  # a gather, exactly the reference's nearest pixels
        sh, sw = factors
        rows, cols = table(X.shape[2], sh, 0, 0, "edge"), table(X.shape[3], sw, 0, 0, "edge")
        return nb.gather(X, rows, cols, nb.target(out, (*X.shape[:2], rows.size, cols.size)))
    return _resample(np.asarray(X), roi, scales, sizes, attrs, out)


def _resample(x, roi, scales, sizes, attrs, out):
    """Any Resize that changes at most two adjacent axes: taps per axis as the reference
    computes them, then one pass of the separable kernel."""
    from ._reference import resize as ref

    axes = list(range(x.ndim))
    sizes_out, scale_list = ref._targets(x.shape, axes, scales, sizes,
                                         attrs["keep_aspect_ratio_policy"])  # fmt: skip
    changed = [a for a in axes if sizes_out[a] != x.shape[a] or scale_list[a] != 1]
    if not changed:
        return x.copy()
    first = changed[0] if len(changed) < 2 or changed[1] == changed[0] + 1 else None
    if first is None or len(changed) > 2 or first == x.ndim - 1:
        return ref.resize(x, roi, scales, sizes, **attrs)  # unusual: the spec does it
    taps = []
    for axis in (first, first + 1):
        coords = ref._coordinates(np.arange(sizes_out[axis], dtype=np.float64), x.shape[axis],
                                  sizes_out[axis], scale_list[axis],
                                  attrs["coordinate_transformation_mode"], (0.0, 1.0))  # fmt: skip
        idx, weights = ref._taps(coords, x.shape[axis], attrs["mode"], attrs["nearest_mode"],
                                 attrs["cubic_coeff_a"], attrs["exclude_outside"])  # fmt: skip
        taps += [np.ascontiguousarray(idx), np.ascontiguousarray(weights)]
    outer = int(np.prod(x.shape[:first]))
    inner = int(np.prod(x.shape[first + 2 :]))
    source = x.reshape(outer, x.shape[first], x.shape[first + 1], inner)
    shape = tuple(sizes_out)
    result = nb.target(out, shape)
    nb.resize2d(source, *taps, result.reshape(outer, shape[first], shape[first + 1], inner))
    return result


NCHW_TO_NHWC, NHWC_TO_NCHW = [0, 2, 3, 1], [0, 3, 1, 2]


def _check_from_image(ctx) -> None:
    if ctx.rank(0) != 4 or ctx.attrs["perm"] != NHWC_TO_NCHW:
        raise Unsupported("NHWC uint8 frames to NCHW tensors only")


@_writes_into
@declines(_check_from_image)
def from_image(x, *, perm, scale, out=None):
    """A uint8 NHWC frame to a planar float tensor, in one pass."""
    n, h, w, c = x.shape
    out = nb.target(out, (n, c, h, w))
    for i in range(n):
        nb.from_image(x[i], scale, out[i])
    return out


def _check_to_image(ctx) -> None:
    if ctx.dtype(0) != np.float32 or ctx.rank(0) != 4 or ctx.attrs["perm"] != NCHW_TO_NHWC:
        raise Unsupported("float32 NCHW tensors to NHWC frames only")


@_writes_into
@declines(_check_to_image)
def to_image(x, *, perm, scale, low, high, out=None):
    """A float tensor (planar or channels-last) to a uint8 NHWC frame, in one pass."""
    x = np.asarray(x)
    n, c, h, w = x.shape
    out = nb.target(out, (n, h, w, c), np.uint8)
    for i in range(n):
        nb.to_image(x[i], scale, low, high, out[i])
    return out


def _check_from_yuv(ctx) -> None:
    if ctx.const(3) is None or ctx.const(3).shape != (3, 3, 1, 1) or ctx.const(4) is None:
        raise Unsupported("a constant 3x3 colour matrix only")


@_writes_into
@declines(_check_from_yuv)
def from_yuv(y, u, v, W, B, *, scale, out=None):
    """yuv420p planes to a planar float RGB tensor, in one pass (the first layer's gather)."""
    n, h, w = y.shape
    result = nb.target(out, (n, 3, h, w))
    for i in range(n):
        nb.from_yuv(y[i], u[i], v[i], W[:, :, 0, 0], B, scale, result[i])
    return result


def _check_to_yuv(ctx) -> None:
    if ctx.dtype(0) != np.float32 or ctx.rank(0) != 4:
        raise Unsupported("float32 NCHW tensors only")
    shapes = [None if ctx.const(i) is None else ctx.const(i).shape for i in (1, 2, 3, 4)]
    if shapes != [(1, 3, 1, 1), (1,), (2, 3, 4, 2), (2,)]:
        raise Unsupported(f"constant 1x1 luma and 4x2 chroma windows only, got {shapes}")


@_writes_into
@declines(_check_to_yuv)
def to_yuv(x, Wy, By, Wuv, Buv, *, scale, low, high, out=None):
    """A float RGB tensor to yuv420p planes, in one pass (the last layer's gather)."""
    x = np.asarray(x)
    n, _, h, w = x.shape
    given = list(out or [None] * 3)
    planes = [
        nb.target([given[k]], shape, np.uint8)
        for k, shape in enumerate([(n, h, w), (n, h // 2, w // 2), (n, h // 2, w // 2)])
    ]
    for i in range(n):
        nb.to_yuv(x[i], scale, low, high, Wy[0, :, 0, 0], By[0], Wuv, Buv,
                  *(p[i] for p in planes))  # fmt: skip
    return tuple(planes)


KERNELS = {"FusedConv": fused_conv, "Conv": conv, "Pad": pad, "Resize": resize,
           "FromImage": from_image, "ToImage": to_image, "FromYUV": from_yuv,
           "ToYUV": to_yuv}  # fmt: skip
for _kernel in KERNELS.values():
    _kernel.layout = PLANAR  # every result C-contiguous (ToImage's: an NHWC uint8 frame)
