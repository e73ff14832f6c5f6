"""Sliding-window geometry shared by the reference conv and pool kernels."""

from __future__ import annotations

import itertools
import math

import numpy as np


def resolve_pads(spatial, kernel, strides, dilations, auto_pad, pads) -> list[tuple[int, int]]:
    """(begin, end) padding per spatial axis, from explicit pads or auto_pad."""
    n = len(kernel)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = []
        for size, k, s, d in zip(spatial, kernel, strides, dilations):
            total = max(0, (math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size)
            small, big = total // 2, total - total // 2
            out.append((small, big) if auto_pad == "SAME_UPPER" else (big, small))
        return out
    if auto_pad == "VALID" or not pads:
        return [(0, 0)] * n
    return [(pads[i], pads[i + n]) for i in range(n)]


def geometry(x_shape, kernel, strides, dilations, auto_pad, pads, ceil_mode=False):
    """Normalised strides, dilations, pads and output sizes of a window op over x."""
    n = len(kernel)
    strides = list(strides or [1] * n)
    dilations = list(dilations or [1] * n)
    pads = resolve_pads(x_shape[2:], kernel, strides, dilations, auto_pad, pads)
    out = []
    for size, k, s, d, (pb, pe) in zip(x_shape[2:], kernel, strides, dilations, pads):
        room = size + pb + pe - (d * (k - 1) + 1)
        o = (math.ceil(room / s) if ceil_mode else room // s) + 1
        if ceil_mode and (o - 1) * s >= size + pb:
            o -= 1
        out.append(o)
    return strides, dilations, pads, out


def pad_for_windows(x, pads, out, kernel, strides, dilations, value):
    """Pad x's spatial axes so every output window lies inside; extra end padding for ceil."""
    widths = [(0, 0), (0, 0)]
    for size, (pb, pe), o, k, s, d in zip(x.shape[2:], pads, out, kernel, strides, dilations):
        need = (o - 1) * s + d * (k - 1) + 1
        widths.append((pb, max(pe, need - size - pb)))
    return np.pad(x, widths, constant_values=value)


def taps(kernel):
    """Every kernel position, as a tuple of indices."""
    return itertools.product(*(range(k) for k in kernel))


def tap_view(xp, tap, out, strides, dilations):
    """The strided view of padded input xp that kernel position `tap` sees for every output."""
    index = [slice(None), slice(None)]
    for t, o, s, d in zip(tap, out, strides, dilations):
        index.append(slice(t * d, t * d + (o - 1) * s + 1, s))
    return xp[tuple(index)]
