"""Reference kernels of palmbrush's fused ops: exactly the composition they replace."""

from __future__ import annotations

import numpy as np

from .elementwise import clip, div, leaky_relu, relu, sigmoid
from .nn import conv, instance_normalization
from .tensor import pad, transpose

ACTIVATIONS = {
    "none": lambda x, alpha: x,
    "relu": lambda x, alpha: relu(x),
    "leaky_relu": lambda x, alpha: leaky_relu(x, alpha=alpha),
    "sigmoid": lambda x, alpha: sigmoid(x),
}


def fused_conv(X, W, B=None, scale=None, bias=None, residual=None, *, upsample, pad_mode, pre_pads,
               norm, epsilon, activation, alpha, **window):  # fmt: skip
    """Nearest upsample -> Pad(pad_mode) -> Conv -> InstanceNormalization -> activation ->
    + residual."""
    if upsample is not None:  # Resize nearest by integer factors (floor coordinates)
        X = np.repeat(np.repeat(X, upsample[0], axis=2), upsample[1], axis=3)
    if pre_pads is not None and any(pre_pads):
        top, left, bottom, right = pre_pads
        X = pad(X, np.array([0, 0, top, left, 0, 0, bottom, right]), mode=pad_mode)
    y = conv(X, W, B, **window)
    if norm == "instance":
        y = instance_normalization(y, scale, bias, epsilon=epsilon)
    y = ACTIVATIONS[activation](y, alpha)
    return y if residual is None else y + residual


def from_image(x, *, perm, scale):
    """Transpose(Cast(x, float32), perm) / scale."""
    y = x.astype(np.float32)
    return div(y if perm is None else transpose(y, perm=perm), np.float32(scale))


def to_image(x, *, perm, scale, low, high):
    """Cast(Transpose(Clip(Round(x * scale), low, high), perm), uint8)."""
    y = clip(np.round(x * np.float32(scale)), np.float32(low), np.float32(high))
    return (y if perm is None else transpose(y, perm=perm)).astype(np.uint8)


WINDOW = {
    "auto_pad": "NOTSET",
    "dilations": None,
    "group": 1,
    "kernel_shape": None,
    "pads": None,
    "strides": None,
}  # a Conv's attributes, as the YUV wrap writes them


def _levels(x):
    """Clip(Round(x), 0, 255) as uint8."""
    return clip(np.round(x), np.float32(0), np.float32(255)).astype(np.uint8)


def yuv_to_image(y, u, v, W, B):
    """Cast(Transpose(Clip(Round(Conv(Concat(y, nearest 2x (u, v)), W, B)), 0, 255)), uint8):
    yuv420p planes to an NHWC RGB frame."""
    chroma = np.concatenate([u[:, None], v[:, None]], 1).astype(np.float32)
    chroma = np.repeat(np.repeat(chroma, 2, axis=2), 2, axis=3)  # Resize nearest, 2x
    planes = np.concatenate([y[:, None].astype(np.float32), chroma], 1)
    return transpose(_levels(conv(planes, W, B, **WINDOW)), perm=[0, 2, 3, 1])


def image_to_yuv(frame, Wy, By, Wuv, Buv):
    """An NHWC RGB frame to yuv420p planes: Y by a 1x1 Conv, U and V by a 4x2 Conv of stride
    2 over the frame with one edge row added above and below; each rounded to uint8."""
    rgb = transpose(frame.astype(np.float32), perm=[0, 3, 1, 2])
    y = _levels(conv(rgb, Wy, By, **WINDOW))
    rows = pad(rgb, np.array([0, 0, 1, 0, 0, 0, 1, 0]), mode="edge")
    uv = _levels(conv(rows, Wuv, Buv, **{**WINDOW, "strides": [2, 2]}))
    return y[:, 0], uv[:, 0], uv[:, 1]


def from_yuv(y, u, v, W, B, *, scale):
    """FromImage(YUVToImage(...)): planes to the network's planar input."""
    return from_image(yuv_to_image(y, u, v, W, B), perm=[0, 3, 1, 2], scale=scale)


def to_yuv(x, Wy, By, Wuv, Buv, *, scale, low, high):
    """ImageToYUV(ToImage(...)): the network's planar output to planes."""
    frame = to_image(x, perm=[0, 2, 3, 1], scale=scale, low=low, high=high)
    return image_to_yuv(frame, Wy, By, Wuv, Buv)


KERNELS = {"FusedConv": fused_conv, "FromImage": from_image, "ToImage": to_image,
           "YUVToImage": yuv_to_image, "ImageToYUV": image_to_yuv, "FromYUV": from_yuv,
           "ToYUV": to_yuv}  # fmt: skip
