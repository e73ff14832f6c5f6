"""# Op(constant, ...) => constant: evaluate nodes whose inputs are all weights, once, at load."""

from __future__ import annotations

from ..engines.reference import KERNELS as REFERENCE
from ..ir import Graph
from ..ops import SCHEMAS, kernel_attrs
from ..ops.infer import evaluate_constant

LIMIT = 1 << 22  # elements; larger results stay as nodes rather than bloat the model


def run(graph: Graph) -> int:
    folded = 0
    for node in list(graph.toposort()):
        if node.op == "Dropout":
            continue
        inputs = [graph.values.get(i) if i else None for i in node.inputs]
        outputs = [graph.values.get(o) if o else None for o in node.outputs]
        attrs = kernel_attrs(SCHEMAS[node.op], node)
        results = evaluate_constant(node, attrs, inputs, outputs, LIMIT, REFERENCE)
        if results is None:
            continue
        for name, array in zip(node.outputs, results):
            if name:
                value = graph.values[name]
                value.const, value.dtype, value.shape = array, array.dtype, tuple(array.shape)
        graph.nodes.remove(node)
        folded += 1
    return folded
