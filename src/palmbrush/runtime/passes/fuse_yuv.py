"""Fold the YUV path's conversions (media/yuv.py) into one node each, then into the gathers:

# Cast(u8) . Transpose . Clip(0, 255) . Round . Conv1x1(W, B) . Concat(Unsqueeze(Cast(y)),
#   Resize(nearest, 2x, Cast(Concat(Unsqueeze(u), Unsqueeze(v)))))  =>  YUVToImage(y, u, v, W, B)
# Transpose(Cast(frame)) -> Conv1x1(Wy, By) and Conv(Pad(edge rows), Wuv, Buv, stride 2), each
#   Round . Clip . Cast(u8), Squeezed (and Sliced)  =>  ImageToYUV(frame, Wy, By, Wuv, Buv)
# FromImage(YUVToImage(...))  =>  FromYUV(...)       ImageToYUV(ToImage(x))  =>  ToYUV(x, ...)

Fast engines then read the codec's planes in the first layer's gather and write them in the
last one's, with no RGB frame in between. Any other arrangement of the same ops is left alone.
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Node, Value
from .common import const, input_at, only_consumer, producer

FLOAT, UINT8 = 1, 2  # ONNX TensorProto element types
TO_NHWC, TO_NCHW = [0, 2, 3, 1], [0, 3, 1, 2]
EDGE_ROWS = [0, 0, 1, 0, 0, 0, 1, 0]  # one row above and one below


def fuse_yuv_in(graph: Graph) -> int:
    fused = 0
    for cast in [n for n in graph.nodes if n.op == "Cast" and n.attrs.get("to") == UINT8]:
        found = _planes_to_frame(graph, cast)
        if found is None:
            continue
        (y, u, v, w, b), absorbed = found
        node = Node("YUVToImage", [y, u, v, w, b], list(cast.outputs), {}, f"{cast.name}/yuv",
                    "palmbrush")  # fmt: skip
        _replace(graph, absorbed, node)
        fused += 1
    return fused


def _planes_to_frame(graph: Graph, cast: Node):
    """The planes and weights of a YUVToImage ending at `cast`, and its nodes; else None."""
    chain = _back(graph, cast, ["Transpose", "Clip", "Round", "Conv", "Concat"])
    if chain is None:
        return None
    transpose, clip, _, conv, concat = chain
    if transpose.attrs.get("perm") != TO_NHWC or not _clips_levels(graph, clip):
        return None
    if not _is_window(graph, conv, (3, 3, 1, 1), 3) or concat.attrs.get("axis") != 1:
        return None
    if len(concat.inputs) != 2:
        return None
    luma = _back(graph, concat, ["Unsqueeze", "Cast"], at=0)
    chroma = _back(graph, concat, ["Resize", "Cast", "Concat"], at=1)
    if luma is None or chroma is None or not _axis1(graph, luma[0]):
        return None
    resize, to_float, pair = chroma
    if not (_float(luma[1]) and _float(to_float) and _doubles(graph, resize)):
        return None
    if pair.attrs.get("axis") != 1 or len(pair.inputs) != 2:
        return None
    halves = [producer(graph, name) for name in pair.inputs]
    if any(h is None or h.op != "Unsqueeze" or not _axis1(graph, h) for h in halves):
        return None
    if any(only_consumer(graph, h.outputs[0]) is not pair for h in halves):
        return None
    planes = [luma[1].inputs[0], *(h.inputs[0] for h in halves)]
    nodes = [cast, *chain, *luma, *chroma, *halves]
    return (*planes, conv.inputs[1], conv.inputs[2]), nodes


def fuse_yuv_out(graph: Graph) -> int:
    fused = 0
    for transpose in [n for n in graph.nodes if n.op == "Transpose"]:
        found = _frame_to_planes(graph, transpose)
        if found is None:
            continue
        inputs, outputs, absorbed = found
        node = Node("ImageToYUV", inputs, outputs, {}, f"{transpose.name}/yuv", "palmbrush")
        _replace(graph, absorbed, node)
        fused += 1
    return fused


def _frame_to_planes(graph: Graph, transpose: Node):
    """The inputs, outputs and nodes of an ImageToYUV starting at `transpose`; else None."""
    cast = producer(graph, transpose.inputs[0])
    if transpose.attrs.get("perm") != TO_NCHW or cast is None or not _float(cast):
        return None
    if only_consumer(graph, cast.outputs[0]) is not transpose:
        return None
    readers = sorted((n for n in graph.nodes if transpose.outputs[0] in n.inputs),
                     key=lambda n: n.op)  # fmt: skip
    if [n.op for n in readers] != ["Conv", "Pad"]:
        return None
    conv_y, pad = readers
    conv_uv = only_consumer(graph, pad.outputs[0])
    if not _is_window(graph, conv_y, (1, 3, 1, 1), 1) or not _edge_rows(graph, pad):
        return None
    if conv_uv is None or conv_uv.op != "Conv" or input_at(conv_uv, 0) != pad.outputs[0]:
        return None
    if not _is_window(graph, conv_uv, (2, 3, 4, 2), 2, strides=[2, 2]):
        return None
    y_nodes = _forward(graph, conv_y, ["Round", "Clip", "Cast", "Squeeze"])
    uv_nodes = _forward(graph, conv_uv, ["Round", "Clip", "Cast"])
    if y_nodes is None or uv_nodes is None or not _levels_out(graph, y_nodes, uv_nodes):
        return None
    split = _split(graph, uv_nodes[-1])
    if split is None:
        return None
    outputs = [y_nodes[-1].outputs[0], *(s.outputs[0] for s in split[2:])]
    inputs = [cast.inputs[0], *conv_y.inputs[1:3], *conv_uv.inputs[1:3]]
    nodes = [cast, transpose, pad, conv_y, conv_uv, *y_nodes, *uv_nodes, *split]
    return inputs, outputs, nodes


def _levels_out(graph: Graph, y_nodes: list[Node], uv_nodes: list[Node]) -> bool:
    """Both ends Round -> Clip(0, 255) -> Cast(uint8), and the Y plane's Squeeze of axis 1."""
    for nodes in (y_nodes, uv_nodes):
        if not _clips_levels(graph, nodes[1]) or nodes[2].attrs.get("to") != UINT8:
            return False
    return _axis1(graph, y_nodes[3])


def _split(graph: Graph, cast: Node) -> list[Node] | None:
    """[slice U, slice V, squeeze U, squeeze V] reading channels 0 and 1 of `cast`."""
    slices = sorted((n for n in graph.nodes if cast.outputs[0] in n.inputs),
                    key=lambda n: _ints(graph, input_at(n, 1)) or [])  # fmt: skip
    if len(slices) != 2 or any(s.op != "Slice" for s in slices):
        return None
    for i, s in enumerate(slices):
        ends = [_ints(graph, input_at(s, k)) for k in (1, 2, 3)]
        if ends != [[i], [i + 1], [1]] or input_at(s, 4):
            return None
    squeezes = [only_consumer(graph, s.outputs[0]) for s in slices]
    if any(q is None or q.op != "Squeeze" or not _axis1(graph, q) for q in squeezes):
        return None
    return [*slices, *squeezes]


def fuse_yuv_gathers(graph: Graph) -> int:
    fused = 0
    for node in [n for n in graph.nodes if n.op == "YUVToImage"]:
        reader = _gather_reader(graph, node)
        if reader is None:
            continue
        fused_node = Node(
            "FromYUV",
            list(node.inputs),
            list(reader.outputs),
            {"scale": reader.attrs["scale"]},
            f"{reader.name}/yuv",
            "palmbrush",
        )
        _replace(graph, [node, reader], fused_node)  # fmt: skip
        fused += 1
    for node in [n for n in graph.nodes if n.op == "ImageToYUV"]:
        image = producer(graph, node.inputs[0])
        if image is None or image.op != "ToImage" or image.attrs.get("perm") != TO_NHWC:
            continue
        if only_consumer(graph, image.outputs[0]) is not node:
            continue
        attrs = {k: image.attrs[k] for k in ("scale", "low", "high")}
        fused_node = Node("ToYUV", [image.inputs[0], *node.inputs[1:]], list(node.outputs),
                          attrs, f"{image.name}/yuv", "palmbrush")  # fmt: skip
        _replace(graph, [image, node], fused_node)
        fused += 1
    return fused


def _gather_reader(graph: Graph, node: Node) -> Node | None:
    """The FromImage reading YUVToImage `node`, once every other reader (Shape, as exporters
    write for padding) reads the shape from the Y plane instead:
    # Shape(frame)  =>  Concat(Shape(y), [3])"""
    frame = node.outputs[0]
    if frame in graph.outputs:
        return None
    readers = [n for n in graph.nodes if frame in n.inputs]
    images = [n for n in readers if n.op == "FromImage" and n.attrs.get("perm") == TO_NCHW]
    shapes = [n for n in readers if n.op == "Shape" and not n.attrs.get("start") and
              n.attrs.get("end") is None]  # fmt: skip
    if len(images) != 1 or len(images) + len(shapes) != len(readers):
        return None
    if images[0].inputs.count(frame) != 1:
        return None
    three = f"{frame}/channels"
    graph.values[three] = Value(three, np.dtype(np.int64), (1,), np.array([3], np.int64))
    for shape in shapes:
        planes = f"{shape.outputs[0]}/planes"
        graph.values[planes] = Value(planes, np.dtype(np.int64), (3,))
        at = graph.nodes.index(shape)
        graph.nodes[at] = Node("Shape", [node.inputs[0]], [planes], {}, shape.name)
        graph.nodes.insert(at + 1, Node("Concat", [planes, three], list(shape.outputs),
                                        {"axis": 0}, f"{shape.name}/channels"))  # fmt: skip
    return images[0]


# ---- matching helpers ---------------------------------------------------------------------


def _back(graph: Graph, node: Node, ops: list[str], at: int = 0) -> list[Node] | None:
    """The producers of `node` (input `at`, then each one's first input) with these ops, each
    read only by the next; None if the chain differs."""
    chain, current, index = [], node, at
    for op in ops:
        before = producer(graph, input_at(current, index))
        if before is None or before.op != op:
            return None
        if only_consumer(graph, before.outputs[0]) is not current:
            return None
        chain.append(before)
        current, index = before, 0
    return chain


def _forward(graph: Graph, node: Node, ops: list[str]) -> list[Node] | None:
    chain, current = [], node
    for op in ops:
        after = only_consumer(graph, current.outputs[0])
        if after is None or after.op != op or input_at(after, 0) != current.outputs[0]:
            return None
        chain.append(after)
        current = after
    return chain


def _replace(graph: Graph, nodes: list[Node], node: Node) -> None:
    """`node` in place of `nodes` (where the first of them in graph order was)."""
    first = min(graph.nodes.index(n) for n in nodes)
    graph.nodes[first] = node
    gone = {id(n) for n in nodes}
    graph.nodes[:] = [n for n in graph.nodes if id(n) not in gone]


def _ints(graph: Graph, name: str) -> list[int] | None:
    value = const(graph, name)
    return None if value is None else [int(v) for v in np.ravel(value)]


def _axis1(graph: Graph, node: Node) -> bool:
    axes = _ints(graph, input_at(node, 1))
    return axes == [1] or (axes is None and node.attrs.get("axes") in ([1], (1,)))


def _float(node: Node) -> bool:
    return node.op == "Cast" and node.attrs.get("to") == FLOAT


def _clips_levels(graph: Graph, clip: Node) -> bool:
    low, high = const(graph, input_at(clip, 1)), const(graph, input_at(clip, 2))
    return low is not None and high is not None and float(low) == 0 and float(high) == 255


def _doubles(graph: Graph, resize: Node) -> bool:
    """Resize nearest (floor, asymmetric) by exactly 2 on H and W."""
    a = resize.attrs
    scales = const(graph, input_at(resize, 2))
    return (a.get("mode") == "nearest" and a.get("nearest_mode") == "floor"
            and a.get("coordinate_transformation_mode") == "asymmetric"
            and scales is not None and [float(s) for s in scales] == [1, 1, 2, 2]
            and not input_at(resize, 3))  # fmt: skip


def _is_window(graph: Graph, conv: Node, shape: tuple, outputs: int, strides=None) -> bool:
    """A Conv of constant weights of `shape` and bias, no padding, dilation or groups."""
    w, b = const(graph, input_at(conv, 1)), const(graph, input_at(conv, 2))
    a = conv.attrs
    plain = (
        a.get("group", 1) == 1
        and not any(a.get("pads") or [])
        and a.get("auto_pad", "NOTSET") == "NOTSET"
        and all(d == 1 for d in a.get("dilations") or [])
    )
    return (plain and w is not None and w.shape == shape and w.dtype == np.float32
            and b is not None and b.shape == (outputs,)
            and list(a.get("strides") or [1, 1]) == (strides or [1, 1]))  # fmt: skip


def _edge_rows(graph: Graph, pad: Node) -> bool:
    return pad.attrs.get("mode") == "edge" and _ints(graph, input_at(pad, 1)) == EDGE_ROWS and \
        not input_at(pad, 2) and not input_at(pad, 3)  # fmt: skip
