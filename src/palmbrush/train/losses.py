"""Perceptual losses as small pure functions (Gatys et al. 2015; Johnson et al. 2016).

Content and style terms are relative errors: each layer's squared error is divided by the
mean square of its target, so every tap contributes on the same scale whatever its depth and
whichever loss network computed it, and the weights mean the same across loss networks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gram_matrix(features: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, C)
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def relative_mse(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(x, target) / (target.pow(2).mean() + 1e-8)


def content_loss(features: dict, targets: dict) -> torch.Tensor:
    return sum(relative_mse(features[k], targets[k]) for k in targets)


def style_loss(features: dict, target_grams: dict) -> torch.Tensor:
    """Gram mismatch per tap; target_grams are (1, C, C) and broadcast over the batch."""
    total = 0.0
    for k, target in target_grams.items():
        gram = gram_matrix(features[k])
        total = total + relative_mse(gram, target.expand_as(gram))
    return total


def tv_loss(image: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W)
    """Total variation: mean absolute difference between neighbouring pixels."""
    dy = (image[:, :, 1:] - image[:, :, :-1]).abs().mean()
    dx = (image[:, :, :, 1:] - image[:, :, :, :-1]).abs().mean()
    return dy + dx


def loss_view(images: torch.Tensor, scale: int, shift: tuple[int, int]) -> torch.Tensor:
    """What the loss network sees: upsampled `scale`x (bilinear) and shifted by a sub-pixel.

    Small loss networks (SqueezeNet's first conv has stride 2 and no padding) alias; showing
    them a 2x copy at a random sub-pixel offset stops the generator exploiting that (fine
    hatching otherwise). See ../shared/notes/loss-network.md.
    """
    if scale == 1:
        return images
    up = F.interpolate(images, scale_factor=scale, mode="bilinear", align_corners=False)
    return up[:, :, shift[0] :, shift[1] :]


def sample_grid(flow: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, H, W, 2) pixel flow -> grid_sample's grid: (x + dx, y + dy) scaled to [-1, 1]."""
    ys, xs = torch.meshgrid(torch.arange(height, dtype=flow.dtype),
                            torch.arange(width, dtype=flow.dtype), indexing="ij")  # fmt: skip
    gx = (xs + flow[..., 0]) * (2 / max(width - 1, 1)) - 1
    gy = (ys + flow[..., 1]) * (2 / max(height - 1, 1)) - 1
    return torch.stack([gx, gy], -1)


def warp(images: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) sampled at (x + dx, y + dy) of a (B, H, W, 2) pixel flow: lab.warp.warp's
    convention (bilinear, edges clamped), differentiable."""
    grid = sample_grid(flow, *images.shape[2:]).to(images.device)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=True)


def stability_loss(net, images: torch.Tensor, out: torch.Tensor, flow: torch.Tensor,
                   noise: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """Wang et al. (AAAI 2020): a stable network commutes with small motion and noise,
    N(warp(x) + noise) == warp(N(x)); mean squared difference on the 0-1 scale, over the
    pixels whose sample point is inside the frame (as the lab's stability metric counts)."""
    moved = net(warp(images, flow) + noise.to(images.device))
    grid = sample_grid(flow, *images.shape[2:])
    keep = (grid.abs() <= 1).all(-1)[:, None].to(images.device)  # (B, 1, H, W)
    squared = (moved - warp(out, flow)) ** 2 * keep
    return squared.sum() / (keep.sum() * images.shape[1]).clamp_min(1)
