"""One-pass array operations on the Numba kernels, shared by the cpu and torch engines.

Read-only inputs are passed as read-only views and outputs as writable arrays, always, so
Numba compiles each kernel once per layout (a read-only array is another type to it, and
another compile: 2-4 s each).
"""

from __future__ import annotations

import threading

import numpy as np

from ...layout import is_channels_last

NO_STATS = np.empty((0, 0))  # "no statistics wanted" for the conv kernels


def _k():
    from . import kernels

    return kernels


def ro(array) -> np.ndarray:
    """A read-only view (no copy)."""
    view = np.asarray(array).view()
    view.flags.writeable = False
    return view


NO_RESIDUAL_2D = ro(np.empty((0, 0), np.float32))
NO_RESIDUAL_3D = ro(np.empty((0, 0, 0), np.float32))


# ---- buffers ------------------------------------------------------------------------------
# Kernels write their result into the executor's planned arena (`out`), and their
# temporaries into a per-thread scratch pool, so a steady stream of frames allocates nothing
# (fresh pages cost more than the pass itself).

_SCRATCH = threading.local()


def scratch(tag: str, shape) -> np.ndarray:
    """A float32 temporary of `shape`, reused by every later call with the same tag."""
    buffers = _SCRATCH.__dict__.setdefault("pool", {})
    size = int(np.prod(shape))
    buffer = buffers.get(tag)
    if buffer is None or buffer.size < size:
        buffer = buffers[tag] = np.empty(size, np.float32)
    return buffer[:size].reshape(shape)


def target(out, shape, dtype=np.float32) -> np.ndarray:
    """The planned output buffer if the executor gave one (`out` holds one view per output,
    or None), else a new array."""
    given = out[0] if out else None
    if given is not None and given.shape == tuple(shape) and given.dtype == dtype:
        return given
    return np.empty(shape, dtype)


# ---- layouts ------------------------------------------------------------------------------


def gather(x, rows, cols, out=None) -> np.ndarray:
    """x [N, C, H, W] (any strides) read through index tables into a planar tensor (`out`,
    or a new one). The executor hands the cpu engine planar tensors (runtime/layout.py); a
    channels-last x from another caller is made planar first, in one streaming pass: 3x
    faster than gathering through its strides (64 channels, 320x240)."""
    x = np.asarray(x, np.float32)
    if is_channels_last(x):
        x = planar(x)
    shape = (x.shape[0], x.shape[1], rows.size, cols.size)
    out = np.empty(shape, np.float32) if out is None else out
    for n in range(x.shape[0]):
        _k().gather_planar(ro(x[n]), ro(rows), ro(cols), out[n])
    return out


def gather_hwc(x, rows, cols, tag: str | None = None) -> np.ndarray:
    """The same into a channels-last tensor (logical NCHW, memory NHWC), for oneDNN: a new
    one, or with `tag` the scratch buffer of that tag (for a temporary that is consumed before
    the next call: fresh pages of a large array cost more than the gather itself)."""
    view = nhwc(x)
    shape = (x.shape[0], rows.size, cols.size, x.shape[1])
    buffer = np.empty(shape, np.float32) if tag is None else scratch(tag, shape)
    for n in range(x.shape[0]):
        _k().gather_hwc(ro(view[n]), ro(rows), ro(cols), buffer[n])
    return buffer.transpose(0, 3, 1, 2)


def nhwc(x, tag: str = "layout-hwc") -> np.ndarray:
    """The [N, H, W, C] float32 view of a logical NCHW array (copied only if it is not
    channels-last in memory already: a planar one in one streaming pass, into scratch)."""
    x = np.asarray(x)
    view = x.transpose(0, 2, 3, 1)
    if view.dtype == np.float32 and view.flags.c_contiguous:
        return view
    if x.dtype == np.float32 and x.flags.c_contiguous:
        n, c, h, w = x.shape
        out = scratch(tag, (n, h, w, c))
        for i in range(n):
            _k().planar_to_hwc(ro(x[i]), out[i])
        return out
    return np.ascontiguousarray(view, dtype=np.float32)


def planar(x: np.ndarray) -> np.ndarray:
    """A channels-last array (layout.is_channels_last) as a planar one, into scratch."""
    return planar_into(x, scratch("layout-planar", x.shape))


def planar_into(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """A channels-last array as a planar one, into `out`: one streaming pass."""
    view = x.transpose(0, 2, 3, 1)
    for i in range(x.shape[0]):
        _k().hwc_to_planar(ro(view[i]), out[i])
    return out


# ---- convolution --------------------------------------------------------------------------


def conv(xp, w, b, row0, sy, dy, taps, out, sums=NO_STATS, squares=NO_STATS) -> None:
    """out [co, ho, wo] = the convolution of a gathered planar input xp [ci, hp, wp] with
    w [co, ci, kh, kw] (and bias b): output row oy reads input rows row0 + oy * sy + ky * dy,
    output column j of tap kx reads column taps[kx] + j. With sums/squares [co, ho], also each
    output row's sum and sum of squares, for instance norm, while the row is in cache."""
    from .codegen import conv_kernel, run_tiled

    co, ho, wo = out.shape
    block, walk = conv_shape(co, w.shape[2], w.shape[3], ci=xp.shape[0], wo=wo)
    kernel = conv_kernel(w.shape[2], w.shape[3], block, walk)
    tiled = walk.startswith("tile")  # the tiles store only what is in range: no spare rows
    spare = scratch("spare", (block, ho, wo)) if co % block and not tiled else _NO_SPARE
    args = (ro(xp), ro(w), ro(b), int(row0), int(sy), int(dy), ro(taps), out, sums, squares,
            spare)  # fmt: skip
    if tiled:
        run_tiled(kernel, args)
    else:
        kernel(*args)


_NO_SPARE = np.empty((1, 1, 1), np.float32)
_REGISTERS: list[int] = []
TILE_ROWS = 192  # input rows (channels x kernel rows) a register tile walks, at most


def conv_shape(co: int, kh: int, kw: int, registers: int | None = None, *, ci: int = 0,
               wo: int = 0):  # fmt: skip
    """(block, walk) of the generated kernel for a convolution.

    With 16 vector registers (AVX2) and rows at least a tile wide, register tiles
    (codegen._tile_source): three output channels of 24 columns for RGB heads, else four of
    16 columns. On a Zen 3, 2 threads, interleaved, GFLOP/s of the tiles vs the kernels
    below: 9x9 3 -> 32 at 640x480 176 vs 99, 9x9 32 -> 3 131 vs 94, 7x7 3 -> 12 172 vs 92,
    7x7 12 -> 3 142 vs 102, 5x5 3 -> 12 stride 2 151 vs 98, 3x3 32 -> 32 at 160x120 161 vs
    117, 3x3 8 -> 16 stride 2 121 vs 85, 2x2 12 -> 12 144 vs 91, 2x2 64 -> 32 111 vs 98. Past
    TILE_ROWS input rows (3x3 128 -> 128: 127 vs 137) a tile's inputs leave L1 and the passes
    below win.

    Else an RGB head three channels at once, else pairs, with the whole window in one pass
    when its weights fit in registers. With 16 registers windows 3 or more wide run four
    output channels a pass per kernel row: 3x3 at 160x120 16 -> 16 channels 114 vs 81
    GFLOP/s for the pairs, 8 -> 16 75 vs 47, 64 -> 64 74 vs 52; 7x7 at 640x480 3 -> 12 107
    vs 81; 9x9 3 -> 32 at 640x360 82 vs 85, 5x5 3 -> 8 and 16 -> 16 the same either way.
    AVX-512 machines keep the pairs and windows: the tiles have not been measured there.
    Numba releases whose optimization pipeline cannot be set per compile
    (codegen.can_tile) keep them too."""
    if registers is None:
        if not _REGISTERS:
            from . import vector_registers

            _REGISTERS.append(vector_registers())
        registers = _REGISTERS[0]
    from .codegen import can_tile

    if registers <= 16 and co >= 3 and ci * kh <= TILE_ROWS and can_tile():
        block, width = (3, 24) if co == 3 else (4, 16)
        if wo >= width:
            return block, f"tile{width}"
    if registers <= 16 and kw >= 3 and co >= 4:
        return 4, "rows"
    block = 3 if co == 3 else min(co, 2)
    return block, "window" if kh * kw * block <= 18 else "rows"


# ---- instance norm, activation, residual --------------------------------------------------


def gain_shift(sums, squares, count, scale, bias, norm, epsilon, channels):
    """Per-channel y * gain + shift equal to instance norm (or the identity)."""
    gain, shift = np.ones(channels, np.float32), np.zeros(channels, np.float32)
    if norm == "instance":
        scale, bias = ro(np.asarray(scale, np.float32)), ro(np.asarray(bias, np.float32))
        _k().norm_gain_shift(
            ro(sums), ro(squares), float(count), scale, bias, float(epsilon), gain, shift
        )
    return gain, shift


def finish_planar(y, gain, shift, activation: str, alpha, residual=NO_RESIDUAL_2D) -> None:
    """In place on a planar y [c, n]: act(y * gain + shift) (+ residual [c, n])."""
    k = _k()
    k.finish_planar(
        y, ro(gain), ro(shift), k.ACTIVATIONS[activation], np.float32(alpha), ro(residual)
    )


def finish_up2(z, gain, shift, activation: str, alpha, residual, out) -> None:
    """The phase planes z [4, c, h, w] interleaved into out [c, 2h, 2w] while normalizing."""
    k = _k()
    k.finish_up2(
        ro(z), ro(gain), ro(shift), k.ACTIVATIONS[activation], np.float32(alpha), ro(residual), out
    )


def hwc_target(out, shape) -> np.ndarray:
    """A channels-last array of logical NCHW `shape` in the memory of the planned output buffer
    (`out` as target() takes it; the arena does not care how its bytes are laid out), or new."""
    given = target(out, shape)
    n, c, h, w = shape
    return given.reshape(-1).reshape(n, h, w, c).transpose(0, 3, 1, 2)


def finish_hwc(y, scale, bias, residual, *, norm, epsilon, activation, alpha, into=None):
    """Norm, activation and residual on a channels-last y (logical NCHW), written into the
    channels-last `into` (the same shape) or in place; returns the result."""
    k = _k()
    view = y.transpose(0, 2, 3, 1)
    dest = view if into is None else into.transpose(0, 2, 3, 1)
    _, height, width, channels = view.shape
    res = None if residual is None else np.broadcast_to(nhwc(residual, "residual"), view.shape)
    for n in range(view.shape[0]):
        sums = squares = None
        if norm == "instance":
            sums, squares = np.empty((channels, height)), np.empty((channels, height))
            k.stats_hwc(ro(view[n]), sums, squares)
        elif activation == "none" and residual is None and into is None:
            continue
        gain, shift = gain_shift(
            sums, squares, height * width, scale, bias, norm, epsilon, channels
        )
        extra = NO_RESIDUAL_3D if res is None else ro(res[n])
        k.finish_hwc(  # y read-only even in place: one compiled variant
            ro(view[n]), ro(gain), ro(shift), k.ACTIVATIONS[activation], np.float32(alpha), extra,
            dest[n],
        )  # fmt: skip
    return y if into is None else into


def finish_up2_hwc(z, scale, bias, residual, *, norm, epsilon, activation, alpha, out=None):
    """The output of an upsample-by-2 3x3 convolution, from the 2x2 convolution z [N, 4C,
    h + 1, w + 1] (channels-last) of the edge-padded source with tables.merged_2x2's phase
    kernels: norm, activation and residual applied while the phases are interleaved; into the
    planned buffer `out` (as target() takes it) when given."""
    k = _k()
    view = z.transpose(0, 2, 3, 1)
    n_images, h, w, channels = view.shape
    h, w, channels = h - 1, w - 1, channels // 4
    buffer = hwc_target(out, (n_images, channels, 2 * h, 2 * w)).transpose(0, 2, 3, 1)
    res = None if residual is None else np.broadcast_to(nhwc(residual, "residual"), buffer.shape)
    for n in range(n_images):
        sums = squares = None
        if norm == "instance":
            sums, squares = np.empty((channels, 2 * h)), np.empty((channels, 2 * h))
            k.stats_up2_hwc(ro(view[n]), sums, squares)
        gain, shift = gain_shift(sums, squares, 4 * h * w, scale, bias, norm, epsilon, channels)
        extra = NO_RESIDUAL_3D if res is None else ro(res[n])
        k.finish_up2_hwc(
            ro(view[n]),
            ro(gain),
            ro(shift),
            k.ACTIVATIONS[activation],
            np.float32(alpha),
            extra,
            buffer[n],
        )
    return buffer.transpose(0, 3, 1, 2)


# ---- frames and resampling ----------------------------------------------------------------


def from_image(frame, scale, out) -> None:
    """A uint8 HWC frame into a planar float tensor out [C, H, W], divided by scale."""
    _k().from_image(ro(frame), np.float32(scale), out)


def to_image(x, scale, low, high, out) -> None:
    """A float tensor [C, H, W] (any strides) into a uint8 HWC frame, scaled, rounded half
    to even and clipped to [low, high]."""
    _k().to_image(ro(x), np.float32(scale), np.float32(low), np.float32(high), out)


def from_yuv(y, u, v, matrix, bias, scale, out) -> None:
    """yuv420p planes y [H, W], u and v [H/2, W/2] into a planar RGB tensor out [3, H, W]."""
    f32 = np.float32
    _k().from_yuv(ro(y), ro(u), ro(v), ro(matrix.astype(f32)), ro(bias.astype(f32)), f32(scale),
                  out)  # fmt: skip


def to_yuv(x, scale, low, high, luma, luma_bias, chroma, chroma_bias, y, u, v) -> None:
    """A float tensor [3, H, W] (any strides) into yuv420p planes y, u, v."""
    f32 = np.float32
    _k().to_yuv(ro(x), f32(scale), f32(low), f32(high), ro(luma.astype(f32)), f32(luma_bias),
                ro(chroma.astype(f32)), ro(chroma_bias.astype(f32)), y, u, v)  # fmt: skip


def resize2d(x, rows, row_weights, cols, col_weights, out) -> None:
    """Separable resampling of the middle axes of x [outer, h, w, inner] into out."""
    _k().resize2d(ro(x), ro(rows), ro(row_weights), ro(cols), ro(col_weights), out)
