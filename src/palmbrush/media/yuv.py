"""The YUV path: a style model wrapped to read and write a codec's yuv420p planes.

Decoders give Y, U and V planes (U and V at half width and height) and encoders take them;
converting each frame to RGB and back outside the model costs a pass over memory each way.
`wrap_yuv()` puts both conversions into the graph as ONNX ops, so every engine (and any ONNX
runtime) runs them, and fast engines fuse them into the first and last layers' gathers
(passes/fuse_yuv.py). The model file users see is unchanged: uint8 RGB in and out.

The arithmetic is FFmpeg's default (swscale, BT.601 limited range), so the YUV path's pictures
equal the RGB path's within a level: on the way in each chroma sample covers its 2x2 pixels,
and the RGB frame is rounded to uint8 as a decoder's would be; on the way out chroma is the
mean of 2 columns and a [1, 3, 3, 1] / 8 filter over rows (edge rows repeated).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..contract import INPUT, OUTPUT
from ..errors import PalmbrushError

PROBE = (38, 54)  # an even frame size (H, W) at which a wrapped model's shapes are checked

PLANES_IN = ("y", "u", "v")  # uint8 [1, H, W], [1, H/2, W/2], [1, H/2, W/2]
PLANES_OUT = ("stylized_y", "stylized_u", "stylized_v")
OFFSETS = np.array([16.0, 128.0, 128.0], np.float32)  # limited range: black Y, grey U and V
TO_RGB = np.array([[1.164383, 0.0, 1.596027],
                   [1.164383, -0.391762, -0.812968],
                   [1.164383, 2.017232, 0.0]], np.float32)  # fmt: skip
# TO_RGB: (Y, U, V) - OFFSETS -> RGB; TO_YUV: RGB -> (Y, U, V) - OFFSETS
TO_YUV = np.array([[0.256788, 0.504129, 0.097906],
                   [-0.148223, -0.290993, 0.439216],
                   [0.439216, -0.367788, -0.071427]], np.float32)  # fmt: skip
ROWS = np.array([1.0, 3.0, 3.0, 1.0], np.float32) / 8  # chroma rows 2i-1 .. 2i+2
COLUMNS = np.array([0.5, 0.5], np.float32)  # chroma columns 2j, 2j+1


class _Builder:
    """Nodes and constants for one side of the wrap, named under yuv/."""

    def __init__(self, inits: list):
        self.nodes, self.inits = [], inits

    def const(self, name: str, array) -> str:
        if not any(i.name == f"yuv/{name}" for i in self.inits):
            self.inits.append(numpy_helper.from_array(np.asarray(array), f"yuv/{name}"))
        return f"yuv/{name}"

    def op(self, kind: str, inputs: list[str], out: str, **attrs) -> str:
        self.nodes.append(helper.make_node(kind, inputs, [out], f"yuv/{out}", **attrs))
        return out


def wrap_yuv(model: onnx.ModelProto) -> onnx.ModelProto:
    """A style model that reads planes PLANES_IN and writes PLANES_OUT (even H and W)."""
    wrapped = onnx.ModelProto()
    wrapped.CopyFrom(model)
    graph = wrapped.graph
    inits: list = []
    pre, post = _Builder(inits), _Builder(inits)
    _to_frame(pre)
    _from_stylized(post)
    del graph.input[:]
    del graph.output[:]
    graph.input.extend(helper.make_tensor_value_info(name, TensorProto.UINT8, shape)
                       for name, shape in zip(PLANES_IN, _shapes()))  # fmt: skip
    graph.output.extend(helper.make_tensor_value_info(name, TensorProto.UINT8, shape)
                        for name, shape in zip(PLANES_OUT, _shapes()))  # fmt: skip
    body = list(graph.node)
    del graph.node[:]
    graph.node.extend(pre.nodes + body + post.nodes)
    graph.initializer.extend(inits)
    return wrapped


def _shapes():
    return [[1, "H", "W"], [1, "H/2", "W/2"], [1, "H/2", "W/2"]]


def _to_frame(b: _Builder) -> None:
    """Planes -> the model's `frame` (uint8 NHWC RGB)."""
    op, const = b.op, b.const
    axis = const("axis1", np.array([1], np.int64))
    y = op("Unsqueeze", [op("Cast", ["y"], "yuv/y_f", to=TensorProto.FLOAT), axis], "yuv/y4")
    uv = op("Concat", [op("Unsqueeze", ["u", axis], "yuv/u4"),
                       op("Unsqueeze", ["v", axis], "yuv/v4")], "yuv/uv", axis=1)  # fmt: skip
    uv = op("Cast", [uv], "yuv/uv_f", to=TensorProto.FLOAT)
    scales = const("up2", np.array([1, 1, 2, 2], np.float32))
    uv = op("Resize", [uv, "", scales], "yuv/uv_up", mode="nearest", nearest_mode="floor",
            coordinate_transformation_mode="asymmetric")  # fmt: skip
    yuv = op("Concat", [y, uv], "yuv/yuv", axis=1)  # (1, 3, H, W)
    weight = const("to_rgb", TO_RGB.reshape(3, 3, 1, 1))
    rgb = op("Conv", [yuv, weight, const("to_rgb_bias", -TO_RGB @ OFFSETS)], "yuv/rgb")
    rgb = op("Clip", [op("Round", [rgb], "yuv/rgb_round"), const("low", np.float32(0)),
                      const("high", np.float32(255))], "yuv/rgb_clip")  # fmt: skip
    nhwc = op("Transpose", [rgb], "yuv/rgb_nhwc", perm=[0, 2, 3, 1])
    op("Cast", [nhwc], INPUT, to=TensorProto.UINT8)


def _from_stylized(b: _Builder) -> None:
    """The model's `stylized` (uint8 NHWC RGB) -> planes."""
    op, const = b.op, b.const
    rgb = op("Cast", [OUTPUT], "yuv/out_f", to=TensorProto.FLOAT)
    rgb = op("Transpose", [rgb], "yuv/out_nchw", perm=[0, 3, 1, 2])  # (1, 3, H, W)
    y = op("Conv", [rgb, const("to_y", TO_YUV[:1].reshape(1, 3, 1, 1)),
                    const("y_bias", OFFSETS[:1])], "yuv/out_y")  # fmt: skip
    window = TO_YUV[1:, :, None, None] * np.outer(ROWS, COLUMNS)  # (2, 3, 4, 2)
    pads = const("edge_rows", np.array([0, 0, 1, 0, 0, 0, 1, 0], np.int64))
    padded = op("Pad", [rgb, pads], "yuv/out_padded", mode="edge")
    uv = op("Conv", [padded, const("to_uv", window.astype(np.float32)),
                     const("uv_bias", OFFSETS[1:])], "yuv/out_uv", strides=[2, 2])  # fmt: skip
    low, high = const("low", np.float32(0)), const("high", np.float32(255))
    axis = const("axis1", np.array([1], np.int64))
    for name, value, outputs in (("y", y, PLANES_OUT[:1]), ("uv", uv, PLANES_OUT[1:])):
        value = op("Clip", [op("Round", [value], f"yuv/{name}_round"), low, high],
                   f"yuv/{name}_clip")  # fmt: skip
        value = op("Cast", [value], f"yuv/{name}_u8", to=TensorProto.UINT8)
        if len(outputs) == 1:
            op("Squeeze", [value, axis], outputs[0])
        else:
            split = [op("Slice", [value, const(f"{n}_start", np.array([i], np.int64)),
                                  const(f"{n}_end", np.array([i + 1], np.int64)), axis],
                        f"yuv/{n}_slice") for i, n in enumerate("uv")]  # fmt: skip
            for part, out in zip(split, outputs):
                op("Squeeze", [part, axis], out)


def load_planes(path, model: onnx.ModelProto, engines, threads, cache_bytes):
    """`model` (a checked style model) wrapped and loaded: (Y, U, V) planes -> planes."""
    from ..runtime import load

    predictor = load(wrap_yuv(model).SerializeToString(), engines=engines, threads=threads,
                     plan_cache_bytes=cache_bytes)  # fmt: skip
    height, width = PROBE
    probe = dict(zip(PLANES_IN, [(1, height, width)] + [(1, height // 2, width // 2)] * 2))
    shapes = predictor.shapes(probe)
    if [shapes[o].shape for o in PLANES_OUT] != list(probe.values()):
        raise PalmbrushError(f"{path}: does not keep the frame's size on the YUV path")

    def run(planes: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple:
        out = predictor.run({name: p[None] for name, p in zip(PLANES_IN, planes)})
        return tuple(out[name][0] for name in PLANES_OUT)

    run.predictor = predictor
    return run
