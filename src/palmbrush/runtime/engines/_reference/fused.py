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


KERNELS = {"FusedConv": fused_conv, "FromImage": from_image, "ToImage": to_image}
