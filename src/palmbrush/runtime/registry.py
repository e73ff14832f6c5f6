"""Engine discovery and assignment: ordered preference, declines with reasons, reference last.

Engines are the modules in `engines/` (names not starting with "_"); each exposes NAME,
KERNELS and available(). A kernel may carry a `check(ctx)` that raises Unsupported(reason) to
decline a node at assignment time; the next engine is then tried. The reference engine comes
last and completes every op it lists.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from . import engines as engines_pkg
from .errors import ModelError, PalmbrushError, Unsupported
from .ir import Graph, Node
from .ops import SCHEMAS
from .ops.infer import InferCtx
from .ops.schema import kernel_attrs

REFERENCE = "reference"


def declines(check: Callable[[InferCtx], None]):
    """Attach an assignment-time check to a kernel: check(ctx) raises Unsupported(reason)."""

    def attach(kernel):
        kernel.check = check
        return kernel

    return attach


def discover() -> dict[str, ModuleType]:
    """Every engine module in engines/, by name, whether or not it is available here."""
    found = {}
    for info in pkgutil.iter_modules(engines_pkg.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{engines_pkg.__name__}.{info.name}")
        if hasattr(module, "KERNELS") and hasattr(module, "available"):
            found[getattr(module, "NAME", info.name)] = module
    if REFERENCE not in found:
        raise PalmbrushError("the reference engine is missing from palmbrush.runtime.engines")
    return found


def resolve(engines: Sequence[Any] | str | None = None) -> list[Any]:
    """Engine objects in preference order; the reference engine always ends the list."""
    known = discover()
    if engines is None:
        ranked = sorted(known.values(), key=lambda m: -getattr(m, "PRIORITY", 0))
        chosen = [m for m in ranked if m.NAME != REFERENCE and m.available()]
    else:
        items = engines.split(",") if isinstance(engines, str) else list(engines)
        chosen = [_engine(item, known) for item in items]
    chosen = [e for e in chosen if _name(e) != REFERENCE]
    return [*chosen, known[REFERENCE]]


def with_precision(engines: list[Any], precision: str) -> list[Any]:
    """Engines configured for `precision`; an error if none of them offers it (no silent fp32)."""
    if precision == "fp32":
        return engines
    offered = [e for e in engines if hasattr(e, "configured")]
    if not offered:
        names = ", ".join(_name(e) for e in engines)
        raise PalmbrushError(
            f"precision {precision} needs an engine that offers it (have: {names})"
        )
    return [e.configured(precision) if hasattr(e, "configured") else e for e in engines]


def _engine(item: Any, known: dict[str, ModuleType]):
    if not isinstance(item, str):
        return item
    name = item.strip()
    if name not in known:
        raise PalmbrushError(f"unknown engine '{name}' (engines: {', '.join(sorted(known))})")
    module = known[name]
    if not module.available():
        reason = getattr(module, "unavailable_reason", lambda: "not installed")()
        raise PalmbrushError(f"engine '{name}' is not available here: {reason}")
    return module


def _name(engine) -> str:
    return getattr(engine, "NAME", getattr(engine, "__name__", str(engine)))


@dataclass
class Choice:
    """The engine chosen for one node, and why every engine before it declined."""

    node: str
    op: str
    engine: str
    declined: dict[str, str] = field(default_factory=dict)


def assign(graph: Graph, engines: list[Any], values: dict) -> list[tuple[Node, Callable, dict]]:
    """Pick a kernel for every node; record the winner and decline reasons on the node."""
    bound = []
    for node in graph.toposort():
        node.engine, node.declined = None, {}
        schema = SCHEMAS[node.op]
        attrs = kernel_attrs(schema, node)
        ctx = InferCtx(
            node, attrs, [values.get(n) if n else None for n in node.inputs], graph.opset
        )
        ctx.engines = [_name(e) for e in engines]  # a check may defer to a later engine
        for engine in engines:
            kernel = _try(engine, node, ctx)
            if kernel is not None:
                node.engine = _name(engine)
                bound.append((node, kernel, attrs))
                break
        if node.engine is None:
            reasons = "; ".join(f"{k}: {v}" for k, v in node.declined.items())
            raise ModelError(f"no engine runs {node.label()} ({reasons})")
    return bound


def _try(engine, node: Node, ctx: InferCtx):
    kernel = engine.KERNELS.get(node.op)
    if kernel is None:
        node.declined[_name(engine)] = f"no kernel for {node.op}"
        return None
    check = getattr(kernel, "check", None)
    if check is not None:
        try:
            check(ctx)
        except Unsupported as exc:
            node.declined[_name(engine)] = exc.reason
            return None
    return kernel


def candidates(graph: Graph, engines: list[Any], values: dict) -> list[list[tuple[str, Callable]]]:
    """Per node in execution order: each (engine, kernel) that accepts it, best preferred first."""
    found = []
    for node in graph.toposort():
        attrs = kernel_attrs(SCHEMAS[node.op], node)
        ctx = InferCtx(
            node, attrs, [values.get(n) if n else None for n in node.inputs], graph.opset
        )
        ctx.engines = [_name(e) for e in engines]
        declined = dict(node.declined)
        able = [(_name(e), k) for e in engines if (k := _try(e, node, ctx)) is not None]
        fast = [(name, k) for name, k in able if name != REFERENCE]
        found.append(fast or able)  # the reference is the spec: it only runs what nothing else can
        node.declined = declined  # _try records declines; assign() already has them
    return found


def choices(graph: Graph) -> list[Choice]:
    return [Choice(n.name, n.op, n.engine or "-", dict(n.declined)) for n in graph.toposort()]
