"""Numba kernels of the cpu engine, parallel over output rows; compiled once, cached on disk.

Two layouts. The cpu engine's own tensors are planar (C, H, W): its convolutions walk one
output row of two output channels at a time, so the inner loop is a long, contiguous,
vectorized multiply-add over the row with the weights of a whole kernel row in registers
(about 100 GFLOP/s on 2 cores for 3x3 convs, 2-4x a direct channels-last loop). The torch
engine's tensors are channels-last (H, W, C), what oneDNN wants; `gather_hwc` and `finish_hwc`
serve it. Indices are cast to unsigned where it matters: Numba's negative-index wraparound
otherwise stops LLVM from vectorizing contiguous loads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

U = np.uint64
NONE, RELU, LEAKY_RELU, SIGMOID = 0, 1, 2, 3  # activation codes shared with engines/cpu.py


# ---- gathers: padding, nearest upsampling and cropping through index tables --------------


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def gather_planar(x, rows, cols, out):
    """out[c, i, j] = x[c, rows[i], cols[j]] (zero where an index is -1); x any strides."""
    channels, height, width = out.shape
    for task in prange(channels * height):
        c, i = task // height, task % height
        r = rows[i]
        for j in range(width):
            k = cols[j]
            out[c, i, j] = 0.0 if r < 0 or k < 0 else x[c, r, k]


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def gather_hwc(x, rows, cols, out):
    """The same on channels-last arrays: out[i, j, :] = x[rows[i], cols[j], :]."""
    height, width, channels = out.shape
    for i in prange(height):
        r = rows[i]
        for j in range(width):
            k = cols[j]
            for c in range(channels):
                out[i, j, c] = 0.0 if r < 0 or k < 0 else x[r, k, c]


# ---- convolution ---------------------------------------------------------------------------


@njit(fastmath=True, cache=True, inline="always")
def _pair3x3(r0, r1, x, rows, taps, w, o0, o1, i, n):
    """r0 += the whole 3x3 window of input channel i times kernel (o0, i); r1 for o1. Nine
    loads feed eighteen multiply-adds per output column: the densest inner loop we have."""
    a00, a01, a02 = w[o0, i, 0, 0], w[o0, i, 0, 1], w[o0, i, 0, 2]
    a10, a11, a12 = w[o0, i, 1, 0], w[o0, i, 1, 1], w[o0, i, 1, 2]
    a20, a21, a22 = w[o0, i, 2, 0], w[o0, i, 2, 1], w[o0, i, 2, 2]
    b00, b01, b02 = w[o1, i, 0, 0], w[o1, i, 0, 1], w[o1, i, 0, 2]
    b10, b11, b12 = w[o1, i, 1, 0], w[o1, i, 1, 1], w[o1, i, 1, 2]
    b20, b21, b22 = w[o1, i, 2, 0], w[o1, i, 2, 1], w[o1, i, 2, 2]
    p0, p1, p2 = U(rows[0] + taps[0]), U(rows[0] + taps[1]), U(rows[0] + taps[2])
    q0, q1, q2 = U(rows[1] + taps[0]), U(rows[1] + taps[1]), U(rows[1] + taps[2])
    s0, s1, s2 = U(rows[2] + taps[0]), U(rows[2] + taps[1]), U(rows[2] + taps[2])
    for j in range(n):
        u = U(j)
        x00, x01, x02 = x[p0 + u], x[p1 + u], x[p2 + u]
        x10, x11, x12 = x[q0 + u], x[q1 + u], x[q2 + u]
        x20, x21, x22 = x[s0 + u], x[s1 + u], x[s2 + u]
        r0[u] += (a00 * x00 + a01 * x01 + a02 * x02 + a10 * x10 + a11 * x11 + a12 * x12
                  + a20 * x20 + a21 * x21 + a22 * x22)  # fmt: skip
        r1[u] += (b00 * x00 + b01 * x01 + b02 * x02 + b10 * x10 + b11 * x11 + b12 * x12
                  + b20 * x20 + b21 * x21 + b22 * x22)  # fmt: skip


@njit(fastmath=True, cache=True, inline="always")
def _pair2x2(r0, r1, x, rows, taps, w, o0, o1, i, n):
    """As _pair3x3 for a 2x2 window (the phases of an upsample-by-2 convolution)."""
    a00, a01, a10, a11 = w[o0, i, 0, 0], w[o0, i, 0, 1], w[o0, i, 1, 0], w[o0, i, 1, 1]
    b00, b01, b10, b11 = w[o1, i, 0, 0], w[o1, i, 0, 1], w[o1, i, 1, 0], w[o1, i, 1, 1]
    p0, p1 = U(rows[0] + taps[0]), U(rows[0] + taps[1])
    q0, q1 = U(rows[1] + taps[0]), U(rows[1] + taps[1])
    for j in range(n):
        u = U(j)
        x00, x01, x10, x11 = x[p0 + u], x[p1 + u], x[q0 + u], x[q1 + u]
        r0[u] += a00 * x00 + a01 * x01 + a10 * x10 + a11 * x11
        r1[u] += b00 * x00 + b01 * x01 + b10 * x10 + b11 * x11


@njit(fastmath=True, cache=True, inline="always")
def _triple(r0, r1, r2, x, base, taps, w, o, i, ky, kx, count, n):
    """Three output channels o, o+1, o+2 (an RGB head) += `count` (1-3) taps from kx on."""
    if count == 3:
        a0, a1, a2 = w[o, i, ky, kx], w[o, i, ky, kx + 1], w[o, i, ky, kx + 2]
        b0, b1, b2 = w[o + 1, i, ky, kx], w[o + 1, i, ky, kx + 1], w[o + 1, i, ky, kx + 2]
        c0, c1, c2 = w[o + 2, i, ky, kx], w[o + 2, i, ky, kx + 1], w[o + 2, i, ky, kx + 2]
        t0, t1, t2 = U(base + taps[kx]), U(base + taps[kx + 1]), U(base + taps[kx + 2])
        for j in range(n):
            u = U(j)
            x0, x1, x2 = x[t0 + u], x[t1 + u], x[t2 + u]
            r0[u] += a0 * x0 + a1 * x1 + a2 * x2
            r1[u] += b0 * x0 + b1 * x1 + b2 * x2
            r2[u] += c0 * x0 + c1 * x1 + c2 * x2
    elif count == 2:
        a0, a1 = w[o, i, ky, kx], w[o, i, ky, kx + 1]
        b0, b1 = w[o + 1, i, ky, kx], w[o + 1, i, ky, kx + 1]
        c0, c1 = w[o + 2, i, ky, kx], w[o + 2, i, ky, kx + 1]
        t0, t1 = U(base + taps[kx]), U(base + taps[kx + 1])
        for j in range(n):
            u = U(j)
            x0, x1 = x[t0 + u], x[t1 + u]
            r0[u] += a0 * x0 + a1 * x1
            r1[u] += b0 * x0 + b1 * x1
            r2[u] += c0 * x0 + c1 * x1
    else:
        a0, b0, c0 = w[o, i, ky, kx], w[o + 1, i, ky, kx], w[o + 2, i, ky, kx]
        t0 = U(base + taps[kx])
        for j in range(n):
            u = U(j)
            x0 = x[t0 + u]
            r0[u] += a0 * x0
            r1[u] += b0 * x0
            r2[u] += c0 * x0


@njit(fastmath=True, cache=True, inline="always")
def _pair2(r0, r1, x, base, taps, w, o0, o1, i, ky, n):
    """r0 += input row * kernel row (o0, i, ky), r1 likewise for o1: 2 taps."""
    a0, a1, b0, b1 = w[o0, i, ky, 0], w[o0, i, ky, 1], w[o1, i, ky, 0], w[o1, i, ky, 1]
    t0, t1 = U(base + taps[0]), U(base + taps[1])
    for j in range(n):
        x0, x1 = x[t0 + U(j)], x[t1 + U(j)]
        r0[U(j)] += a0 * x0 + a1 * x1
        r1[U(j)] += b0 * x0 + b1 * x1


@njit(fastmath=True, cache=True, inline="always")
def _pair3(r0, r1, x, base, taps, w, o0, o1, i, ky, n):
    """r0 += input row * kernel row (o0, i, ky), r1 likewise for o1: 3 taps."""
    a0, a1, a2 = w[o0, i, ky, 0], w[o0, i, ky, 1], w[o0, i, ky, 2]
    b0, b1, b2 = w[o1, i, ky, 0], w[o1, i, ky, 1], w[o1, i, ky, 2]
    t0, t1, t2 = U(base + taps[0]), U(base + taps[1]), U(base + taps[2])
    for j in range(n):
        x0, x1, x2 = x[t0 + U(j)], x[t1 + U(j)], x[t2 + U(j)]
        r0[U(j)] += a0 * x0 + a1 * x1 + a2 * x2
        r1[U(j)] += b0 * x0 + b1 * x1 + b2 * x2


@njit(fastmath=True, cache=True, inline="always")
def _pair5(r0, r1, x, base, taps, w, o0, o1, i, ky, n):
    """As _pair3, 5 taps."""
    a0, a1, a2, a3, a4 = w[o0, i, ky, 0], w[o0, i, ky, 1], w[o0, i, ky, 2], w[o0, i, ky, 3], \
        w[o0, i, ky, 4]  # fmt: skip
    b0, b1, b2, b3, b4 = w[o1, i, ky, 0], w[o1, i, ky, 1], w[o1, i, ky, 2], w[o1, i, ky, 3], \
        w[o1, i, ky, 4]  # fmt: skip
    t0, t1, t2 = U(base + taps[0]), U(base + taps[1]), U(base + taps[2])
    t3, t4 = U(base + taps[3]), U(base + taps[4])
    for j in range(n):
        x0, x1, x2, x3, x4 = x[t0 + U(j)], x[t1 + U(j)], x[t2 + U(j)], x[t3 + U(j)], \
            x[t4 + U(j)]  # fmt: skip
        r0[U(j)] += a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3 + a4 * x4
        r1[U(j)] += b0 * x0 + b1 * x1 + b2 * x2 + b3 * x3 + b4 * x4


@njit(fastmath=True, cache=True, inline="always")
def _one3(r, x, base, taps, w, o, i, ky, n):
    """r += input row * kernel row (o, i, ky): 3 taps, one output channel."""
    a0, a1, a2 = w[o, i, ky, 0], w[o, i, ky, 1], w[o, i, ky, 2]
    t0, t1, t2 = U(base + taps[0]), U(base + taps[1]), U(base + taps[2])
    for j in range(n):
        r[U(j)] += a0 * x[t0 + U(j)] + a1 * x[t1 + U(j)] + a2 * x[t2 + U(j)]


@njit(fastmath=True, cache=True, inline="always")
def _one5(r, x, base, taps, w, o, i, ky, n):
    """As _one3, 5 taps."""
    a0, a1, a2, a3, a4 = w[o, i, ky, 0], w[o, i, ky, 1], w[o, i, ky, 2], w[o, i, ky, 3], \
        w[o, i, ky, 4]  # fmt: skip
    t0, t1, t2 = U(base + taps[0]), U(base + taps[1]), U(base + taps[2])
    t3, t4 = U(base + taps[3]), U(base + taps[4])
    for j in range(n):
        r[U(j)] += a0 * x[t0 + U(j)] + a1 * x[t1 + U(j)] + a2 * x[t2 + U(j)] + \
            a3 * x[t3 + U(j)] + a4 * x[t4 + U(j)]  # fmt: skip


@njit(fastmath=True, cache=True, inline="always")
def _pair7(r0, r1, x, base, taps, w, o0, o1, i, ky, n):
    """2 output channels += input row * kernel rows (o, i, ky): 7 taps."""
    a0, a1, a2, a3, a4, a5, a6 = (
        w[o0, i, ky, 0],
        w[o0, i, ky, 1],
        w[o0, i, ky, 2],
        w[o0, i, ky, 3],
        w[o0, i, ky, 4],
        w[o0, i, ky, 5],
        w[o0, i, ky, 6],
    )
    b0, b1, b2, b3, b4, b5, b6 = (
        w[o1, i, ky, 0],
        w[o1, i, ky, 1],
        w[o1, i, ky, 2],
        w[o1, i, ky, 3],
        w[o1, i, ky, 4],
        w[o1, i, ky, 5],
        w[o1, i, ky, 6],
    )
    t0, t1, t2, t3, t4, t5, t6 = (
        U(base + taps[0]),
        U(base + taps[1]),
        U(base + taps[2]),
        U(base + taps[3]),
        U(base + taps[4]),
        U(base + taps[5]),
        U(base + taps[6]),
    )
    for j in range(n):
        u = U(j)
        x0, x1, x2, x3, x4, x5, x6 = (
            x[t0 + u],
            x[t1 + u],
            x[t2 + u],
            x[t3 + u],
            x[t4 + u],
            x[t5 + u],
            x[t6 + u],
        )
        r0[u] += a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3 + a4 * x4 + a5 * x5 + a6 * x6
        r1[u] += b0 * x0 + b1 * x1 + b2 * x2 + b3 * x3 + b4 * x4 + b5 * x5 + b6 * x6


@njit(fastmath=True, cache=True, inline="always")
def _pair9(r0, r1, x, base, taps, w, o0, o1, i, ky, n):
    """2 output channels += input row * kernel rows (o, i, ky): 9 taps."""
    a0, a1, a2, a3, a4, a5, a6, a7, a8 = (
        w[o0, i, ky, 0],
        w[o0, i, ky, 1],
        w[o0, i, ky, 2],
        w[o0, i, ky, 3],
        w[o0, i, ky, 4],
        w[o0, i, ky, 5],
        w[o0, i, ky, 6],
        w[o0, i, ky, 7],
        w[o0, i, ky, 8],
    )
    b0, b1, b2, b3, b4, b5, b6, b7, b8 = (
        w[o1, i, ky, 0],
        w[o1, i, ky, 1],
        w[o1, i, ky, 2],
        w[o1, i, ky, 3],
        w[o1, i, ky, 4],
        w[o1, i, ky, 5],
        w[o1, i, ky, 6],
        w[o1, i, ky, 7],
        w[o1, i, ky, 8],
    )
    t0, t1, t2, t3, t4, t5, t6, t7, t8 = (
        U(base + taps[0]),
        U(base + taps[1]),
        U(base + taps[2]),
        U(base + taps[3]),
        U(base + taps[4]),
        U(base + taps[5]),
        U(base + taps[6]),
        U(base + taps[7]),
        U(base + taps[8]),
    )
    for j in range(n):
        u = U(j)
        x0, x1, x2, x3, x4, x5, x6, x7, x8 = (
            x[t0 + u],
            x[t1 + u],
            x[t2 + u],
            x[t3 + u],
            x[t4 + u],
            x[t5 + u],
            x[t6 + u],
            x[t7 + u],
            x[t8 + u],
        )
        r0[u] += (
            a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3 + a4 * x4 + a5 * x5 + a6 * x6 + a7 * x7 + a8 * x8
        )
        r1[u] += (
            b0 * x0 + b1 * x1 + b2 * x2 + b3 * x3 + b4 * x4 + b5 * x5 + b6 * x6 + b7 * x7 + b8 * x8
        )


@njit(fastmath=True, cache=True, inline="always")
def _triple5(r0, r1, r2, x, base, taps, w, o0, o1, o2, i, ky, n):
    """3 output channels += input row * kernel rows (o, i, ky): 5 taps."""
    a0, a1, a2, a3, a4 = (
        w[o0, i, ky, 0],
        w[o0, i, ky, 1],
        w[o0, i, ky, 2],
        w[o0, i, ky, 3],
        w[o0, i, ky, 4],
    )
    b0, b1, b2, b3, b4 = (
        w[o1, i, ky, 0],
        w[o1, i, ky, 1],
        w[o1, i, ky, 2],
        w[o1, i, ky, 3],
        w[o1, i, ky, 4],
    )
    c0, c1, c2, c3, c4 = (
        w[o2, i, ky, 0],
        w[o2, i, ky, 1],
        w[o2, i, ky, 2],
        w[o2, i, ky, 3],
        w[o2, i, ky, 4],
    )
    t0, t1, t2, t3, t4 = (
        U(base + taps[0]),
        U(base + taps[1]),
        U(base + taps[2]),
        U(base + taps[3]),
        U(base + taps[4]),
    )
    for j in range(n):
        u = U(j)
        x0, x1, x2, x3, x4 = x[t0 + u], x[t1 + u], x[t2 + u], x[t3 + u], x[t4 + u]
        r0[u] += a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3 + a4 * x4
        r1[u] += b0 * x0 + b1 * x1 + b2 * x2 + b3 * x3 + b4 * x4
        r2[u] += c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3 + c4 * x4


@njit(fastmath=True, cache=True, inline="always")
def _triple7(r0, r1, r2, x, base, taps, w, o0, o1, o2, i, ky, n):
    """3 output channels += input row * kernel rows (o, i, ky): 7 taps."""
    a0, a1, a2, a3, a4, a5, a6 = (
        w[o0, i, ky, 0],
        w[o0, i, ky, 1],
        w[o0, i, ky, 2],
        w[o0, i, ky, 3],
        w[o0, i, ky, 4],
        w[o0, i, ky, 5],
        w[o0, i, ky, 6],
    )
    b0, b1, b2, b3, b4, b5, b6 = (
        w[o1, i, ky, 0],
        w[o1, i, ky, 1],
        w[o1, i, ky, 2],
        w[o1, i, ky, 3],
        w[o1, i, ky, 4],
        w[o1, i, ky, 5],
        w[o1, i, ky, 6],
    )
    c0, c1, c2, c3, c4, c5, c6 = (
        w[o2, i, ky, 0],
        w[o2, i, ky, 1],
        w[o2, i, ky, 2],
        w[o2, i, ky, 3],
        w[o2, i, ky, 4],
        w[o2, i, ky, 5],
        w[o2, i, ky, 6],
    )
    t0, t1, t2, t3, t4, t5, t6 = (
        U(base + taps[0]),
        U(base + taps[1]),
        U(base + taps[2]),
        U(base + taps[3]),
        U(base + taps[4]),
        U(base + taps[5]),
        U(base + taps[6]),
    )
    for j in range(n):
        u = U(j)
        x0, x1, x2, x3, x4, x5, x6 = (
            x[t0 + u],
            x[t1 + u],
            x[t2 + u],
            x[t3 + u],
            x[t4 + u],
            x[t5 + u],
            x[t6 + u],
        )
        r0[u] += a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3 + a4 * x4 + a5 * x5 + a6 * x6
        r1[u] += b0 * x0 + b1 * x1 + b2 * x2 + b3 * x3 + b4 * x4 + b5 * x5 + b6 * x6
        r2[u] += c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3 + c4 * x4 + c5 * x5 + c6 * x6


@njit(fastmath=True, cache=True, inline="always")
def _triple9(r0, r1, r2, x, base, taps, w, o0, o1, o2, i, ky, n):
    """3 output channels += input row * kernel rows (o, i, ky): 9 taps."""
    a0, a1, a2, a3, a4, a5, a6, a7, a8 = (
        w[o0, i, ky, 0],
        w[o0, i, ky, 1],
        w[o0, i, ky, 2],
        w[o0, i, ky, 3],
        w[o0, i, ky, 4],
        w[o0, i, ky, 5],
        w[o0, i, ky, 6],
        w[o0, i, ky, 7],
        w[o0, i, ky, 8],
    )
    b0, b1, b2, b3, b4, b5, b6, b7, b8 = (
        w[o1, i, ky, 0],
        w[o1, i, ky, 1],
        w[o1, i, ky, 2],
        w[o1, i, ky, 3],
        w[o1, i, ky, 4],
        w[o1, i, ky, 5],
        w[o1, i, ky, 6],
        w[o1, i, ky, 7],
        w[o1, i, ky, 8],
    )
    c0, c1, c2, c3, c4, c5, c6, c7, c8 = (
        w[o2, i, ky, 0],
        w[o2, i, ky, 1],
        w[o2, i, ky, 2],
        w[o2, i, ky, 3],
        w[o2, i, ky, 4],
        w[o2, i, ky, 5],
        w[o2, i, ky, 6],
        w[o2, i, ky, 7],
        w[o2, i, ky, 8],
    )
    t0, t1, t2, t3, t4, t5, t6, t7, t8 = (
        U(base + taps[0]),
        U(base + taps[1]),
        U(base + taps[2]),
        U(base + taps[3]),
        U(base + taps[4]),
        U(base + taps[5]),
        U(base + taps[6]),
        U(base + taps[7]),
        U(base + taps[8]),
    )
    for j in range(n):
        u = U(j)
        x0, x1, x2, x3, x4, x5, x6, x7, x8 = (
            x[t0 + u],
            x[t1 + u],
            x[t2 + u],
            x[t3 + u],
            x[t4 + u],
            x[t5 + u],
            x[t6 + u],
            x[t7 + u],
            x[t8 + u],
        )
        r0[u] += (
            a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3 + a4 * x4 + a5 * x5 + a6 * x6 + a7 * x7 + a8 * x8
        )
        r1[u] += (
            b0 * x0 + b1 * x1 + b2 * x2 + b3 * x3 + b4 * x4 + b5 * x5 + b6 * x6 + b7 * x7 + b8 * x8
        )
        r2[u] += (
            c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3 + c4 * x4 + c5 * x5 + c6 * x6 + c7 * x7 + c8 * x8
        )


@njit(fastmath=True, cache=True, inline="always")
def _pair_taps(r0, r1, x, base, taps, w, o0, o1, i, ky, n):
    """r0 += input row * kernel row (o0, i, ky), r1 likewise for o1: any number of taps."""
    for kx in range(taps.size):
        a, b = w[o0, i, ky, kx], w[o1, i, ky, kx]
        start = U(base + taps[kx])
        for j in range(n):
            v = x[start + U(j)]
            r0[U(j)] += a * v
            r1[U(j)] += b * v


@njit(fastmath=True, cache=True, inline="always")
def _taps(r, x, base, taps, w, o, i, ky, n):
    """r += input row * kernel row (o, i, ky): any number of taps."""
    for kx in range(taps.size):
        wv = w[o, i, ky, kx]
        start = U(base + taps[kx])
        for j in range(n):
            r[U(j)] += wv * x[start + U(j)]


@njit(fastmath=True, cache=True, inline="always")
def _row_stats(r, n):
    total, square = 0.0, 0.0
    for j in range(n):
        v = np.float64(r[j])
        total += v
        square += v * v
    return total, square


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def conv(xp, w, b, row0, sy, dy, taps, out, sums, squares):
    """Convolution of a padded planar input xp [ci, hp, wp] with w [co, ci, kh, kw] into
    out [co, ho, wo]; output row oy reads input rows row0 + oy * sy + ky * dy, and output
    column j of tap kx reads input column taps[kx] + j: the gather
    laid strided inputs out phase by phase, so every inner loop is contiguous. With
    sums/squares of shape [co, ho] (not [0, 0]), also each output row's sum and sum of
    squares (float64), for instance norm, while the row is still in cache."""
    co, ho, wo = out.shape
    ci, hp, wp = xp.shape
    kh, kw = w.shape[2], w.shape[3]
    flat = xp.reshape(-1)
    if co == 3:  # the RGB head of every style network: all three channels at once
        _conv_rgb(flat, w, b, hp, wp, row0, sy, dy, taps, out, sums, squares)
        return
    pairs = (co + 1) // 2
    for task in prange(pairs * ho):  # row-major: each thread gets whole rows, all channels
        oy, p = task // pairs, task % pairs
        o0 = 2 * p
        o1 = o0 + 1 if o0 + 1 < co else o0  # an odd last channel is done alone
        r0, r1 = out[o0, oy], out[o1, oy]
        for j in range(wo):
            r0[j] = b[o0]
            r1[j] = b[o1]
        rows = np.empty(kh, np.int64)
        for i in range(ci):
            for ky in range(kh):
                rows[ky] = (i * hp + row0 + oy * sy + ky * dy) * wp
            if o1 != o0 and kh == 3 and kw == 3:
                _pair3x3(r0, r1, flat, rows, taps, w, o0, o1, i, wo)
                continue
            if o1 != o0 and kh == 2 and kw == 2:
                _pair2x2(r0, r1, flat, rows, taps, w, o0, o1, i, wo)
                continue
            for ky in range(kh):
                base = rows[ky]
                if o1 != o0 and kw == 2:
                    _pair2(r0, r1, flat, base, taps, w, o0, o1, i, ky, wo)
                elif o1 != o0 and kw == 3:
                    _pair3(r0, r1, flat, base, taps, w, o0, o1, i, ky, wo)
                elif o1 != o0 and kw == 5:
                    _pair5(r0, r1, flat, base, taps, w, o0, o1, i, ky, wo)
                elif o1 != o0 and kw == 7:
                    _pair7(r0, r1, flat, base, taps, w, o0, o1, i, ky, wo)
                elif o1 != o0 and kw == 9:
                    _pair9(r0, r1, flat, base, taps, w, o0, o1, i, ky, wo)
                elif o1 != o0:
                    _pair_taps(r0, r1, flat, base, taps, w, o0, o1, i, ky, wo)
                elif kw == 3:
                    _one3(r0, flat, base, taps, w, o0, i, ky, wo)
                elif kw == 5:
                    _one5(r0, flat, base, taps, w, o0, i, ky, wo)
                else:
                    _taps(r0, flat, base, taps, w, o0, i, ky, wo)
        if sums.shape[0] > 0:
            sums[o0, oy], squares[o0, oy] = _row_stats(r0, wo)
            sums[o1, oy], squares[o1, oy] = _row_stats(r1, wo)


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def _conv_rgb(flat, w, b, hp, wp, row0, sy, dy, taps, out, sums, squares):
    """conv() for exactly three output channels."""
    _, ho, wo = out.shape
    ci, kh, kw = w.shape[1], w.shape[2], w.shape[3]
    for oy in prange(ho):
        r0, r1, r2 = out[0, oy], out[1, oy], out[2, oy]
        for j in range(wo):
            r0[j], r1[j], r2[j] = b[0], b[1], b[2]
        for i in range(ci):
            for ky in range(kh):
                base = (i * hp + row0 + oy * sy + ky * dy) * wp
                if kw == 5:
                    _triple5(r0, r1, r2, flat, base, taps, w, 0, 1, 2, i, ky, wo)
                elif kw == 7:
                    _triple7(r0, r1, r2, flat, base, taps, w, 0, 1, 2, i, ky, wo)
                elif kw == 9:
                    _triple9(r0, r1, r2, flat, base, taps, w, 0, 1, 2, i, ky, wo)
                else:
                    for kx in range(0, kw, 3):
                        _triple(r0, r1, r2, flat, base, taps, w, 0, i, ky, kx, min(3, kw - kx),
                                wo)  # fmt: skip
        if sums.shape[0] > 0:
            for o in range(3):
                sums[o, oy], squares[o, oy] = _row_stats(out[o, oy], wo)


# ---- after the convolution: instance norm, activation, residual ----------------------------


@njit(fastmath=True, cache=True, inline="always")
def _act(v, activation, alpha):
    if activation == 1:
        return max(v, np.float32(0.0))
    if activation == 2:
        return v if v >= 0 else v * alpha
    if activation == 3:
        return np.float32(1.0) / (np.float32(1.0) + np.exp(-v))
    return v


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def finish_planar(y, gain, shift, activation, alpha, residual):
    """In place on y [c, n]: y = act(y * gain[c] + shift[c]) (+ residual[c] if given)."""
    channels, n = y.shape
    add = residual.shape[0] > 0
    chunk = 4096
    pieces = (n + chunk - 1) // chunk
    for task in prange(channels * pieces):
        c, start = task // pieces, (task % pieces) * chunk
        g, s = gain[c], shift[c]
        for j in range(start, min(start + chunk, n)):
            v = _act(y[c, j] * g + s, activation, alpha)
            y[c, j] = v + residual[c, j] if add else v


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def finish_up2(z, gain, shift, activation, alpha, residual, out):
    """out[c, 2m + py, 2n + px] = act(z[2 py + px, c, m, n] * gain[c] + shift[c])
    (+ residual[c, 2m + py, 2n + px]): the four phase planes of an upsample-by-2 convolution,
    interleaved into the output while normalizing."""
    _, channels, height, width = z.shape
    add = residual.shape[0] > 0
    for task in prange(channels * 2 * height):
        c, row = task // (2 * height), task % (2 * height)
        m, py = row // 2, row % 2
        g, s = gain[c], shift[c]
        for n in range(width):
            for px in range(2):
                v = _act(z[2 * py + px, c, m, n] * g + s, activation, alpha)
                out[c, row, 2 * n + px] = v + residual[c, row, 2 * n + px] if add else v


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def stats_up2_hwc(z, sums, squares):
    """Row statistics of the output of an upsample-by-2 convolution computed as one 2x2
    convolution with 4 * c channels over the padded source: z [h + 1, w + 1, 4 * c]
    (channels-last); output (2m + py, 2n + px, k) is z[m + py, n + px, (2 py + px) c + k].
    sums/squares are [c, 2h]."""
    channels, height, width = sums.shape[0], z.shape[0] - 1, z.shape[1] - 1
    for row in prange(2 * height):
        m, py = row // 2, row % 2
        for k in range(channels):
            sums[k, row] = 0.0
            squares[k, row] = 0.0
        for n in range(width):
            for px in range(2):
                first = (2 * py + px) * channels
                for k in range(channels):
                    v = np.float64(z[m + py, n + px, first + k])
                    sums[k, row] += v
                    squares[k, row] += v * v


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def finish_up2_hwc(z, gain, shift, activation, alpha, residual, out):
    """finish_hwc for the z of stats_up2_hwc, interleaving the phases into out [2h, 2w, c]."""
    height, width, channels = out.shape
    add = residual.shape[0] > 0
    for row in prange(height):
        m, py = row // 2, row % 2
        for col in range(width):
            n, px = col // 2, col % 2
            first = (2 * py + px) * channels
            for k in range(channels):
                v = _act(z[m + py, n + px, first + k] * gain[k] + shift[k], activation, alpha)
                out[row, col, k] = v + residual[row, col, k] if add else v


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def stats_hwc(y, sums, squares):
    """Per row i and channel c of a channels-last y [h, w, c]: sum and sum of squares."""
    height, width, channels = y.shape
    for i in prange(height):
        for c in range(channels):
            sums[c, i] = 0.0
            squares[c, i] = 0.0
        for j in range(width):
            for c in range(channels):
                v = np.float64(y[i, j, c])
                sums[c, i] += v
                squares[c, i] += v * v


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def finish_hwc(y, gain, shift, activation, alpha, residual):
    """finish_planar on a channels-last y [h, w, c] (residual any strides, or [0, 0, 0])."""
    height, width, channels = y.shape
    add = residual.shape[0] > 0
    for i in prange(height):
        for j in range(width):
            for c in range(channels):
                v = _act(y[i, j, c] * gain[c] + shift[c], activation, alpha)
                y[i, j, c] = v + residual[i, j, c] if add else v


# ---- frames in and out ----------------------------------------------------------------------


@njit(parallel=True, fastmath=False, cache=True, nogil=True)
def from_image(frame, scale, out):
    """out[c, i, j] = float32(frame[i, j, c]) / scale: a uint8 HWC frame to a planar tensor."""
    height, width, channels = frame.shape
    for i in prange(height):
        for j in range(width):
            for c in range(channels):
                out[c, i, j] = np.float32(frame[i, j, c]) / scale


@njit(parallel=True, fastmath=False, cache=True, nogil=True)
def to_image(x, scale, low, high, out):
    """out[i, j, c] = uint8(clip(round_half_even(x[c, i, j] * scale), low, high)); x any
    strides (planar or channels-last)."""
    channels, height, width = x.shape
    for i in prange(height):
        for j in range(width):
            for c in range(channels):
                v = np.rint(x[c, i, j] * scale)  # rint rounds half to even, as ONNX Round
                out[i, j, c] = np.uint8(min(max(v, low), high))


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def resize2d(x, rows, row_weights, cols, col_weights, out):
    """Separable resampling of the two middle axes of x [outer, h, w, inner] into out
    [outer, H, W, inner]: out[o, i, j] = sum_k sum_l rw[k, i] cw[l, j] x[o, r[k, i], c[l, j]]
    (taps and weights from the reference engine's own Resize arithmetic)."""
    outer, height, width, inner = out.shape
    kr, kc = rows.shape[0], cols.shape[0]
    for task in prange(outer * height):
        o, i = task // height, task % height
        for j in range(width):
            for c in range(inner):
                total = 0.0
                for k in range(kr):
                    part = 0.0
                    for m in range(kc):
                        part += col_weights[m, j] * x[o, rows[k, i], cols[m, j], c]
                    total += row_weights[k, i] * part
                out[o, i, j, c] = total
