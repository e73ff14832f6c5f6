"""The style-network family: one @dataclass config, modules in forward order.

Johnson et al. (2016) made small: reflection padding, instance norm, early downsampling and
late upsampling; fewer and narrower layers for the small presets. Output in [0, 1].
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import pairwise

import torch
from torch import nn


@dataclass(frozen=True)
class StyleNetConfig:
    widths: tuple[int, ...] = (32, 64, 128)  # encoder widths; each step after the first halves H, W
    blocks: int = 5  # residual blocks at the lowest resolution
    first_stride: int = 1  # > 1 downsamples in the very first conv (early downsampling)
    down: str = "conv"  # "conv" (stride 2) or "pool" (conv, then 2x2 average pooling)
    up: str = (
        "nearest"  # "nearest" (+ conv), "transpose" (transposed conv), "shuffle" (pixel shuffle)
    )
    norm: str = "instance"  # "instance", "batch" or "none"
    pad: str = "reflect"  # "reflect", "replicate" or "zero"
    first_kernel: int = 9  # kernel of the first conv
    last_kernel: int = 9  # kernel of the last conv
    act: str = "relu"  # "relu", "leaky" or "elu"
    last_up: str = "layer"  # with first_stride > 1: "layer" (an Up to full size, then the head)
    # or "head" (the head itself upsamples: nearest x first_stride + its conv, nothing else at
    # full size)
    skip: bool = False  # add each encoder level's output to the decoder's at the same size
    # (U-Net-like, by addition: no extra weights; the fine levels reach the head directly)
    detail: bool = False  # add a 3x3 conv of the full-size input to the output, after the
    # sigmoid: the frame's own edges reach the picture at full resolution, which nothing at
    # 1/2 size can draw (one small conv at full size; zero at initialisation)

    @property
    def factor(self) -> int:
        """Total downsampling: frames are padded to a multiple of it."""
        return self.first_stride * 2 ** (len(self.widths) - 1)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> StyleNetConfig:
        return cls(**{**data, "widths": tuple(data["widths"])})


def _padding(mode: str, amount: int) -> nn.Module:
    if amount == 0 or mode == "zero":
        return nn.Identity()
    return {"reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d}[mode](amount)


def _norm(mode: str, channels: int) -> nn.Module:
    if mode == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if mode == "batch":
        return nn.BatchNorm2d(channels)
    return nn.Identity()


def _act(mode: str) -> nn.Module:
    return {"relu": nn.ReLU, "leaky": lambda: nn.LeakyReLU(0.2), "elu": nn.ELU}[mode]()


class ConvLayer(nn.Sequential):
    """Padding (per config), conv, then optionally norm and activation."""

    def __init__(self, cfg: StyleNetConfig, cin: int, cout: int, k: int, stride: int = 1,
                 norm: bool = True, act: bool = True):  # fmt: skip
        zero = k // 2 if cfg.pad == "zero" else 0
        layers = [_padding(cfg.pad, k // 2), nn.Conv2d(cin, cout, k, stride, padding=zero)]
        if norm:
            layers.append(_norm(cfg.norm, cout))
        if act:
            layers.append(_act(cfg.act))
        super().__init__(*layers)


class Down(nn.Sequential):
    """Halve H and W: a stride-2 conv, or a conv followed by 2x2 average pooling."""

    def __init__(self, cfg: StyleNetConfig, cin: int, cout: int):
        if cfg.down == "pool":
            super().__init__(ConvLayer(cfg, cin, cout, 3), nn.AvgPool2d(2))
        else:
            super().__init__(ConvLayer(cfg, cin, cout, 3, stride=2))


class Up(nn.Sequential):
    """Multiply H and W by `scale`: nearest + conv, a transposed conv, or conv + pixel shuffle."""

    def __init__(self, cfg: StyleNetConfig, cin: int, cout: int, scale: int = 2):
        if cfg.up == "transpose":
            # kernel 2s - 1 covers every output pixel (at s = 2: 3, padding 1, as before)
            conv = nn.ConvTranspose2d(cin, cout, 2 * scale - 1, stride=scale,
                                      padding=scale - 1, output_padding=scale - 1)  # fmt: skip
            super().__init__(conv, _norm(cfg.norm, cout), _act(cfg.act))
        elif cfg.up == "shuffle":
            conv = ConvLayer(cfg, cin, cout * scale**2, 3, norm=False, act=False)
            super().__init__(conv, nn.PixelShuffle(scale), _norm(cfg.norm, cout), _act(cfg.act))
        else:
            super().__init__(
                nn.Upsample(scale_factor=float(scale), mode="nearest"), ConvLayer(cfg, cin, cout, 3)
            )


class Residual(nn.Module):
    def __init__(self, cfg: StyleNetConfig, c: int):
        super().__init__()
        self.body = nn.Sequential(ConvLayer(cfg, c, c, 3), ConvLayer(cfg, c, c, 3, act=False))

    def forward(self, x):  # (B, C, h, w)
        return x + self.body(x)


class StyleNet(nn.Module):
    """Image -> stylized image, both (B, 3, H, W) in [0, 1]; H and W multiples of cfg.factor."""

    def __init__(self, cfg: StyleNetConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.widths
        encoder = [ConvLayer(cfg, 3, w[0], cfg.first_kernel, stride=cfg.first_stride)]
        encoder += [Down(cfg, a, b) for a, b in pairwise(w)]
        self.encoder = nn.Sequential(*encoder)
        self.residuals = nn.Sequential(*[Residual(cfg, w[-1]) for _ in range(cfg.blocks)])
        decoder = [Up(cfg, a, b) for a, b in pairwise(w[::-1])]
        head = ConvLayer(cfg, w[0], 3, cfg.last_kernel, norm=False, act=False)
        if cfg.first_stride > 1 and cfg.last_up == "head":
            up = nn.Upsample(scale_factor=float(cfg.first_stride), mode="nearest")
            head = nn.Sequential(up, head)
        elif cfg.first_stride > 1:
            decoder.append(Up(cfg, w[0], w[0], cfg.first_stride))
        self.decoder = nn.Sequential(*decoder)
        self.head = head
        if cfg.detail:
            self.detail = ConvLayer(cfg, 3, 3, 3, norm=False, act=False)
            nn.init.zeros_(self.detail[-1].weight)  # starts as the network without it
            nn.init.zeros_(self.detail[-1].bias)

    def forward(self, frame):  # (B, 3, H, W) in [0, 1]
        x, levels = frame, []  # the encoder's outputs, finest first
        for layer in self.encoder:
            x = layer(x)
            levels.append(x)  # the last: (B, w[-1], H / factor, W / factor)
        x = self.residuals(x)
        for i, up in enumerate(self.decoder):  # up i ends at encoder level -2 - i, if any
            x = up(x)
            if self.cfg.skip and i + 2 <= len(levels):
                x = x + levels[-2 - i]
        y = torch.sigmoid(self.head(x))  # (B, 3, H, W)
        if not self.cfg.detail:
            return y
        y = y + self.detail(frame)
        # The exported graph rounds and clips to uint8 right after (train.export.Portable), so
        # the clamp is left out of the file: one full-size pass fewer, the same bytes.
        return y if torch.onnx.is_in_onnx_export() else y.clamp(0, 1)


PRESETS: dict[str, StyleNetConfig] = {
    "johnson": StyleNetConfig(),
    "medium": StyleNetConfig(widths=(16, 32, 64), blocks=3),
    "small": StyleNetConfig(widths=(16, 32, 48), blocks=2),
    "tiny": StyleNetConfig(widths=(12, 24, 32), blocks=2, first_kernel=7, last_kernel=7),
    "nano": StyleNetConfig(widths=(16, 24), blocks=1, first_stride=2, first_kernel=5,
                           last_kernel=5),
    "pico": StyleNetConfig(widths=(12, 20), blocks=1, first_stride=2, first_kernel=5,
                           last_kernel=5),
    # femto-skip (below) with the frame's own detail added at full size (StyleNetConfig.detail):
    # 84 weights and 6% more multiply-adds; 0.91x femto's speed on the cpu engine, so not the
    # default (docs/styles.md, "Tried after v2").
    "femto-detail": StyleNetConfig(widths=(8, 16), blocks=2, first_stride=2, first_kernel=5,
                                   last_kernel=3, last_up="head", skip=True, detail=True),
    # Issue 6's sweep's pick (docs/styles.md): >= 30 fps at 1280x720 on 2 cores, < 70 KB.
    "femto": StyleNetConfig(widths=(8, 16), blocks=2, first_stride=2, first_kernel=5,
                            last_kernel=3, last_up="head"),
    # femto with its 1/2-size encoder output added to the decoder's, so fine content reaches
    # the head: the same weights and speed, a lower content error (docs/lab.md, the styles-v2
    # sweep); the shipped styles' network and training's default since issue 13.
    "femto-skip": StyleNetConfig(widths=(8, 16), blocks=2, first_stride=2, first_kernel=5,
                                 last_kernel=3, last_up="head", skip=True),
}  # fmt: skip


def parameter_count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def macs(cfg: StyleNetConfig, height: int = 720, width: int = 1280) -> int:
    """Multiply-accumulates for one frame, counted on the meta device (nothing is computed)."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        w = module.weight.shape  # conv (out, in/g, k, k); transposed (in, out/g, k, k)
        if isinstance(module, nn.ConvTranspose2d):
            total += inputs[0].numel() * w[1] * w[2] * w[3]
        else:
            total += output.numel() * w[1] * w[2] * w[3]

    net = StyleNet(cfg).to("meta")
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            m.register_forward_hook(count)
    f = cfg.factor
    net(torch.empty(1, 3, -(-height // f) * f, -(-width // f) * f, device="meta"))
    return total


__all__ = ["PRESETS", "StyleNet", "StyleNetConfig", "macs", "parameter_count"]
