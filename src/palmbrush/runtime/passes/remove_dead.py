"""# Op whose outputs nobody reads => nothing; and weights nobody reads are dropped."""

from __future__ import annotations

from ..ir import Graph


def run(graph: Graph) -> int:
    removed = 0
    while True:
        read = {i for n in graph.nodes for i in n.inputs} | set(graph.outputs)
        dead = [n for n in graph.nodes if not any(o in read for o in n.outputs if o)]
        if not dead:
            break
        for node in dead:
            graph.nodes.remove(node)
            for out in node.outputs:
                graph.values.pop(out, None)
        removed += len(dead)
    read = {i for n in graph.nodes for i in n.inputs} | set(graph.outputs)
    for name in [n for n, v in graph.values.items() if v.const is not None and n not in read]:
        del graph.values[name]
    return removed
