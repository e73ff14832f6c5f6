"""Training settings: one dataclass, one comment per field; saved in checkpoints and models."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from palmbrush.errors import PalmbrushError

# Default taps per loss network: content on mid-level features, style on several depths.
LAYERS = {
    "squeezenet": {
        "content": ["fire3", "fire5"],
        "style": ["conv1", "fire3", "fire5", "fire6", "fire7"],
    },
    "vgg16": {"content": ["relu2_2"], "style": ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]},
    "vgg19": {
        "content": ["relu4_2"],
        "style": ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"],
    },
}


@dataclass
class TrainSettings:
    style: Path  # the painting
    content: Path  # folder of photos (searched recursively)
    out: Path  # the exported .onnx model
    preset: str = "femto-skip"  # network preset from palmbrush.models.PRESETS
    arch: dict = field(default_factory=dict)  # changes to the preset (StyleNetConfig fields)
    size: int = 128  # training crop size
    batch: int = 4  # crops per step
    steps: int = 1300  # optimizer steps in all (the shipped styles: 800 of a base + 500)
    lr: float = 2e-3  # Adam learning rate at the first step
    lr_floor: float = 0.1  # it falls on a cosine to lr * lr_floor at the last (1: constant)
    content_weight: float = 1.0  # weight of the relative content error
    style_weight: float = 1.5  # weight of the relative Gram error (summed over style taps)
    tv_weight: float = 1.0  # weight of total variation on the output
    temporal_weight: float = 300.0  # weight of the stability term (losses.stability_loss)
    style_size: int = 192  # long side of the painting when its Grams are taken
    loss_net: str = "squeezenet"  # 'squeezenet[:PATH]', 'vgg16[:PATH]' or 'vgg19[:PATH]'
    loss_scale: int = 0  # upsampling before the loss net; 0 = 2 for SqueezeNet, else 1
    content_layers: list[str] = field(default_factory=list)  # empty = LAYERS default
    style_layers: list[str] = field(default_factory=list)  # empty = LAYERS default
    exclude: list[str] = field(default_factory=list)  # sub-folders of `content` held aside
    seed: int = 0  # seeds weights, crops and sub-pixel shifts
    init: Path | None = None  # start from these weights: a checkpoint or a style model (.onnx)
    device: str = "cpu"  # "cpu" or "cuda"
    workers: int = 1  # data-loading processes (0 = in the training process)
    checkpoint: Path | None = None  # default: OUT with suffix .ckpt
    checkpoint_every: int = 100  # steps between checkpoints
    preview_every: int = 200  # steps between contact sheets (0 = never)

    def network_config(self):
        """The preset's StyleNetConfig with `arch` applied (a clear error for a bad field)."""
        from palmbrush.models import PRESETS, StyleNetConfig

        if self.preset not in PRESETS:
            raise PalmbrushError(f"unknown preset '{self.preset}' (presets: {', '.join(PRESETS)})")
        try:
            return StyleNetConfig.from_dict({**PRESETS[self.preset].to_dict(), **self.arch})
        except TypeError as exc:
            raise PalmbrushError(f"architecture {self.arch}: {exc}") from None

    @property
    def loss_family(self) -> str:
        return self.loss_net.split(":", 1)[0]

    def resolved(self) -> TrainSettings:
        """Fill the defaults that depend on other fields."""
        family = LAYERS.get(self.loss_family, LAYERS["vgg16"])
        return TrainSettings(**{
            **asdict(self),
            "content_layers": self.content_layers or family["content"],
            "style_layers": self.style_layers or family["style"],
            "loss_scale": self.loss_scale or (2 if self.loss_family == "squeezenet" else 1),
            "checkpoint": self.checkpoint or self.out.with_suffix(".ckpt"),
        })  # fmt: skip

    def to_dict(self) -> dict:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}
