"""Model statistics for inspect and bench: parameters, op counts, multiply-accumulates."""

from __future__ import annotations

from collections import Counter

import numpy as np

from .ir import Graph, Node, Value

# Which inputs of an op are learned parameters (weights, biases, norm affine and statistics).
WEIGHT_INPUTS = {
    "Conv": (1, 2),
    "FusedConv": (1, 2, 3, 4),
    "ConvTranspose": (1, 2),
    "Gemm": (0, 1, 2),
    "MatMul": (0, 1),
    "InstanceNormalization": (1, 2),
    "BatchNormalization": (1, 2, 3, 4),
    "LayerNormalization": (1, 2),
    "PRelu": (1,),
    "QLinearConv": (3, 8),
    "QLinearMatMul": (0, 3),
    "DequantizeLinear": (0,),
}


def parameter_count(graph: Graph) -> int:
    """Elements of the constant tensors that feed weight inputs (not scales, pads or shapes)."""
    names = {
        node.inputs[i]
        for node in graph.nodes
        for i in WEIGHT_INPUTS.get(node.op, ())
        if i < len(node.inputs) and node.inputs[i]
    }
    return sum(int(graph.values[n].const.size) for n in names if graph.values[n].const is not None)


def op_counts(graph: Graph) -> Counter:
    return Counter(node.op for node in graph.nodes)


def node_macs(node: Node, values: dict[str, Value]) -> int:
    """Multiply-accumulates of one node at the concrete shapes in `values` (0 if not a MAC op)."""

    def shape(i: int):
        name = node.inputs[i] if i < len(node.inputs) else ""
        return values[name].shape if name and name in values else None

    out = values[node.outputs[0]].shape if node.outputs[0] in values else None
    if out is None or not all(isinstance(d, int) for d in out):
        return 0
    if node.op in ("Conv", "FusedConv", "QLinearConv"):
        w = shape(3 if node.op == "QLinearConv" else 1)
        return int(np.prod(out, dtype=np.int64)) * int(np.prod(w[1:], dtype=np.int64))
    if node.op == "ConvTranspose":
        x, w = shape(0), shape(1)
        return int(np.prod(x, dtype=np.int64)) * int(np.prod(w[1:], dtype=np.int64))
    if node.op in ("Gemm", "MatMul", "QLinearMatMul"):
        a = shape(0)
        return int(np.prod(out, dtype=np.int64)) * int(a[-1] if a else 0)
    return 0


def total_macs(graph: Graph, values: dict[str, Value]) -> int:
    return sum(node_macs(node, values) for node in graph.nodes)
