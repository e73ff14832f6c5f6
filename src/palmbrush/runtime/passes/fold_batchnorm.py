"""Fold inference batch norm into the convolution before it:

# Conv(W, B) -> BatchNormalization(s, b, m, v)  =>  Conv(W * k, (B - m) * k + b)
#   where k = s / sqrt(v + epsilon), per output channel
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Value
from .common import absorb, const, input_at, only_consumer


def run(graph: Graph) -> int:
    folded = 0
    for conv in [n for n in graph.nodes if n.op == "Conv"]:
        bn = only_consumer(graph, conv.outputs[0])
        if bn is None or bn.op != "BatchNormalization" or len([o for o in bn.outputs if o]) != 1:
            continue
        w, b = const(graph, conv.inputs[1]), const(graph, input_at(conv, 2))
        scale, shift, mean, var = (const(graph, i) for i in bn.inputs[1:5])
        if w is None or any(p is None for p in (scale, shift, mean, var)):
            continue
        k = scale / np.sqrt(var + bn.attrs.get("epsilon", 1e-5))
        bias = (b if b is not None else np.zeros_like(mean)) - mean
        _set_weights(graph, conv, (w * k.reshape(-1, 1, 1, 1)).astype(w.dtype),
                     (bias * k + shift).astype(w.dtype))  # fmt: skip
        absorb(graph, conv, bn)
        folded += 1
    return folded


def _set_weights(graph: Graph, conv, w: np.ndarray, b: np.ndarray) -> None:
    names = (f"{conv.name}.folded_weight", f"{conv.name}.folded_bias")
    for name, array in zip(names, (w, b)):
        graph.values[name] = Value(name, array.dtype, tuple(array.shape), array)
    conv.inputs = [conv.inputs[0], *names]
