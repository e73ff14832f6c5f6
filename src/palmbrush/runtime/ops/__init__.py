"""One schema per op type: arity, attributes with ONNX defaults, shape and dtype inference.

Schemas live apart from kernels: an engine never re-checks what a schema already guarantees.
"""

from __future__ import annotations

from . import schema_fused, schema_nn, schema_quant, schema_reduce, schema_tensor, schema_unary
from .infer import MAX_ELEMENTS, infer_graph, infer_values
from .schema import REQUIRED, Schema, attrs_with_defaults, kernel_attrs

MIN_OPSET = 13
# Opset 22 only widened type lists (bfloat16) of the ops we implement, so its semantics are ours.
MAX_OPSET = 22

SCHEMAS: dict[str, Schema] = {}
for _module in (schema_unary, schema_nn, schema_tensor, schema_reduce, schema_quant, schema_fused):
    for _schema in _module.SCHEMAS:
        SCHEMAS[_schema.op] = _schema

__all__ = [
    "MAX_ELEMENTS",
    "MAX_OPSET",
    "MIN_OPSET",
    "REQUIRED",
    "SCHEMAS",
    "Schema",
    "attrs_with_defaults",
    "check_node",
    "infer_graph",
    "infer_values",
    "kernel_attrs",
]


def check_node(node, opset: int) -> None:
    """Raise ModelError unless the node is a known op with a valid arity and attributes."""
    from ..errors import ModelError

    own = node.op in schema_fused.OPS
    if node.domain not in ("", "ai.onnx", "palmbrush") or (node.domain == "palmbrush") != own:
        raise ModelError(f"{node.label()}: unsupported operator domain '{node.domain}'")
    schema = SCHEMAS.get(node.op)
    if schema is None:
        raise ModelError(f"unsupported operator '{node.op}' at node '{node.name}'")
    schema.check(node, opset)
