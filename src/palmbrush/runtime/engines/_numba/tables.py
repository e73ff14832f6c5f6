"""Window geometry shared by the cpu and torch engines (NumPy only): index tables that apply
padding, nearest upsampling and cropping in one gather, the phase layout of strided
convolutions, and the 2x2 phase kernels of an upsample-by-2 3x3 convolution."""

from __future__ import annotations

import functools
import weakref

import numpy as np

from ...errors import Unsupported
from ...ops.schema_nn import nearest_factors


def table(n: int, up: int, before: int, after: int, mode: str, zeros=(0, 0)) -> np.ndarray:
    """For each coordinate of an axis of length n, upsampled (nearest) by `up`, padded by
    before/after in `mode`, then zero-padded by zeros[0]/zeros[1]: the stored coordinate it
    reads, or -1 for a zero. Read-only, made once per geometry (a frame's every run reads the
    same tables: 50 us of NumPy a convolution otherwise)."""
    key = (int(n), int(up), int(before), int(after), str(mode), tuple(int(z) for z in zeros))
    return _table(*key)


@functools.lru_cache(maxsize=256)
def _table(n: int, up: int, before: int, after: int, mode: str, zeros) -> np.ndarray:
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
    return _frozen(np.where(inside, np.clip(q, 0, length - 1) // up, -1).astype(np.int64))


def _frozen(array: np.ndarray) -> np.ndarray:
    """A read-only view of a read-only array: the shared cached copy cannot be made writable
    again through it."""
    array.flags.writeable = False
    return array.view()


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
    offset in that layout, so output column j of tap kx reads column offset[kx] + j.
    Read-only, made once per geometry."""
    key = (cols.tobytes(), int(stride), int(dilation), int(kw))
    return _phases(*key)


@functools.lru_cache(maxsize=256)
def _phases(raw: bytes, stride: int, dilation: int, kw: int):
    laid, offsets = _phase_layout(np.frombuffer(raw, np.int64), stride, dilation, kw)
    return _frozen(laid), _frozen(offsets)


def _phase_layout(cols: np.ndarray, stride: int, dilation: int, kw: int):
    if stride == 1:
        return cols.copy(), np.arange(kw, dtype=np.int64) * dilation
    part = -(-cols.size // stride)
    laid = np.full(part * stride, -1, np.int64)
    for phase in range(stride):
        chosen = cols[phase::stride]
        laid[phase * part : phase * part + chosen.size] = chosen
    reach = np.arange(kw, dtype=np.int64) * dilation
    return laid, (reach % stride) * part + reach // stride


def identity(t: np.ndarray, n: int) -> bool:
    return t.size == n and bool((t == np.arange(n)).all())


# Nearest upsampling by 2, then a 3x3 convolution with a 1-pixel border: each of the four
# output phases (row parity, column parity) reads only 2x2 distinct source pixels, so it is a
# 2x2 convolution of the source with summed weights: 4 multiply-adds per output instead of 9.
# Padding the upsampled image by 1 (reflect or edge) reads what edge-padding the source by 1
# does; zeros stay zeros.
MERGE = np.array([[[1, 0, 0], [0, 1, 1]], [[1, 1, 0], [0, 0, 1]]], np.float32)  # [phase, tap, k]
SOURCE_PAD = {"reflect": "edge", "edge": "edge", "constant": "constant"}


def phased(W, attrs) -> bool:
    """Whether a (Fused)Conv is an upsample-by-2 3x3 convolution that the phase form computes."""
    return (list(attrs.get("upsample") or []) == [2, 2] and W.shape[2:] == (3, 3)
            and list(attrs.get("pre_pads") or []) == [1, 1, 1, 1]
            and not any(attrs.get("pads") or [0]) and attrs.get("group", 1) == 1
            and list(attrs.get("strides") or [1, 1]) == [1, 1]
            and list(attrs.get("dilations") or [1, 1]) == [1, 1])  # fmt: skip


def source_tables(x_shape, mode: str):
    """Index tables that pad the source by 1 the way the phase kernels need."""
    source = SOURCE_PAD[mode]
    return table(x_shape[2], 1, 1, 1, source), table(x_shape[3], 1, 1, 1, source)


_MERGED: dict[int, tuple[weakref.ref, np.ndarray]] = {}  # id(W) -> (W, its phase kernels)


def merged(W: np.ndarray) -> np.ndarray:
    """[4, co, ci, 2, 2]: the 2x2 kernel of each output phase 2 * py + px (computed once per
    weight array, and forgotten with it)."""
    found = _MERGED.get(id(W))
    if found is None or found[0]() is not W:
        w = np.asarray(W, np.float64)
        kernels = np.stack([np.einsum("ak,oikl,bl->oiab", MERGE[py], w, MERGE[px])
                            for py in (0, 1) for px in (0, 1)])  # fmt: skip
        found = (weakref.ref(W), np.ascontiguousarray(kernels, np.float32))
        _MERGED[id(W)] = found
        weakref.finalize(W, _MERGED.pop, id(W), None)
    return found[1]


def merged_2x2(W) -> np.ndarray:
    """The four phase kernels stacked as one 2x2 convolution with 4 * co outputs:
    [4 co, ci, 2, 2], phase 2 py + px first."""
    kernels = merged(W)
    return kernels.reshape(4 * kernels.shape[1], *kernels.shape[2:])


def check_nearest(ctx) -> None:
    """Claim only nearest resizes by integer factors whose ONNX coordinates are floor(x / s):
    a gather through index tables."""
    if ctx.dtype(0) != np.float32 or ctx.rank(0) != 4:
        raise Unsupported("float32 4-D input only")
    if ctx.has(3):
        raise Unsupported("sizes instead of scales")
    factors = nearest_factors(ctx.attrs, ctx.const(2) if ctx.has(2) else None)
    if isinstance(factors, str):
        raise Unsupported(factors)
