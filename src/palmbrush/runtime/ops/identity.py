"""Which nodes return their first input unchanged at given shapes (so a Predictor skips
them): op semantics, kept with the ops rather than in the executor."""

from __future__ import annotations

import numpy as np

from ..ir import Value


def returns_input(node, values: dict[str, Value]) -> bool:
    """Whether the node returns its first input unchanged at these shapes: a Slice that keeps
    everything, a Pad by zero, an Identity."""
    if node.op == "Identity":
        return True
    if node.op not in ("Slice", "Pad") or len(node.outputs) != 1:
        return False
    x, y = values.get(node.inputs[0]), values[node.outputs[0]]
    if x is None or x.shape is None or x.shape != y.shape or x.dtype != y.dtype:
        return False
    if node.op == "Pad":
        pads = values[node.inputs[1]].const if len(node.inputs) > 1 and node.inputs[1] else None
        return pads is not None and not pads.any()
    steps = node.inputs[4] if len(node.inputs) > 4 else ""
    step_values = values[steps].const if steps else np.ones(1)
    return step_values is not None and bool((step_values == 1).all())
