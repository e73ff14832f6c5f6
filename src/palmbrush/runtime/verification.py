"""verify(): a graph is a well-formed DAG whose nodes match the op schemas and whose declared
types agree with inference. Its own module (above ir and ops, which it uses), so the IR imports
nothing of the op library."""

from __future__ import annotations

from . import ops
from .engines.reference import KERNELS as FOLDING  # evaluates constant shape arithmetic
from .errors import ModelError
from .ir import Graph


def verify(graph: Graph) -> None:
    """Raise ModelError unless the graph is a well-formed DAG that matches the op schemas."""
    produced: dict[str, str] = {name: "graph input" for name in graph.inputs}
    for name, value in graph.values.items():
        if value.const is not None:
            produced.setdefault(name, "initializer")
    names = set()
    for node in graph.nodes:
        if node.name in names and node.name:
            raise ModelError(f"two nodes are named '{node.name}'")
        names.add(node.name)
        for out in node.outputs:
            if out and out in produced:
                raise ModelError(
                    f"value '{out}' is produced twice ({produced[out]}, {node.label()})"
                )
            if out:
                produced[out] = node.label()
    for node in graph.nodes:
        for name in node.inputs:
            if name and name not in produced:
                raise ModelError(f"{node.label()} reads '{name}', which nothing produces")
    for name in graph.outputs:
        if name not in produced:
            raise ModelError(f"graph output '{name}' is never produced")
    graph.toposort()
    for node in graph.nodes:
        ops.check_node(node, graph.opset)
    ops.infer_graph(graph, check=True, kernels=FOLDING)
