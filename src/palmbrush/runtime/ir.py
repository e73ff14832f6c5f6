"""The graph the runtime works on: Values, Nodes and a Graph, in topological order (verification.py
checks one).

Shapes are tuples whose entries are an int, a str (a symbolic dimension such as "H") or None
(unknown); a shape of None means even the rank is unknown.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .errors import ModelError

Dim = int | str | None
Shape = tuple[Dim, ...] | None


@dataclass
class Value:
    """A named tensor: its dtype, its (possibly symbolic) shape, and its data if constant."""

    name: str
    dtype: np.dtype | None = None
    shape: Shape = None
    const: np.ndarray | None = None  # initializer data; never overwritten by the executor


@dataclass
class Node:
    """One operator application."""

    op: str
    inputs: list[str]  # "" marks an absent optional input
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    domain: str = ""

    def label(self) -> str:
        return f"node '{self.name}' ({self.op})"


@dataclass
class Graph:
    """A DAG of nodes over named values; inputs, outputs and initializers are value names."""

    nodes: list[Node]
    values: dict[str, Value]
    inputs: list[str]
    outputs: list[str]
    opset: int = 17
    metadata: dict[str, str] = field(default_factory=dict)
    name: str = "graph"

    @property
    def initializers(self) -> dict[str, np.ndarray]:
        return {n: v.const for n, v in self.values.items() if v.const is not None}

    def copy(self) -> Graph:
        """A copy whose nodes, values and lists can be rewritten without touching this graph
        (constant arrays and attribute values are shared: passes replace an attribute, never
        edit one in place, and nothing writes into a constant)."""
        nodes = [
            replace(n, inputs=list(n.inputs), outputs=list(n.outputs), attrs=dict(n.attrs))
            for n in self.nodes
        ]
        values = {name: replace(v) for name, v in self.values.items()}
        return replace(self, nodes=nodes, values=values, inputs=list(self.inputs),
                       outputs=list(self.outputs), metadata=dict(self.metadata))  # fmt: skip

    def producers(self) -> dict[str, Node]:
        return {out: node for node in self.nodes for out in node.outputs if out}

    def consumers(self) -> dict[str, list[Node]]:
        users: dict[str, list[Node]] = {}
        for node in self.nodes:
            for name in node.inputs:
                if name:
                    users.setdefault(name, []).append(node)
        return users

    def toposort(self) -> list[Node]:
        """Nodes in an order where every input is available before it is used (Kahn)."""
        producers = self.producers()
        pending = {id(n): sum(1 for i in set(n.inputs) if i in producers) for n in self.nodes}
        users = self.consumers()
        ready = deque(n for n in self.nodes if pending[id(n)] == 0)
        order: list[Node] = []
        while ready:
            node = ready.popleft()
            order.append(node)
            for out in node.outputs:
                for user in _unique(users.get(out, [])):
                    pending[id(user)] -= 1
                    if pending[id(user)] == 0:
                        ready.append(user)
        if len(order) != len(self.nodes):
            stuck = [n.name or n.op for n in self.nodes if pending[id(n)] > 0]
            raise ModelError(f"graph has a cycle through nodes {', '.join(stuck[:5])}")
        return order


def _unique(nodes: Iterable[Node]) -> list[Node]:
    seen: dict[int, Node] = {}
    for n in nodes:
        seen.setdefault(id(n), n)
    return list(seen.values())
