"""Helpers the rewrite passes share: who consumes a value, constants, promoting a Conv."""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Node


def only_consumer(graph: Graph, name: str) -> Node | None:
    """The single node reading `name`, if exactly one does and it is not a graph output."""
    if name in graph.outputs:
        return None
    users = [n for n in graph.nodes if name in n.inputs]
    return users[0] if len(users) == 1 and users[0].inputs.count(name) == 1 else None


def producer(graph: Graph, name: str) -> Node | None:
    return next((n for n in graph.nodes if name in n.outputs), None)


def const(graph: Graph, name: str) -> np.ndarray | None:
    value = graph.values.get(name) if name else None
    return None if value is None else value.const


def input_at(node: Node, i: int) -> str:
    return node.inputs[i] if i < len(node.inputs) else ""


def set_input(node: Node, i: int, name: str) -> None:
    while len(node.inputs) <= i:
        node.inputs.append("")
    node.inputs[i] = name


def as_fused(node: Node) -> Node:
    """Turn a Conv into the equivalent FusedConv (no extra stages yet)."""
    if node.op == "Conv":
        node.op, node.domain = "FusedConv", "palmbrush"
    return node


def is_plain_conv(node: Node | None) -> bool:
    """A Conv, or a FusedConv with nothing fused after the convolution itself."""
    if node is None or node.op not in ("Conv", "FusedConv"):
        return False
    attrs = node.attrs
    return attrs.get("norm", "none") == "none" and attrs.get("activation", "none") == "none" and \
        not input_at(node, 5)  # fmt: skip


def absorb(graph: Graph, survivor: Node, node: Node) -> None:
    """`survivor` now also does `node`'s work: drop `node`, and give its output name to survivor.

    `node` must be the only reader of survivor's output, so that value disappears; the names
    downstream (graph outputs included) stay as they were.
    """
    old = survivor.outputs[0]
    survivor.outputs[0] = node.outputs[0]
    graph.nodes.remove(node)
    graph.values.pop(old, None)
