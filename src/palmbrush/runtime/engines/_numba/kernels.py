"""The Numba kernels around the convolutions: gathers, instance norm with its activation and
residual, frames in and out, resampling. Each is parallel over rows (Numba's threads),
releases the GIL, and is compiled on first use, then cached on disk.

Two layouts: planar (C, H, W), the cpu engine's own, and channels-last (H, W, C), what oneDNN
wants (the torch engine's). Indices are cast to unsigned where it matters: Numba's
negative-index wraparound otherwise stops LLVM from vectorizing contiguous loads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

NONE, RELU, LEAKY_RELU, SIGMOID = 0, 1, 2, 3
ACTIVATIONS = {"none": NONE, "relu": RELU, "leaky_relu": LEAKY_RELU, "sigmoid": SIGMOID}
FAST = {"parallel": True, "fastmath": True, "cache": True, "nogil": True}
EXACT = {
    "parallel": True,
    "fastmath": False,
    "cache": True,
    "nogil": True,
}  # frames: rounding must match ONNX


# ---- gathers: padding, nearest upsampling and cropping through index tables --------------


@njit(**FAST)
def gather_planar(x, rows, cols, out):
    """out[c, i, j] = x[c, rows[i], cols[j]] (zero where an index is -1); x any strides."""
    channels, height, width = out.shape
    for task in prange(channels * height):
        c, i = task // height, task % height
        r = rows[i]
        for j in range(width):
            k = cols[j]
            out[c, i, j] = 0.0 if r < 0 or k < 0 else x[c, r, k]


@njit(**FAST)
def gather_hwc(x, rows, cols, out):
    """The same on channels-last arrays: out[i, j, :] = x[rows[i], cols[j], :]."""
    height, width, channels = out.shape
    for i in prange(height):
        r = rows[i]
        for j in range(width):
            k = cols[j]
            for c in range(channels):
                out[i, j, c] = 0.0 if r < 0 or k < 0 else x[r, k, c]


# ---- layout conversions: a block of a pixel row per step, so reads and writes both stream ----


@njit(**FAST)
def hwc_to_planar(x, out):
    """out[c, i, j] = x[i, j, c]."""
    height, width, channels = x.shape
    for i in prange(height):
        for j0 in range(0, width, 16):
            for c in range(channels):
                for j in range(j0, min(j0 + 16, width)):
                    out[c, i, j] = x[i, j, c]


@njit(**FAST)
def planar_to_hwc(x, out):
    """out[i, j, c] = x[c, i, j]."""
    channels, height, width = x.shape
    for i in prange(height):
        for j0 in range(0, width, 16):
            for c in range(channels):
                for j in range(j0, min(j0 + 16, width)):
                    out[i, j, c] = x[c, i, j]


# ---- after the convolution: instance norm, activation, residual ----------------------------


@njit(fastmath=True, cache=True, inline="always")
def _sigmoid(v):
    """1 / (1 + exp(-v)) in arithmetic LLVM vectorizes (np.exp is a scalar libm call without
    SVML: 2.3 ms for a 640x480 RGB head, this 0.3 ms): exp(t) = exp(t / 64) ** 64, the small
    exponential by its degree-8 Taylor polynomial. Within 1.7e-6 of the exact value for all v
    (t clipped to [-40, 40], where the sigmoid is within 5e-18 of 0 or 1). Like every FAST
    kernel it assumes no NaN (fastmath): a NaN input need not come out as NaN."""
    t = min(max(-v, np.float32(-40.0)), np.float32(40.0)) * np.float32(1.0 / 64.0)
    p = np.float32(1.0 / 40320.0)
    for c in (1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0):
        p = p * t + np.float32(c)
    for _ in range(6):
        p = p * p
    return np.float32(1.0) / (np.float32(1.0) + p)


@njit(fastmath=True, cache=True, inline="always")
def _act(v, activation, alpha):
    if activation == RELU:
        return max(v, np.float32(0.0))
    if activation == LEAKY_RELU:
        return v if v >= 0 else v * alpha
    if activation == SIGMOID:
        return _sigmoid(v)
    return v


@njit(fastmath=False, cache=True, nogil=True)
def norm_gain_shift(sums, squares, count, scale, bias, epsilon, gain, shift):
    """Instance norm as y * gain[c] + shift[c], from per-row sums and sums of squares of
    each channel [c, rows] (float64): mean, biased variance, scale / sqrt(var + epsilon)."""
    for c in range(sums.shape[0]):
        total, square = 0.0, 0.0
        for r in range(sums.shape[1]):
            total += sums[c, r]
            square += squares[c, r]
        mean = total / count
        var = max(square / count - mean * mean, 0.0)
        g = np.float64(scale[c]) / np.sqrt(var + epsilon)
        gain[c] = g
        shift[c] = np.float64(bias[c]) - mean * g


CHUNK = 4096  # elements of one channel per task in finish_planar


@njit(**FAST)
def finish_planar(y, gain, shift, activation, alpha, residual):
    """In place on y [c, n]: y = act(y * gain[c] + shift[c]) (+ residual[c] if not [0, 0]).
    A contiguous piece per task with the activation chosen outside its loop, so the loop
    vectorizes (5-6x the indexed, branching loop: 8 x 76800 with relu 0.13 vs 0.91 ms)."""
    channels, n = y.shape
    add = residual.shape[0] > 0
    pieces = (n + CHUNK - 1) // CHUNK
    for task in prange(channels * pieces):
        c, start = task // pieces, (task % pieces) * CHUNK
        stop = min(start + CHUNK, n)
        g, s = gain[c], shift[c]
        piece = y[c, start:stop]
        if activation == RELU:
            for j in range(piece.size):
                piece[j] = max(piece[j] * g + s, np.float32(0.0))
        elif activation == SIGMOID:
            for j in range(piece.size):
                piece[j] = _sigmoid(piece[j] * g + s)
        else:
            for j in range(piece.size):
                piece[j] = _act(piece[j] * g + s, activation, alpha)
        if add:
            extra = residual[c, start:stop]
            for j in range(piece.size):
                piece[j] += extra[j]


@njit(**FAST)
def finish_up2(z, gain, shift, activation, alpha, residual, out):
    """out[c, 2m + py, 2n + px] = act(z[2 py + px, c, m, n] * gain[c] + shift[c])
    (+ residual[c, 2m + py, 2n + px]): the four phase planes of an upsample-by-2 convolution
    interleaved into the output while normalizing. Row views and the activation chosen
    outside the inner loop, so it vectorizes (4-7x the indexed loop on a 640x480 head)."""
    _, channels, height, width = z.shape
    add = residual.shape[0] > 0
    for task in prange(channels * 2 * height):
        c, row = task // (2 * height), task % (2 * height)
        m, py = row // 2, row % 2
        g, s = gain[c], shift[c]
        left, right, dest = z[2 * py, c, m], z[2 * py + 1, c, m], out[c, row]
        if activation == RELU:
            for n in range(width):
                dest[2 * n] = max(left[n] * g + s, np.float32(0.0))
                dest[2 * n + 1] = max(right[n] * g + s, np.float32(0.0))
        elif activation == SIGMOID:
            for n in range(width):
                dest[2 * n] = _sigmoid(left[n] * g + s)
                dest[2 * n + 1] = _sigmoid(right[n] * g + s)
        else:
            for n in range(width):
                dest[2 * n] = _act(left[n] * g + s, activation, alpha)
                dest[2 * n + 1] = _act(right[n] * g + s, activation, alpha)
        if add:
            extra = residual[c, row]
            for j in range(2 * width):
                dest[j] += extra[j]


@njit(**FAST)
def stats_up2_hwc(z, sums, squares):
    """Row statistics of the output of an upsample-by-2 convolution computed as one 2x2
    convolution with 4 * c channels over the padded source: z [h + 1, w + 1, 4 * c]
    (channels-last); output (2m + py, 2n + px, k) is z[m + py, n + px, (2 py + px) c + k].
    sums/squares are [c, 2h]."""
    channels, height, width = sums.shape[0], z.shape[0] - 1, z.shape[1] - 1
    for row in prange(2 * height):
        m, py = row // 2, row % 2
        total, square = np.zeros(channels), np.zeros(channels)  # per row: the loop vectorizes
        for n in range(width):
            for px in range(2):
                pixel = z[m + py, n + px]
                first = (2 * py + px) * channels
                for k in range(channels):
                    v = np.float64(pixel[first + k])
                    total[k] += v
                    square[k] += v * v
        for k in range(channels):
            sums[k, row] = total[k]
            squares[k, row] = square[k]


@njit(**FAST)
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


@njit(**FAST)
def stats_hwc(y, sums, squares):
    """Per row i and channel c of a channels-last y [h, w, c]: sum and sum of squares, summed
    in a row's own accumulators (2.5-3.5x adding into sums[c, i] itself)."""
    height, width, channels = y.shape
    for i in prange(height):
        total, square = np.zeros(channels), np.zeros(channels)
        row = y[i]
        for j in range(width):
            pixel = row[j]
            for c in range(channels):
                v = np.float64(pixel[c])
                total[c] += v
                square[c] += v * v
        for c in range(channels):
            sums[c, i] = total[c]
            squares[c, i] = square[c]


@njit(**FAST)
def finish_hwc(y, gain, shift, activation, alpha, residual, out):
    """finish_planar on a channels-last y [h, w, c] into out (y itself, or another array of
    its shape); residual any strides, or [0, 0, 0]."""
    height, width, channels = y.shape
    add = residual.shape[0] > 0
    for i in prange(height):
        for j in range(width):
            for c in range(channels):
                v = _act(y[i, j, c] * gain[c] + shift[c], activation, alpha)
                out[i, j, c] = v + residual[i, j, c] if add else v


# ---- frames in and out ----------------------------------------------------------------------


@njit(**EXACT)
def from_image(frame, scale, out):
    """out[c, i, j] = float32(frame[i, j, c]) / scale: a uint8 HWC frame to a planar tensor."""
    height, width, channels = frame.shape
    for i in prange(height):
        source = frame[i]
        for c in range(channels):  # a channel row at a time: 2x the pixel-major loop
            dest = out[c, i]
            for j in range(width):
                dest[j] = np.float32(source[j, c]) / scale


@njit(**EXACT)
def to_image(x, scale, low, high, out):
    """out[i, j, c] = uint8(clip(round_half_even(x[c, i, j] * scale), low, high)); x any
    strides (planar or channels-last)."""
    channels, height, width = x.shape
    for i in prange(height):
        for j in range(width):
            for c in range(channels):
                v = np.rint(x[c, i, j] * scale)  # rint rounds half to even, as ONNX Round
                out[i, j, c] = np.uint8(min(max(v, low), high))


@njit(**EXACT)
def from_yuv(y, u, v, matrix, bias, scale, out):
    """out[c, i, j] = level(matrix[c] . (Y, U, V) + bias[c]) / scale, with (U, V) the chroma
    sample (i // 2, j // 2) and level() rounding half to even into 0..255: yuv420p planes to a
    planar RGB tensor, the RGB frame between them rounded to uint8 as a decoder's would be."""
    height, width = y.shape
    for i in prange(height):
        luma, cb, cr = y[i], u[i // 2], v[i // 2]
        for c in range(3):
            dest = out[c, i]
            m0, m1, m2, b = matrix[c, 0], matrix[c, 1], matrix[c, 2], bias[c]
            for j in range(width):
                t = m0 * np.float32(luma[j]) + m1 * np.float32(cb[j // 2])
                t = t + m2 * np.float32(cr[j // 2]) + b
                dest[j] = min(max(np.rint(t), np.float32(0)), np.float32(255)) / scale


@njit(**EXACT)
def to_yuv(x, scale, low, high, luma, luma_bias, chroma, chroma_bias, y, u, v):
    """x [3, H, W] (any strides) to yuv420p planes: each RGB level is clip(rint(x * scale),
    low, high), as ToImage's; Y = rint(luma . rgb + luma_bias) per pixel; U and V by the 4x2
    window `chroma` [2, 3, 4, 2] over rows 2i-1 .. 2i+2 (edge rows repeated) and columns 2j,
    2j+1; all clipped to 0..255."""
    _, height, width = x.shape
    for half in prange(height // 2):
        for i in range(2 * half, 2 * half + 2):
            for j in range(width):
                t = luma_bias
                for c in range(3):
                    level = min(max(np.rint(x[c, i, j] * scale), low), high)
                    t = t + luma[c] * level
                y[i, j] = np.uint8(min(max(np.rint(t), np.float32(0)), np.float32(255)))
        for j in range(width // 2):
            for k in range(2):
                t = chroma_bias[k]
                for c in range(3):
                    for r in range(4):
                        row = min(max(2 * half - 1 + r, 0), height - 1)
                        for q in range(2):
                            level = min(max(np.rint(x[c, row, 2 * j + q] * scale), low), high)
                            t = t + chroma[k, c, r, q] * level
                value = np.uint8(min(max(np.rint(t), np.float32(0)), np.float32(255)))
                if k == 0:
                    u[half, j] = value
                else:
                    v[half, j] = value


@njit(**FAST)
def resize2d(x, rows, row_weights, cols, col_weights, out):
    """Separable resampling of the two middle axes of x [outer, h, w, inner] into out
    [outer, H, W, inner]: out[o, i, j] = sum_k sum_l rw[k, i] cw[l, j] x[o, r[k, i], c[l, j]]
    (taps and weights from the reference engine's Resize arithmetic)."""
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
