"""Filters appended to a style model's graph, so every engine (and any ONNX runtime) runs them.

A style model maps `frame` (uint8 [1, H, W, 3]) to `stylized` (the same). `wrap()` returns a
model with the same contract that also:
- runs the network at a lower resolution (`scale`, or `max_size` on the longer side) and
  upscales its output back (bilinear);
- keeps the original colours (`preserve_color`): the result is the original plus the change
  in luma (BT.601), which is exactly "stylized luma, original chroma" in YCbCr;
- blends with the original (`strength` 0..1).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..contract import INPUT, MIN_SIDE, OUTPUT
from ..errors import PalmbrushError
from ..runtime.memory import PLAN_CACHE_BYTES

LUMA = np.array([[0.299], [0.587], [0.114]], np.float32)  # BT.601, RGB -> Y
PROBE = (1, 37, 53, 3)  # an odd frame size at which a loaded style model's shapes are checked


def read_style_model(path: Path) -> onnx.ModelProto:
    """A style model file, checked against the contract (input 'frame', output 'stylized')."""
    from ..runtime.onnx_io import parse_model

    if not path.is_file():
        raise PalmbrushError(f"{path}: no such style model file")
    model = parse_model(path.read_bytes(), str(path))
    inputs, outputs = [i.name for i in model.graph.input], [o.name for o in model.graph.output]
    if inputs != [INPUT] or outputs != [OUTPUT]:
        raise PalmbrushError(f"{path}: not a style model (needs input 'frame' and output "
                             f"'stylized', has {inputs} -> {outputs})")  # fmt: skip
    return model


def load_style(spec: str | Path, engines: str | None = None, threads: int | None = None,
               cache_bytes: int = PLAN_CACHE_BYTES, colour: str = "rgb",
               **filters) -> Callable[[np.ndarray], np.ndarray]:  # fmt: skip
    """A built-in style name or a style model file, checked, wrapped with `filters` (wrap's
    keywords) and loaded: a function (H, W, 3) uint8 -> the painting, the same shape.
    cache_bytes: its share of memory for the plans of the frame sizes it has seen.
    colour='yuv420p': a function of (Y, U, V) planes -> planes instead (yuv.py)."""
    from ..runtime import load
    from ..styles import resolve

    path = resolve(spec)
    model = wrap(read_style_model(path), **filters)
    if colour == "yuv420p":
        from .yuv import load_planes

        return load_planes(path, model, engines, threads, cache_bytes)
    predictor = load(model.SerializeToString(), engines=engines, threads=threads,
                     plan_cache_bytes=cache_bytes)  # fmt: skip
    _check_shapes(path, predictor)

    def run(frame: np.ndarray) -> np.ndarray:
        out = predictor.run({INPUT: frame[None]})[OUTPUT]
        if out.shape != frame[None].shape:
            given, got = _size(frame[None].shape), _size(out.shape)
            raise PalmbrushError(f"{path}: gave a {got} picture for a {given} frame")
        return out[0]

    run.predictor = predictor  # for inspection: its plan, its plan cache
    return run


def _check_shapes(path: Path, predictor) -> None:
    """The contract at a probe size: uint8 [1, H, W, 3] in, the same shape and type out."""
    source = predictor.inputs[0]
    if source.dtype != np.uint8 or source.shape is None or len(source.shape) != 4:
        raise PalmbrushError(f"{path}: input '{INPUT}' must be uint8 [1, H, W, 3]")
    out = predictor.shapes({INPUT: PROBE})[OUTPUT]
    if out.dtype != np.uint8 or out.shape != PROBE:
        got = f"{out.dtype} {list(out.shape or [])}"
        raise PalmbrushError(f"{path}: gives {got} for a uint8 {list(PROBE)} frame; a style "
                             "model keeps the frame's size")  # fmt: skip


def _size(shape: tuple) -> str:
    return f"{shape[2]}x{shape[1]}" if len(shape) == 4 else str(list(shape))


def wrap(model: onnx.ModelProto, strength: float = 1.0, preserve_color: bool = False,
         scale: float = 1.0, max_size: int | None = None) -> onnx.ModelProto:  # fmt: skip
    """`model` with the filters appended (the model itself is not changed)."""
    if not 0.0 <= strength <= 1.0:
        raise PalmbrushError(f"strength must be between 0 and 1, got {strength}")
    if not 0.0 < scale <= 1.0:
        raise PalmbrushError(f"scale must be in (0, 1], got {scale}")
    if max_size is not None and max_size < MIN_SIDE:
        raise PalmbrushError(f"max-size must be at least {MIN_SIDE}, got {max_size}")
    resized = scale < 1.0 or max_size is not None
    if strength == 1.0 and not preserve_color and not resized:
        return model
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    (frame,), (stylized,) = [i.name for i in graph.input], [o.name for o in graph.output]
    network = list(graph.node)
    del graph.node[:]  # rebuilt in order: filters before, the network, filters after
    b = _Builder(graph)
    raw = _rename(network, stylized, "pb/raw")
    original = b.node("Cast", [frame], to=TensorProto.FLOAT)
    if resized:  # the network reads the downscaled frame
        _rename(network, frame, _downscale(b, frame, original, scale, max_size))
    graph.node.extend(network)
    result = b.node("Cast", [raw], to=TensorProto.FLOAT)
    if resized:
        full = b.node("Shape", [frame])
        result = b.node("Resize", [result, "", "", full], mode="linear")
    if preserve_color:
        luma = b.const("pb/luma", LUMA)
        change = b.node(
            "Sub", [b.node("MatMul", [result, luma]), b.node("MatMul", [original, luma])]
        )
        result = b.node("Add", [original, change])
    if strength < 1.0:
        difference = b.node("Sub", [result, original])
        amount = b.const("pb/strength", np.float32(strength))
        result = b.node("Add", [original, b.node("Mul", [difference, amount])])
    low, high = b.const("pb/0", np.float32(0)), b.const("pb/255", np.float32(255))
    clipped = b.node("Clip", [b.node("Round", [result]), low, high])
    b.node("Cast", [clipped], to=TensorProto.UINT8, out=stylized)
    return out


def _downscale(b: _Builder, frame: str, original: str, scale: float, max_size: int | None) -> str:
    """The frame resized so its sides are `scale` times (and the longer at most max_size),
    never below MIN_SIDE; computed in the graph from the frame's shape."""
    shape = b.node("Cast", [b.node("Shape", [frame])], to=TensorProto.FLOAT)
    hw = b.node("Slice", [shape, b.const("pb/1", np.array([1])), b.const("pb/3", np.array([3]))])
    factor = b.const("pb/scale", np.array([scale], np.float32))
    if max_size is not None:
        limit = b.node("Div", [b.const("pb/max", np.array([max_size], np.float32)),
                                b.node("ReduceMax", [hw], keepdims=1)])  # fmt: skip
        factor = b.node("Min", [factor, limit])
    floor = b.const("pb/min", np.float32(MIN_SIDE))
    target = b.node("Max", [b.node("Floor", [b.node("Mul", [hw, factor])]),
                            b.node("Min", [hw, floor])])  # fmt: skip
    one = b.const("pb/one", np.array([1], np.int64))
    three = b.const("pb/three", np.array([3], np.int64))
    sizes = b.node("Concat", [one, b.node("Cast", [target], to=TensorProto.INT64), three], axis=0)
    small = b.node("Resize", [original, "", "", sizes], mode="linear")
    rounded = b.node("Clip", [b.node("Round", [small]), b.const("pb/lo", np.float32(0)),
                              b.const("pb/hi", np.float32(255))])  # fmt: skip
    return b.node("Cast", [rounded], to=TensorProto.UINT8)


class _Builder:
    """Appends nodes with fresh names to a graph."""

    def __init__(self, graph: onnx.GraphProto):
        self.graph = graph
        self.count = 0

    def node(self, op: str, inputs: list[str], out: str | None = None, **attrs) -> str:
        self.count += 1
        name = out or f"pb/{op.lower()}_{self.count}"
        self.graph.node.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def const(self, name: str, value) -> str:
        self.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
        return name


def _rename(nodes, old: str, new: str) -> str:
    """Every use and definition of value `old` in `nodes` becomes `new`."""
    for node in nodes:
        node.input[:] = [new if i == old else i for i in node.input]
        node.output[:] = [new if o == old else o for o in node.output]
    return new
