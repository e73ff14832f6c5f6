"""Build src/palmbrush/samples/tiny_stylenet.onnx: a small, untrained style-network-shaped model.

It follows the style model contract (uint8 frame in, uint8 stylized out, any size, pre- and
post-processing inside the graph) with seeded random weights, so the runtime has a bundled
model to inspect, run and benchmark before any style is trained.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = Path(__file__).resolve().parents[1] / "src/palmbrush/samples/tiny_stylenet.onnx"


class Builder:
    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.count = [], [], 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def const(self, array: np.ndarray, prefix: str = "c") -> str:
        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op: str, inputs: list[str], **attrs) -> str:
        out = self.name(op.lower() + "_")
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int = 1, pad_reflect: bool = True):
        if pad_reflect and k > 1:
            p = k // 2
            x = self.op(
                "Pad", [x, self.const(np.array([0, 0, p, p, 0, 0, p, p]), "pads")], mode="reflect"
            )
        w = self.rng.normal(0, np.sqrt(2 / (cin * k * k)), (cout, cin, k, k)).astype(np.float32)
        b = np.zeros(cout, np.float32)
        pads = [0] * 4 if pad_reflect else [k // 2] * 4
        return self.op(
            "Conv",
            [x, self.const(w, "w"), self.const(b, "b")],
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=pads,
        )

    def norm_relu(self, x: str, c: int, relu: bool = True) -> str:
        scale = self.const(np.ones(c, np.float32), "gamma")
        shift = self.const(np.zeros(c, np.float32), "beta")
        x = self.op("InstanceNormalization", [x, scale, shift], epsilon=1e-5)
        return self.op("Relu", [x]) if relu else x


def build() -> onnx.ModelProto:
    b = Builder()
    x = b.op("Cast", ["frame"], to=TensorProto.FLOAT)
    x = b.op("Transpose", [x], perm=[0, 3, 1, 2])  # (1, 3, H, W)
    x = b.op("Div", [x, b.const(np.array(255, np.float32))])
    hw = b.op("Slice", [b.op("Shape", ["frame"]), b.const(np.array([1])), b.const(np.array([3]))])
    x = b.norm_relu(b.conv(x, 3, 8, 9), 8)
    x = b.norm_relu(b.conv(x, 8, 16, 3, stride=2, pad_reflect=False), 16)
    r = b.norm_relu(b.conv(x, 16, 16, 3), 16)
    r = b.norm_relu(b.conv(r, 16, 16, 3), 16, relu=False)
    x = b.op("Add", [x, r])
    sizes = b.op("Concat", [b.const(np.array([1, 16])), hw], axis=0)
    x = b.op("Resize", [x, "", "", sizes], mode="nearest")  # back to (1, 16, H, W)
    x = b.norm_relu(b.conv(x, 16, 8, 3), 8)
    x = b.op("Sigmoid", [b.conv(x, 8, 3, 9)])
    x = b.op("Mul", [x, b.const(np.array(255, np.float32))])
    x = b.op(
        "Clip",
        [b.op("Round", [x]), b.const(np.array(0, np.float32)), b.const(np.array(255, np.float32))],
    )
    x = b.op("Transpose", [x], perm=[0, 2, 3, 1])
    b.nodes.append(
        helper.make_node("Cast", [x], ["stylized"], name="to_uint8", to=TensorProto.UINT8)
    )
    graph = helper.make_graph(
        b.nodes,
        "tiny_stylenet",
        [helper.make_tensor_value_info("frame", TensorProto.UINT8, [1, "H", "W", 3])],
        [helper.make_tensor_value_info("stylized", TensorProto.UINT8, [1, "H", "W", 3])],
        b.inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="palmbrush"
    )
    model.ir_version = 8
    helper.set_model_props(
        model, {"style": "untrained sample (seeded random weights)", "licence": "MIT"}
    )
    onnx.checker.check_model(model, full_check=True)
    return model


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(build(), OUT)
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes)", file=sys.stderr)
