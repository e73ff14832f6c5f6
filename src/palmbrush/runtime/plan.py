"""A Predictor's decisions, owned by it: one Step per node, in execution order.

A Step holds the node, the kernel that runs it, its engine and why every engine tried before
it declined. The load-time steps come from the registry; with engines="auto" each input size
gets its own, timed on the first run at that size. Nothing here is written onto the Graph a
caller passed in, so two Predictors over one graph, or one Predictor at two sizes, never see
each other's choices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .ir import Node


@dataclass(frozen=True)
class Step:
    node: Node
    kernel: Callable
    engine: str
    attrs: dict[str, Any]  # the node's attributes with the schema's defaults, as kernels get them
    declined: dict[str, str] = field(default_factory=dict)  # engine -> why it does not run this

    def choice(self, transfers: list[str] | None = None) -> Choice:
        return Choice(
            self.node.name, self.node.op, self.engine, dict(self.declined), list(transfers or [])
        )


@dataclass
class Choice:
    """The engine chosen for one node, and why every engine before it declined."""

    node: str
    op: str
    engine: str
    declined: dict[str, str] = field(default_factory=dict)
    transfers: list[str] = field(default_factory=list)  # "value: host -> torch:cuda" (places.py),
    # "value: channels-last -> planar" (layout.py): what its inputs need first
