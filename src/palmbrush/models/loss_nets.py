"""Loss networks: VGG-16, VGG-19 and SqueezeNet 1.1 in torchvision's layout, with named taps.

Each network takes RGB images in [0, 1] and converts them to its own input convention
(`Convention`), so callers never think about BGR, 0-255 or channel means.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Convention:
    """How a set of weights expects its input."""

    bgr: bool  # channel order
    scale: float  # 1.0 for [0, 1] input, 255.0 for [0, 255]
    mean: tuple[float, float, float]  # subtracted after scaling, in the network's channel order
    std: tuple[float, float, float]

    def apply(self, rgb: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) RGB in [0, 1]
        x = rgb.flip(1) if self.bgr else rgb
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return (x * self.scale - mean) / std


TORCHVISION = Convention(False, 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CAFFE = Convention(True, 255.0, (104.0, 117.0, 123.0), (1.0, 1.0, 1.0))  # Keras SqueezeNet


class TappedFeatures(nn.Module):
    """Runs `features` (an nn.Sequential) and returns the outputs of the named taps."""

    def __init__(self, features: nn.Sequential, taps: dict[str, int], convention: Convention):
        super().__init__()
        self.features = features
        self.taps = taps  # name -> index in features whose output is the tap
        self.convention = convention
        self.requires_grad_(False)
        self.eval()

    def forward(self, rgb: torch.Tensor, names: list[str]) -> dict[str, torch.Tensor]:
        wanted = {self.taps[n]: n for n in names}
        last = max(wanted)
        out, x = {}, self.convention.apply(rgb)
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in wanted:
                out[wanted[i]] = x
            if i == last:
                break
        return out


VGG_CONFIGS = {
    "vgg16": [2, 2, 3, 3, 3],  # convs per block
    "vgg19": [2, 2, 4, 4, 4],
}


def vgg(name: str) -> TappedFeatures:
    """VGG features with torchvision's module indices (features.0.weight, ...) and relu taps."""
    layers: list[nn.Module] = []
    taps: dict[str, int] = {}
    cin = 3
    for block, (count, cout) in enumerate(zip(VGG_CONFIGS[name], [64, 128, 256, 512, 512]), 1):
        for conv in range(1, count + 1):
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=False)]
            taps[f"relu{block}_{conv}"] = len(layers) - 1
            cin = cout
        layers.append(nn.MaxPool2d(2, 2))
    return TappedFeatures(nn.Sequential(*layers), taps, TORCHVISION)


class Fire(nn.Module):
    """SqueezeNet's fire module: squeeze 1x1, then concat(expand 1x1, expand 3x3)."""

    def __init__(self, cin: int, squeeze: int, expand: int):
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, expand, 1)
        self.expand3x3 = nn.Conv2d(squeeze, expand, 3, padding=1)

    def forward(self, x):
        s = torch.relu(self.squeeze(x))
        return torch.cat([torch.relu(self.expand1x1(s)), torch.relu(self.expand3x3(s))], 1)


FIRES = [(2, 64, 16, 64), (3, 128, 16, 64), (4, 128, 32, 128), (5, 256, 32, 128),
         (6, 256, 48, 192), (7, 384, 48, 192), (8, 384, 64, 256), (9, 512, 64, 256)]  # fmt: skip


def squeezenet(convention: Convention = TORCHVISION) -> TappedFeatures:
    """SqueezeNet 1.1 features with torchvision's indices; taps conv1 and fire2..fire9."""
    layers: list[nn.Module] = [nn.Conv2d(3, 64, 3, stride=2), nn.ReLU()]
    taps = {"conv1": 1}
    for number, cin, squeeze, expand in FIRES:
        if number in (2, 4, 6):
            layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
        layers.append(Fire(cin, squeeze, expand))
        taps[f"fire{number}"] = len(layers) - 1
    return TappedFeatures(nn.Sequential(*layers), taps, convention)


# Channels of each tap, for documentation and tests; spatial size follows from the input.
TAP_CHANNELS = {
    "squeezenet": {"conv1": 64, **{f"fire{n}": 2 * e for n, _, _, e in FIRES}},
    "vgg16": {f"relu{b}_{c}": w for b, (n, w) in enumerate(zip([2, 2, 3, 3, 3],
              [64, 128, 256, 512, 512]), 1) for c in range(1, n + 1)},
    "vgg19": {f"relu{b}_{c}": w for b, (n, w) in enumerate(zip([2, 2, 4, 4, 4],
              [64, 128, 256, 512, 512]), 1) for c in range(1, n + 1)},
}  # fmt: skip
