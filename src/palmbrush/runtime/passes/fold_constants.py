"""# Op(constant, ...) => constant: evaluate nodes whose inputs are all weights, once, at load."""

from __future__ import annotations

import numpy as np

from ..ir import Graph
from ..ops import SCHEMAS, kernel_attrs

LIMIT = 1 << 22  # elements; larger results stay as nodes rather than bloat the model


def run(graph: Graph) -> int:
    from ..engines.reference import KERNELS

    folded = 0
    for node in list(graph.toposort()):
        if node.op not in KERNELS or node.op in ("Dropout",):
            continue
        values = [graph.values.get(i) if i else None for i in node.inputs]
        if any(name and (v is None or v.const is None) for name, v in zip(node.inputs, values)):
            continue
        if not _small(graph, node.outputs):
            continue  # sizes come from inference, checked before anything is allocated
        arrays = [v.const if v is not None else None for v in values]
        results = KERNELS[node.op](*arrays, **kernel_attrs(SCHEMAS[node.op], node))
        results = results if isinstance(results, tuple) else (results,)
        for name, result in zip(node.outputs, results):
            if name:
                value = graph.values[name]
                value.const = np.asarray(result)
                value.dtype, value.shape = value.const.dtype, tuple(value.const.shape)
        graph.nodes.remove(node)
        folded += 1
    return folded


def _small(graph: Graph, outputs: list[str]) -> bool:
    total = 0
    for name in filter(None, outputs):
        shape = graph.values[name].shape if name in graph.values else None
        if shape is None or not all(isinstance(d, int) for d in shape):
            return False
        total += int(np.prod(shape, dtype=np.int64))
    return total <= LIMIT
