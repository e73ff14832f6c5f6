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
import onnx.numpy_helper
import torch
import torch.nn.functional as F
from torch import nn

from palmbrush.atomic import atomic_path, check_target
from palmbrush.errors import PalmbrushError
from palmbrush.models import PRESETS, StyleNet

from . import checkpoint

OPSET = 17


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
    arch = {**PRESETS[preset].to_dict(), **settings.get("arch", {})} if preset in PRESETS else {}
    info = {
        "style": style.replace("_", "-") or "unnamed",
        "painting": style.replace("_", " "),
        "painter": "",
        "preset": preset,
        "architecture": json.dumps(arch) if arch else "",
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
    model = fold_constants(onnx.load_from_string(buffer.getvalue()))
    for info in (*model.graph.input, *model.graph.output):  # the contract: [1, H, W, 3]
        dims = info.type.tensor_type.shape.dim
        dims[0].dim_value, dims[1].dim_param, dims[2].dim_param, dims[3].dim_value = 1, "H", "W", 3
    onnx.helper.set_model_props(model, props)
    with atomic_path(out) as tmp:
        onnx.save_model(model, tmp)


def fold_constants(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace every node computable from constants alone by its value (as an initializer).

    The TorchScript exporter spells each reflection pad as a dozen shape-arithmetic nodes on
    constants; folding them makes the file about a third smaller and any runtime's load faster.
    Values are computed by ONNX's own reference evaluator.
    """
    from onnx.reference import ReferenceEvaluator

    graph = model.graph
    known = {i.name for i in graph.initializer}
    folded = []
    for node in graph.node:
        if node.op_type == "Constant" or (node.input and all(i in known for i in node.input)):
            folded.append(node)
            known.update(node.output)
    kept = [n for n in graph.node if n not in folded]
    needed = {i for n in kept for i in n.input} | {o.name for o in graph.output}
    wanted = [o for n in folded for o in n.output if o in needed]
    if not wanted:
        return model
    sub = onnx.helper.make_graph(
        folded,
        "constants",
        [],
        [onnx.helper.make_empty_tensor_value_info(o) for o in wanted],
        list(graph.initializer),
    )
    values = ReferenceEvaluator(onnx.helper.make_model(sub, opset_imports=model.opset_import))
    arrays = values.run(None, {})
    initializers = [i for i in graph.initializer if i.name in needed]
    initializers += [
        onnx.numpy_helper.from_array(a, o) for o, a in zip(wanted, arrays, strict=True)
    ]
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    onnx.checker.check_model(model)
    return model


def check_model_target(out: Path, inputs, overwrite: bool) -> None:
    """atomic.check_target for a style model file: and it must be named .onnx."""
    check_target(out, inputs, overwrite)
    if out.suffix.lower() != ".onnx":
        raise PalmbrushError(f"{out}: the model to write must be an .onnx file")


def export_checkpoint(ckpt: Path, out: Path, extra: dict | None = None,
                      overwrite: bool = False) -> None:  # fmt: skip
    """A checkpoint as a style model file; the write rule of atomic.check_target holds."""
    check_model_target(out, [ckpt], overwrite)
    state = checkpoint.load(ckpt)
    net = checkpoint.network(state, ckpt)
    settings = state.get("settings") if isinstance(state.get("settings"), dict) else None
    export_net(net, out, metadata(str(state["preset"]), settings, extra))
