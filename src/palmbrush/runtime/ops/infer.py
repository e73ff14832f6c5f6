"""Shape and dtype inference over a whole graph, with folding of small constant subgraphs.

Each schema's `infer` rule maps the node's input Values to output (dtype, shape[, const])
entries. When every input of a node is constant and small, the node is evaluated with the
reference engine, so shape-only subgraphs (Shape -> Gather -> Concat -> Reshape) resolve to
concrete values. Shapes are checked against MAX_ELEMENTS before anything is allocated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ModelError
from ..ir import Graph, Node, Shape, Value

MAX_ELEMENTS = 1 << 31  # per tensor: 8 GiB of float32 is more than any frame network needs
FOLD_ELEMENTS = 1 << 20  # evaluate constant subgraphs whose outputs are at most this big


@dataclass
class InferCtx:
    """What a schema's inference rule sees of one node."""

    node: Node
    attrs: dict[str, Any]
    inputs: list[Value | None]
    opset: int

    def has(self, i: int) -> bool:
        return i < len(self.inputs) and self.inputs[i] is not None

    def dtype(self, i: int) -> np.dtype | None:
        return self.inputs[i].dtype if self.has(i) else None

    def shape(self, i: int) -> Shape:
        return self.inputs[i].shape if self.has(i) else None

    def rank(self, i: int) -> int | None:
        shape = self.shape(i)
        return None if shape is None else len(shape)

    def const(self, i: int) -> np.ndarray | None:
        return self.inputs[i].const if self.has(i) else None

    def ints(self, i: int) -> list[int] | None:
        """A constant integer input as a Python list, or None when it is not known."""
        value = self.const(i)
        return None if value is None else [int(v) for v in np.asarray(value).reshape(-1)]

    def fail(self, message: str) -> ModelError:
        return ModelError(f"{self.node.label()}: {message}")


def infer_values(
    graph: Graph, inputs: dict[str, Value] | None = None, check: bool = False, *, kernels: dict
) -> dict[str, Value]:
    """Infer every value's dtype and shape; `inputs` overrides the graph inputs' declarations.
    `kernels` (op -> kernel: the reference engine's, from the caller, so that the op library
    imports no engine) evaluates the small constant subgraphs (shape arithmetic)."""
    from . import SCHEMAS
    from .schema import kernel_attrs

    values = {n: v for n, v in graph.values.items() if v.const is not None or n in graph.inputs}
    values.update(inputs or {})
    for node in graph.toposort():
        schema = SCHEMAS[node.op]
        ctx = InferCtx(node, kernel_attrs(schema, node), [], graph.opset)
        ctx.inputs = [values.get(name) if name else None for name in node.inputs]
        results = _guarded(ctx, schema.infer)
        results += [(None, None)] * (len(node.outputs) - len(results))
        for name, result in zip(node.outputs, results):
            dtype, shape, const = (*result, None)[:3]
            _check_size(ctx, shape)
            value = Value(name, None if dtype is None else np.dtype(dtype), shape, const)
            if check:
                _check_declared(ctx, graph.values.get(name), value)
            values[name] = value
        _guarded(ctx, lambda c: _fold(c, values, kernels))
    return values


def _guarded(ctx: InferCtx, step):
    """Run an inference step; anything but a ModelError means the node itself is malformed."""
    try:
        result = step(ctx)
    except ModelError:
        raise
    except Exception as exc:
        raise ctx.fail(f"malformed node ({type(exc).__name__}: {exc})") from exc
    return list(result) if result is not None else None


def infer_graph(graph: Graph, check: bool = False, *, kernels: dict) -> None:
    """Write inferred dtypes and shapes onto the graph's values (constants are left alone);
    `kernels` as infer_values takes them."""
    for name, value in infer_values(graph, check=check, kernels=kernels).items():
        current = graph.values.setdefault(name, Value(name))
        if current.const is None:
            current.dtype = value.dtype or current.dtype
            current.shape = _merge(current.shape, value.shape)


def _merge(declared, inferred):
    """Inferred dims, with the model's declared dims filling in what inference left unknown."""
    if inferred is None or declared is None or len(declared) != len(inferred):
        return inferred if inferred is not None else declared
    return tuple(d if i is None else i for d, i in zip(declared, inferred))


def evaluate_constant(node: Node, attrs: dict, inputs: list, outputs: list, limit: int,
                      kernels: dict):  # fmt: skip
    """Run a node on `kernels` (the reference engine's) if every input it has is a constant and
    its inferred outputs are concrete and hold at most `limit` elements in all; else None.
    Sizes come from inference, so nothing over the limit is ever allocated."""
    present = [v for name, v in zip(node.inputs, inputs) if name]
    if any(v is None or v.const is None for v in present):
        return None
    total = 0
    for name, value in zip(node.outputs, outputs):
        shape = value.shape if name and value is not None else None
        if name and (shape is None or not all(isinstance(d, int) for d in shape)):
            return None
        total += int(np.prod(shape, dtype=np.int64)) if name else 0
    if total > limit:
        return None
    results = kernels[node.op](*[v.const if v is not None else None for v in inputs], **attrs)
    return tuple(np.asarray(r) for r in (results if isinstance(results, tuple) else (results,)))


def _fold(ctx: InferCtx, values: dict[str, Value], kernels: dict) -> None:
    """Evaluate a node whose inputs are all small constants (shape arithmetic and the like)."""
    node = ctx.node
    if any(values[o].const is not None for o in node.outputs if o):
        return
    outputs = [values.get(o) if o else None for o in node.outputs]
    results = evaluate_constant(node, ctx.attrs, ctx.inputs, outputs, FOLD_ELEMENTS, kernels)
    for name, array in zip(node.outputs, results or ()):
        if name:
            values[name] = Value(name, array.dtype, tuple(array.shape), array)


def _check_size(ctx: InferCtx, shape: Shape) -> None:
    if shape is None:
        return
    for d in shape:
        if isinstance(d, int) and d < 0:
            raise ctx.fail(f"inferred a negative dimension in shape {list(shape)}")
    known = [d for d in shape if isinstance(d, int)]
    if known and int(np.prod(known, dtype=np.float64)) > MAX_ELEMENTS:
        raise ctx.fail(
            f"output shape {list(shape)} has more than {MAX_ELEMENTS:,} elements; refusing to run"
        )


def _check_declared(ctx: InferCtx, declared: Value | None, inferred: Value) -> None:
    """A model's own value_info must agree with what the schemas infer."""
    if declared is None or declared.const is not None:
        return
    both = declared.dtype is not None and inferred.dtype is not None
    if both and declared.dtype != inferred.dtype:
        raise ctx.fail(
            f"'{inferred.name}' is declared {declared.dtype} but computes {inferred.dtype}"
        )
    if declared.shape is None or inferred.shape is None:
        return
    if len(declared.shape) != len(inferred.shape):
        raise ctx.fail(
            f"'{inferred.name}' is declared with rank {len(declared.shape)} "
            f"but computes rank {len(inferred.shape)}"
        )
    for a, b in zip(declared.shape, inferred.shape):
        if isinstance(a, int) and isinstance(b, int) and a != b:
            raise ctx.fail(
                f"'{inferred.name}' is declared {list(declared.shape)} "
                f"but computes {list(inferred.shape)}"
            )
