"""Export a trained network as a portable style model file (ONNX).

The contract (../shared/ARCHITECTURE.md): input `frame` uint8 [1, H, W, 3], output `stylized`
uint8 [1, H, W, 3], pre- and post-processing inside the graph, any H, W >= 32 (the graph pads
to a multiple of the network's downsampling and crops back), metadata in metadata_props.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import onnx
import torch
import torch.nn.functional as F
from torch import nn

from palmbrush.atomic import atomic_path
from palmbrush.models import PRESETS, StyleNet, StyleNetConfig
from palmbrush.runtime.errors import PalmbrushError

from . import checkpoint

OPSET = 17
MIN_SIDE = 32


class Portable(nn.Module):
    """uint8 frame in, uint8 painting out: everything between lives in the graph."""

    def __init__(self, net: StyleNet):
        super().__init__()
        self.net = net.eval()

    def forward(self, frame: torch.Tensor) -> torch.Tensor:  # (1, H, W, 3) uint8
        x = frame.permute(0, 3, 1, 2).float() / 255  # (1, 3, H, W)
        h, w = x.shape[2], x.shape[3]
        f = self.net.cfg.factor
        x = F.pad(x, (0, (f - w % f) % f, 0, (f - h % f) % f), mode="reflect")
        y = self.net(x)[:, :, :h, :w]  # (1, 3, H, W) in [0, 1]
        y = torch.clamp(torch.round(y * 255), 0, 255)
        return y.permute(0, 2, 3, 1).to(torch.uint8)  # (1, H, W, 3)


def metadata(preset: str, settings: dict | None, extra: dict | None = None) -> dict[str, str]:
    settings = settings or {}
    style = Path(settings.get("style", "")).stem
    info = {
        "style": style.replace("_", "-") or "unnamed",
        "painting": style.replace("_", " "),
        "painter": "",
        "preset": preset,
        "architecture": json.dumps(PRESETS[preset].to_dict()) if preset in PRESETS else "",
        "training": json.dumps({k: v for k, v in settings.items() if k not in ("out",)}),
        "licence": "model weights: CC0; see the painting's own licence",
        "producer": "palmbrush",
    }
    info.update(extra or {})
    return info


def export_preset(preset: str, out: Path, seed: int = 0) -> Path:
    """A preset with seeded random weights, exported (benchmarks: speed does not depend on
    the weights, and PyTorch eager rebuilds the same net from the same seed)."""
    torch.manual_seed(seed)
    export_net(StyleNet(PRESETS[preset]).eval(), out, metadata(preset, {}))
    return out


def export_net(net: StyleNet, out: Path, props: dict[str, str]) -> None:
    """Trace the portable wrapper to ONNX with dynamic H and W; write atomically."""
    wrapper = Portable(net.to("cpu").to(memory_format=torch.contiguous_format))
    example = torch.zeros(1, 64, 64, 3, dtype=torch.uint8)
    buffer = io.BytesIO()
    axes = {"frame": {1: "H", 2: "W"}, "stylized": {1: "H", 2: "W"}}
    with warnings.catch_warnings():  # the TorchScript exporter is chatty about what it keeps
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, (example,), buffer, input_names=["frame"],
                          output_names=["stylized"], opset_version=OPSET, dynamic_axes=axes,
                          dynamo=False)  # fmt: skip
    model = onnx.load_from_string(buffer.getvalue())
    for info in (*model.graph.input, *model.graph.output):  # the contract: [1, H, W, 3]
        dims = info.type.tensor_type.shape.dim
        dims[0].dim_value, dims[1].dim_param, dims[2].dim_param, dims[3].dim_value = 1, "H", "W", 3
    onnx.helper.set_model_props(model, props)
    with atomic_path(out) as tmp:
        onnx.save_model(model, tmp)


def export_checkpoint(ckpt: Path, out: Path, extra: dict | None = None) -> None:
    state = checkpoint.load(ckpt)
    net = StyleNet(StyleNetConfig.from_dict(state["config"]))
    net.load_state_dict(state["model"])
    if not out.parent.is_dir():
        raise PalmbrushError(f"output folder does not exist: {out.parent}")
    export_net(net, out, metadata(state["preset"], state.get("settings"), extra))
