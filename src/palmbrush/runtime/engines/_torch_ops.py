"""PyTorch epilogues the torch and cuda engines share (so neither imports the other): instance
norm, activation and residual on tensors of any device. Importing this imports no PyTorch."""

from __future__ import annotations


def instance_norm(y, scale, bias, epsilon):
    """Two-pass instance norm; several times faster than F.instance_norm on CPU."""
    import torch

    centred = y - y.mean(dim=(2, 3), keepdim=True)
    var = (centred * centred).mean(dim=(2, 3), keepdim=True)
    gain = scale.view(1, -1, 1, 1) * torch.rsqrt(var + epsilon)
    return centred.mul_(gain).add_(bias.view(1, -1, 1, 1))


def finish(y, scale, bias, residual, *, norm, epsilon, activation, alpha):
    """Instance norm (scale, bias tensors), activation and + residual (a tensor) on float y,
    in place where it can; returns the result, channels-last."""
    import torch
    import torch.nn.functional as F

    if norm == "instance":
        y = instance_norm(y, scale, bias, epsilon)
    if activation == "relu":
        y = torch.relu_(y)
    elif activation == "leaky_relu":
        y = F.leaky_relu_(y, alpha)
    elif activation == "sigmoid":
        y = torch.sigmoid_(y)
    if residual is not None:
        y = y.add_(residual)
    return y.contiguous(memory_format=torch.channels_last)
