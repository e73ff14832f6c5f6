"""The cpu engine: fused kernels for style networks, compiled by Numba (no PyTorch needed).

Its tensors are planar NCHW, C-contiguous. A FusedConv is two passes: a gather that applies
the node's upsampling and padding through one index table per axis (and converts from any
layout another engine left), then a convolution that also collects each output row's
instance-norm statistics while the row is in cache; then one in-place pass applies the norm,
activation and residual. Frames enter and leave through FromImage / ToImage in one pass each.
Everything else is declined with a reason. The torch engine borrows the gather and the
norm/activation/residual pass, in their channels-last form, around oneDNN's convolutions.
"""

from __future__ import annotations

import importlib.util
import threading
import weakref

import numpy as np

from ..errors import Unsupported
from ..registry import declines

NAME = "cpu"
PRIORITY = 20  # first: fastest on the small style networks palmbrush ships (bench/runtime.py)
ACTIVATIONS = {"none": 0, "relu": 1, "leaky_relu": 2, "sigmoid": 3}
NO_STATS = np.empty((0, 0))  # "no statistics wanted" / "no residual" for the kernels
NO_RESIDUAL_2D, NO_RESIDUAL_3D = np.empty((0, 0), np.float32), np.empty((0, 0, 0), np.float32)


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


# ---- buffers ------------------------------------------------------------------------------
# Kernels write their result into the executor's planned arena (writes_into: `out` holds one
# planned view per output, or None), and their temporaries into a per-thread scratch pool, so
# a steady stream of frames allocates nothing (fresh pages cost more than the pass itself).

_SCRATCH = threading.local()


def scratch(tag: str, shape) -> np.ndarray:
    """A float32 temporary of `shape`, reused by every later call with the same tag."""
    pool = _SCRATCH.__dict__.setdefault("pool", {})
    size = int(np.prod(shape))
    buffer = pool.get(tag)
    if buffer is None or buffer.size < size:
        buffer = pool[tag] = np.empty(size, np.float32)
    return buffer[:size].reshape(shape)


def _target(out, shape, dtype=np.float32) -> np.ndarray:
    """The planned output buffer if the executor gave one, else a new array."""
    given = out[0] if out else None
    if given is not None and given.shape == tuple(shape) and given.dtype == dtype:
        return given
    return np.empty(shape, dtype)


def _writes_into(kernel):
    kernel.writes_into = True
    return kernel


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


def input_tables(x_shape, attrs) -> tuple[np.ndarray, np.ndarray]:
    """Row and column tables of a (Fused)Conv's input [N, C, H, W]: upsample, pre_pads in
    pad_mode, then the conv's own zero pads."""
    pre = attrs.get("pre_pads") or [0, 0, 0, 0]
    pads = attrs.get("pads") or [0, 0, 0, 0]
    up = attrs.get("upsample") or [1, 1]
    mode = attrs.get("pad_mode", "constant")
    rows = table(x_shape[2], up[0], pre[0], pre[2], mode, (pads[0], pads[2]))
    cols = table(x_shape[3], up[1], pre[1], pre[3], mode, (pads[1], pads[3]))
    return rows, cols


def phases(cols: np.ndarray, stride: int, dilation: int, kw: int):
    """Columns laid out phase by phase for a strided convolution (all columns c with
    c % stride == 0, then 1, ...; each phase padded to the same length), and each tap's
    offset in that layout, so output column j of tap kx reads column offset[kx] + j."""
    if stride == 1:
        return cols, np.arange(kw, dtype=np.int64) * dilation
    part = -(-cols.size // stride)
    laid = np.full(part * stride, -1, np.int64)
    for phase in range(stride):
        chosen = cols[phase::stride]
        laid[phase * part : phase * part + chosen.size] = chosen
    reach = np.arange(kw, dtype=np.int64) * dilation
    return laid, (reach % stride) * part + reach // stride


def _identity(t: np.ndarray, n: int) -> bool:
    return t.size == n and bool((t == np.arange(n)).all())


# ---- layouts ------------------------------------------------------------------------------


def gather(x, rows, cols, out=None) -> np.ndarray:
    """x [N, C, H, W] (any layout) read through index tables into a planar tensor (`out`,
    or a new one)."""
    x = np.asarray(x, np.float32)
    shape = (x.shape[0], x.shape[1], rows.size, cols.size)
    out = np.empty(shape, np.float32) if out is None else out
    for n in range(x.shape[0]):
        _k().gather_planar(x[n], rows, cols, out[n])
    return out


def gather_hwc(x, rows, cols) -> np.ndarray:
    """The same into a new channels-last tensor (logical NCHW, memory NHWC), for oneDNN."""
    view = nhwc(x)
    buffer = np.empty((x.shape[0], rows.size, cols.size, x.shape[1]), np.float32)
    for n in range(x.shape[0]):
        _k().gather_hwc(view[n], rows, cols, buffer[n])
    return buffer.transpose(0, 3, 1, 2)


def nhwc(x) -> np.ndarray:
    """The [N, H, W, C] float32 view of a logical NCHW array (copied only if it is not
    channels-last in memory already)."""
    view = np.asarray(x).transpose(0, 2, 3, 1)
    if view.dtype != np.float32 or not view.flags.c_contiguous:
        view = np.ascontiguousarray(view, dtype=np.float32)
    return view


# ---- instance norm, activation, residual --------------------------------------------------


def _gain_shift(sums, squares, count, scale, bias, norm, epsilon, channels):
    """Per-channel y * gain + shift equal to instance norm (or the identity)."""
    if norm != "instance":
        return np.ones(channels, np.float32), np.zeros(channels, np.float32)
    mean = sums.sum(axis=1) / count
    var = np.maximum(squares.sum(axis=1) / count - mean * mean, 0.0)
    gain = np.asarray(scale, np.float64) / np.sqrt(var + epsilon)
    shift = np.asarray(bias, np.float64) - mean * gain
    return gain.astype(np.float32), shift.astype(np.float32)


def finish_hwc(y, scale, bias, residual, *, norm, epsilon, activation, alpha) -> None:
    """Norm, activation and residual in place on a channels-last y (logical NCHW)."""
    k = _k()
    view = y.transpose(0, 2, 3, 1)
    _, height, width, channels = view.shape
    res = None if residual is None else np.broadcast_to(nhwc(residual), view.shape)
    for n in range(view.shape[0]):
        sums = squares = None
        if norm == "instance":
            sums, squares = np.empty((channels, height)), np.empty((channels, height))
            k.stats_hwc(view[n], sums, squares)
        elif activation == "none" and residual is None:
            continue
        gain, shift = _gain_shift(sums, squares, height * width, scale, bias, norm, epsilon,
                                  channels)  # fmt: skip
        extra = NO_RESIDUAL_3D if res is None else res[n]
        k.finish_hwc(view[n], gain, shift, ACTIVATIONS[activation], np.float32(alpha), extra)


def finish_up2_hwc(z, scale, bias, residual, *, norm, epsilon, activation, alpha) -> np.ndarray:
    """The output of an upsample-by-2 3x3 convolution, from the 2x2 convolution z [N, 4C,
    h + 1, w + 1] (channels-last) of the edge-padded source with the phase kernels of
    _merged: norm, activation and residual applied while the phases are interleaved."""
    k = _k()
    view = z.transpose(0, 2, 3, 1)
    n_images, h, w, channels = view.shape
    h, w, channels = h - 1, w - 1, channels // 4
    buffer = np.empty((n_images, 2 * h, 2 * w, channels), np.float32)
    res = None if residual is None else np.broadcast_to(nhwc(residual), buffer.shape)
    for n in range(n_images):
        sums = squares = None
        if norm == "instance":
            sums, squares = np.empty((channels, 2 * h)), np.empty((channels, 2 * h))
            k.stats_up2_hwc(view[n], sums, squares)
        gain, shift = _gain_shift(sums, squares, 4 * h * w, scale, bias, norm, epsilon,
                                  channels)  # fmt: skip
        extra = NO_RESIDUAL_3D if res is None else res[n]
        k.finish_up2_hwc(view[n], gain, shift, ACTIVATIONS[activation], np.float32(alpha), extra,
                         buffer[n])  # fmt: skip
    return buffer.transpose(0, 3, 1, 2)


def merged_2x2(W) -> np.ndarray:
    """The four phase kernels of an upsample-by-2 3x3 convolution stacked as one 2x2
    convolution with 4 * co outputs: [4 co, ci, 2, 2], phase 2 py + px first."""
    merged = _merged(W)
    return merged.reshape(4 * merged.shape[1], *merged.shape[2:])


def source_tables(x_shape, mode: str):
    """Index tables that pad the source by 1 the way phased() convolutions need."""
    source = SOURCE_PAD[mode]
    return table(x_shape[2], 1, 1, 1, source), table(x_shape[3], 1, 1, 1, source)


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


@_writes_into
@declines(_check_conv)
def fused_conv(X, W, B=None, scale=None, bias=None, residual=None, *, norm="none",
               epsilon=1e-5, activation="none", alpha=0.01, out=None, **attrs):  # fmt: skip
    """Upsample/pad -> Conv -> instance norm -> activation -> + residual, planar."""
    if phased(W, attrs):
        mode = attrs["pad_mode"]
        return _upsample_conv(X, W, B, scale, bias, residual, norm=norm, epsilon=epsilon,
                              activation=activation, alpha=alpha, mode=mode, out=out)  # fmt: skip
    k = _k()
    co, _, kh, kw = W.shape
    stride = tuple(int(s) for s in attrs.get("strides") or (1, 1))
    dilation = tuple(int(d) for d in attrs.get("dilations") or (1, 1))
    rows, cols = input_tables(X.shape, attrs)
    ho = (rows.size - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (cols.size - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    cols, taps = phases(cols, stride[1], dilation[1], kw)
    x = np.asarray(X)
    if not (_identity(rows, x.shape[2]) and _identity(cols, x.shape[3])
            and x.flags.c_contiguous and x.dtype == np.float32):  # fmt: skip
        x = gather(x, rows, cols, scratch("input", (x.shape[0], x.shape[1], rows.size, cols.size)))
    out = _target(out, (x.shape[0], co, ho, wo))
    b = np.zeros(co, np.float32) if B is None else np.asarray(B, np.float32)
    w = np.ascontiguousarray(W, np.float32)
    res = None if residual is None else np.broadcast_to(np.asarray(residual, np.float32), out.shape)
    for n in range(x.shape[0]):
        stats = norm == "instance"
        sums, squares = (np.empty((co, ho)), np.empty((co, ho))) if stats else (NO_STATS, NO_STATS)
        k.conv(x[n], w, b, 0, stride[0], dilation[0], taps, out[n], sums, squares)
        if not stats and activation == "none" and residual is None:
            continue
        gain, shift = _gain_shift(sums, squares, ho * wo, scale, bias, norm, epsilon, co)
        extra = NO_RESIDUAL_2D if res is None else np.ascontiguousarray(res[n]).reshape(co, -1)
        k.finish_planar(out[n].reshape(co, -1), gain, shift, ACTIVATIONS[activation],
                        np.float32(alpha), extra)  # fmt: skip
    return out


# Nearest upsampling by 2, then a 3x3 convolution with a 1-pixel border: each of the four
# output phases (row parity, column parity) reads only 2x2 distinct source pixels, so it is a
# 2x2 convolution of the source with summed weights: 4 multiply-adds per output instead of 9.
# Padding the upsampled image by 1 (reflect or edge) reads what edge-padding the source by 1
# does; zeros stay zeros.
MERGE = np.array([[[1, 0, 0], [0, 1, 1]], [[1, 1, 0], [0, 0, 1]]], np.float32)  # [phase, tap, k]
SOURCE_PAD = {"reflect": "edge", "edge": "edge", "constant": "constant"}


def phased(W, attrs) -> bool:
    return (list(attrs.get("upsample") or []) == [2, 2] and W.shape[2:] == (3, 3)
            and list(attrs.get("pre_pads") or []) == [1, 1, 1, 1]
            and not any(attrs.get("pads") or [0]) and attrs.get("group", 1) == 1
            and list(attrs.get("strides") or [1, 1]) == [1, 1]
            and list(attrs.get("dilations") or [1, 1]) == [1, 1])  # fmt: skip


_MERGED: dict[int, tuple[weakref.ref, np.ndarray]] = {}  # id(W) -> (W, its phase kernels)


def _merged(W: np.ndarray) -> np.ndarray:
    """[4, co, ci, 2, 2]: the 2x2 kernel of each output phase 2 * py + px (computed once per
    weight array, and forgotten with it)."""
    found = _MERGED.get(id(W))
    if found is None or found[0]() is not W:
        w = np.asarray(W, np.float64)
        merged = np.stack([np.einsum("ak,oikl,bl->oiab", MERGE[py], w, MERGE[px])
                           for py in (0, 1) for px in (0, 1)])  # fmt: skip
        found = (weakref.ref(W), np.ascontiguousarray(merged, np.float32))
        _MERGED[id(W)] = found
        weakref.finalize(W, _MERGED.pop, id(W), None)
    return found[1]


def _upsample_conv(X, W, B, scale, bias, residual, *, norm, epsilon, activation, alpha, mode,
                   out=None):  # fmt: skip
    k = _k()
    n_images, ci, h, w = X.shape
    co = W.shape[0]
    x = gather(X, *source_tables(X.shape, mode), scratch("input", (n_images, ci, h + 2, w + 2)))
    merged = _merged(W)
    b = np.zeros(co, np.float32) if B is None else np.asarray(B, np.float32)
    z = scratch("phases", (4, co, h, w))
    out = _target(out, (n_images, co, 2 * h, 2 * w))
    stats = norm == "instance"
    res = None if residual is None else np.broadcast_to(np.asarray(residual, np.float32), out.shape)
    for n in range(n_images):
        sums, squares = np.zeros((4, co, h)), np.zeros((4, co, h))
        for phase in range(4):
            py, px = divmod(phase, 2)
            taps = np.array([px, px + 1], np.int64)
            k.conv(x[n], merged[phase], b, py, 1, 1, taps, z[phase], *(
                (sums[phase], squares[phase]) if stats else (NO_STATS, NO_STATS)))  # fmt: skip
        gain, shift = _gain_shift(sums.sum(axis=0), squares.sum(axis=0), 4 * h * w, scale, bias,
                                  norm, epsilon, co)  # fmt: skip
        extra = NO_RESIDUAL_3D if res is None else np.ascontiguousarray(res[n])
        k.finish_up2(z, gain, shift, ACTIVATIONS[activation], np.float32(alpha), extra, out[n])
    return out


@_writes_into
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


@_writes_into
@declines(_check_pad)
def pad(data, pads, constant_value=None, axes=None, *, mode="constant", out=None):
    top, left, bottom, right = (int(p) for p in pads[[2, 3, 6, 7]])
    rows = table(data.shape[2], 1, top, bottom, mode)
    cols = table(data.shape[3], 1, left, right, mode)
    return gather(data, rows, cols, _target(out, (*data.shape[:2], rows.size, cols.size)))


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


@_writes_into
@declines(_check_resize)
def resize(X, roi=None, scales=None, sizes=None, out=None, **attrs):
    if attrs["mode"] == "nearest" and sizes is None and scales is not None and \
            all(s == int(s) >= 1 for s in scales) and all(scales[:2] == 1):  # fmt: skip
        sh, sw = int(scales[2]), int(scales[3])
        rows, cols = table(X.shape[2], sh, 0, 0, "edge"), table(X.shape[3], sw, 0, 0, "edge")
        return gather(X, rows, cols, _target(out, (*X.shape[:2], rows.size, cols.size)))
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
    result = _target(out, shape)
    _k().resize2d(source, *taps, result.reshape(outer, shape[first], shape[first + 1], inner))
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
    out = _target(out, (n, c, h, w))
    for i in range(n):
        _k().from_image(x[i], np.float32(scale), out[i])
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
    out = _target(out, (n, h, w, c), np.uint8)
    for i in range(n):
        _k().to_image(x[i], np.float32(scale), np.float32(low), np.float32(high), out[i])
    return out


KERNELS = {"FusedConv": fused_conv, "Conv": conv, "Pad": pad, "Resize": resize,
           "FromImage": from_image, "ToImage": to_image}  # fmt: skip
