"""Seeded, untrained style-network-shaped ONNX models, built with onnx.helper (no PyTorch).

They follow the style model contract (uint8 frame in, uint8 stylized out, any size >= 32,
pre- and post-processing inside the graph) so the runtime has real models to inspect, run
and benchmark before any style is trained. `tiny_stylenet.onnx` ships in the package.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SAMPLE_PATH = Path(__file__).with_name("tiny_stylenet.onnx")


class _Builder:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def const(self, array, prefix: str = "c") -> str:
        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op: str, inputs: list[str], **attrs) -> str:
        out = self.name(op.lower() + "_")
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int = 1) -> str:
        """Reflection padding (zero padding for strided convs), then a convolution."""
        pads = [0] * 4
        if stride == 1 and k > 1:
            p = np.array([0, 0, k // 2, k // 2, 0, 0, k // 2, k // 2])
            x = self.op("Pad", [x, self.const(p, "pads")], mode="reflect")
        elif k > 1:
            pads = [k // 2] * 4
        w = self.rng.normal(0, np.sqrt(2 / (cin * k * k)), (cout, cin, k, k)).astype(np.float32)
        b = self.rng.normal(0, 0.01, cout).astype(np.float32)
        inputs = [x, self.const(w, "w"), self.const(b, "b")]
        return self.op("Conv", inputs, kernel_shape=[k, k], strides=[stride] * 2, pads=pads)

    def norm(self, x: str, c: int, relu: bool = True) -> str:
        scale = self.const(self.rng.uniform(0.8, 1.2, c).astype(np.float32), "gamma")
        shift = self.const(self.rng.normal(0, 0.1, c).astype(np.float32), "beta")
        x = self.op("InstanceNormalization", [x, scale, shift], epsilon=1e-5)
        return self.op("Relu", [x]) if relu else x


def stylenet(widths=(8, 16), blocks: int = 1, outer: int = 9, seed: int = 0) -> onnx.ModelProto:
    """A Johnson-style network: len(widths)-1 stride-2 downsamplings, residual blocks,
    nearest 2x upsampling + conv back up, and a crop to the input size."""
    b = _Builder(seed)
    x = b.op("Cast", ["frame"], to=TensorProto.FLOAT)
    x = b.op("Transpose", [x], perm=[0, 3, 1, 2])  # (1, 3, H, W)
    x = b.op("Div", [x, b.const(np.array(255, np.float32))])
    hw = b.op("Slice", [b.op("Shape", ["frame"]), b.const(np.array([1])), b.const(np.array([3]))])
    x = b.norm(b.conv(x, 3, widths[0], outer), widths[0])
    for cin, cout in pairwise(widths):
        x = b.norm(b.conv(x, cin, cout, 3, stride=2), cout)
    c = widths[-1]
    for _ in range(blocks):
        r = b.norm(b.conv(b.norm(b.conv(x, c, c, 3), c), c, c, 3), c, relu=False)
        x = b.op("Add", [x, r])
    for cin, cout in pairwise(widths[::-1]):
        scales = b.const(np.array([1, 1, 2, 2], np.float32), "scales")
        x = b.op("Resize", [x, "", scales], mode="nearest")
        x = b.norm(b.conv(x, cin, cout, 3), cout)
    x = b.conv(x, widths[0], 3, outer)
    starts, axes = b.const(np.array([0, 0])), b.const(np.array([2, 3]))
    x = b.op("Slice", [x, starts, hw, axes])  # (1, 3, H, W): undo the strides' rounding up
    x = b.op("Mul", [b.op("Sigmoid", [x]), b.const(np.array(255, np.float32))])
    lo, hi = b.const(np.array(0, np.float32)), b.const(np.array(255, np.float32))
    x = b.op("Transpose", [b.op("Clip", [b.op("Round", [x]), lo, hi])], perm=[0, 2, 3, 1])
    cast = helper.make_node("Cast", [x], ["stylized"], name="to_uint8", to=TensorProto.UINT8)
    b.nodes.append(cast)
    frame = [1, "H", "W", 3]
    graph = helper.make_graph(
        b.nodes,
        "stylenet",
        [helper.make_tensor_value_info("frame", TensorProto.UINT8, frame)],
        [helper.make_tensor_value_info("stylized", TensorProto.UINT8, frame)],
        b.inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="palmbrush"
    )
    model.ir_version = 8
    props = {"style": "untrained (seeded random weights)", "architecture": f"{widths}x{blocks}"}
    helper.set_model_props(model, props)
    onnx.checker.check_model(model, full_check=True)
    return model
