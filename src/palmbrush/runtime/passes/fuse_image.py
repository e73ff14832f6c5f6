"""Fold a style model's uint8 pre- and post-processing into one node each:

# Transpose(frame) -> Cast(float32) -> Div(s)  =>  FromImage(perm, scale=s)
# Mul(x, s) -> Round -> Clip(lo, hi) -> Transpose -> Cast(uint8)  =>  ToImage(perm, s, lo, hi)

(the Transpose is optional in both). Fast engines then convert a frame in one pass, straight
between the NHWC uint8 frame and their channels-last tensors.
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from .common import absorb, const, input_at, only_consumer, producer

FLOAT, UINT8 = 1, 2  # ONNX TensorProto element types


def fuse_from_image(graph: Graph) -> int:
    fused = 0
    for div in [n for n in graph.nodes if n.op == "Div"]:
        scale = _scalar(graph, input_at(div, 1))
        chain = _chain_back(graph, div)  # [first, ..., div], Transpose before or after the Cast
        if scale is None or [n.op for n in chain if n.op != "Transpose"] != ["Cast", "Div"]:
            continue
        cast = chain[-2] if chain[-2].op == "Cast" else chain[-3]
        source = graph.values.get(chain[0].inputs[0])
        if cast.attrs.get("to") != FLOAT or source is None or source.dtype != np.uint8:
            continue
        transpose = next((n for n in chain if n.op == "Transpose"), None)
        attrs = {"perm": None if transpose is None else transpose.attrs.get("perm"), "scale": scale}
        node = Node("FromImage", [chain[0].inputs[0]], [chain[0].outputs[0]], attrs,
                    f"{div.name}/image", "palmbrush")  # fmt: skip
        graph.nodes[graph.nodes.index(chain[0])] = node
        for later in chain[1:]:
            absorb(graph, node, later)
        fused += 1
    return fused


def _chain_back(graph: Graph, last: Node) -> list[Node]:
    """Up to two producers of `last` (Transpose and/or Cast), each read only by the next."""
    chain = [last]
    for _ in range(2):
        before = producer(graph, chain[0].inputs[0])
        if before is None or before.op not in ("Transpose", "Cast"):
            break
        if only_consumer(graph, before.outputs[0]) is not chain[0]:
            break
        if any(n.op == before.op for n in chain):
            break
        chain.insert(0, before)
    return chain


def fuse_to_image(graph: Graph) -> int:
    fused = 0
    for mul in [n for n in graph.nodes if n.op == "Mul"]:
        chain = _chain(graph, mul, ["Round", "Clip", "Transpose", "Cast"])
        if chain[-1].op != "Cast" or chain[-1].attrs.get("to") != UINT8:
            continue
        scale = _scalar(graph, input_at(mul, 1))
        clip = next((n for n in chain if n.op == "Clip"), None)
        if scale is None or [n.op for n in chain[:3]] != ["Mul", "Round", "Clip"]:
            continue
        low, high = _scalar(graph, input_at(clip, 1)), _scalar(graph, input_at(clip, 2))
        if low is None or high is None or not (0 <= low <= high <= 255):
            continue
        transpose = next((n for n in chain if n.op == "Transpose"), None)
        perm = None if transpose is None else transpose.attrs.get("perm")
        attrs = {"perm": perm, "scale": scale, "low": low, "high": high}
        node = Node("ToImage", [mul.inputs[0]], [mul.outputs[0]], attrs, f"{mul.name}/image",
                    "palmbrush")  # fmt: skip
        graph.nodes[graph.nodes.index(mul)] = node
        for later in chain[1:]:
            absorb(graph, node, later)
        fused += 1
    return fused


def _chain(graph: Graph, start: Node, ops: list[str]) -> list[Node]:
    """start, then each next node in `ops` order (optional ones may be missing) that is the
    only reader of the one before."""
    chain = [start]
    for op in ops:
        after = only_consumer(graph, chain[-1].outputs[0])
        if after is not None and after.op == op and after.inputs[0] == chain[-1].outputs[0]:
            chain.append(after)
    return chain


def _scalar(graph: Graph, name: str) -> float | None:
    value = const(graph, name)
    if value is None or value.size != 1 or value.dtype != np.float32:
        return None
    return float(value.reshape(()))
