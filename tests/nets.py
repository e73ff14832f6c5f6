"""PyTorch networks the parity tests export to ONNX (built here, with seeded random weights)."""

from __future__ import annotations

import io

import torch
from torch import nn


class ConvLayer(nn.Module):
    """Reflection padding, then a convolution (Johnson et al. 2016)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1):
        super().__init__()
        self.pad = nn.ReflectionPad2d(k // 2)
        self.conv = nn.Conv2d(cin, cout, k, stride)

    def forward(self, x):
        return self.conv(self.pad(x))


class Residual(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(
            ConvLayer(c, c, 3),
            nn.InstanceNorm2d(c, affine=True),
            nn.ReLU(),
            ConvLayer(c, c, 3),
            nn.InstanceNorm2d(c, affine=True),
        )

    def forward(self, x):
        return x + self.body(x)


class Upsample(nn.Module):
    """Nearest 2x upsampling, then a convolution (avoids transposed-conv checkerboards)."""

    def __init__(self, cin: int, cout: int, k: int):
        super().__init__()
        self.conv = ConvLayer(cin, cout, k)

    def forward(self, x):
        return self.conv(nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"))


class TransformerNet(nn.Module):
    """A Johnson-style image transformation network, narrowed for test speed."""

    def __init__(self, width: int = 8, blocks: int = 2):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            ConvLayer(3, w, 9),
            nn.InstanceNorm2d(w, affine=True),
            nn.ReLU(),
            ConvLayer(w, 2 * w, 3, 2),
            nn.InstanceNorm2d(2 * w, affine=True),
            nn.ReLU(),
            ConvLayer(2 * w, 4 * w, 3, 2),
            nn.InstanceNorm2d(4 * w, affine=True),
            nn.ReLU(),
            *[Residual(4 * w) for _ in range(blocks)],
            Upsample(4 * w, 2 * w, 3),
            nn.InstanceNorm2d(2 * w, affine=True),
            nn.ReLU(),
            Upsample(2 * w, w, 3),
            nn.InstanceNorm2d(w, affine=True),
            nn.ReLU(),
            ConvLayer(w, 3, 9),
        )

    def forward(self, x):  # (B, 3, H, W) -> (B, 3, H, W)
        return self.net(x)


class Classifier(nn.Module):
    """A small image classifier: conv, BatchNorm, pooling, Gemm."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.BatchNorm2d(8),
            nn.Conv2d(8, 16, 3, padding=1, stride=2),
            nn.ReLU(),
            nn.AvgPool2d(2, ceil_mode=True),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(16, classes)

    def forward(self, x):  # (B, 3, H, W) -> (B, classes)
        return torch.softmax(self.head(torch.flatten(self.features(x), 1)), dim=1)


def randomize(module: nn.Module, seed: int = 0) -> nn.Module:
    """Seeded weights, with non-trivial norm statistics so BatchNorm is not an identity."""
    torch.manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
        if isinstance(m, nn.BatchNorm2d | nn.InstanceNorm2d) and m.affine:
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return module.eval()


def export(
    module: nn.Module, shape: tuple[int, ...], dynamic: bool = True, opset: int = 17
) -> bytes:
    """torch.onnx.export (TorchScript exporter) to bytes, with dynamic height and width."""
    f = io.BytesIO()
    axes = {"x": {2: "H", 3: "W"}, "y": {2: "H", 3: "W"}} if dynamic else None
    torch.onnx.export(
        module,
        (torch.zeros(shape),),
        f,
        input_names=["x"],
        output_names=["y"],
        opset_version=opset,
        dynamic_axes=axes,
        dynamo=False,
    )
    return f.getvalue()
