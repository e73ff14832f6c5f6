"""Engine discovery and assignment: ordered preference, declines with reasons, reference last.

The global order (PRIORITY, or the caller's list) can be overridden per op where measurement
says it is wrong for some nodes (Caffe2's per-op engine preference): PREFERENCES below.

Engines are the modules in `engines/` (names not starting with "_"); each exposes NAME,
KERNELS and available(). A kernel may carry a `check(ctx)` that raises Unsupported(reason) to
decline a node at assignment time; the next engine is then tried. The reference engine comes
last and completes every op it lists.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from . import engines as engines_pkg
from .errors import ModelError, PalmbrushError, Unsupported
from .ir import Graph, Node
from .ops import SCHEMAS
from .ops.infer import InferCtx
from .ops.schema import kernel_attrs
from .plan import Step

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
    chosen = [e for e in chosen if engine_name(e) != REFERENCE]
    return [*chosen, known[REFERENCE]]


def with_precision(engines: list[Any], precision: str) -> list[Any]:
    """Engines configured for `precision` where they offer it (PRECISIONS); an error if none
    of them does (no silent fp32). The others compute fp32, and the plan shows which ran."""
    if precision == "fp32":
        return engines
    offered = [e for e in engines if _offers(e, precision)]
    if not offered:
        names = ", ".join(engine_name(e) for e in engines)
        raise PalmbrushError(
            f"precision {precision} needs an engine that offers it (have: {names})"
        )
    return [e.configured(precision) if _offers(e, precision) else e for e in engines]


def _offers(engine, precision: str) -> bool:
    return hasattr(engine, "configured") and precision in getattr(engine, "PRECISIONS", ())


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


def engine_name(engine) -> str:
    return getattr(engine, "NAME", getattr(engine, "__name__", str(engine)))


@dataclass(frozen=True)
class Preference:
    """For nodes of `ops` that `when(ctx)` picks: try engine `first` before the others."""

    ops: tuple[str, ...]
    first: str
    when: Callable[[InferCtx], bool]
    why: str


NARROW = 8  # oneDNN is slow with fewer output channels than this; the cpu engine is not


def _narrow(ctx: InferCtx) -> bool:
    w = ctx.shape(1)
    return w is not None and len(w) == 4 and w[0] < NARROW and ctx.attrs.get("group", 1) == 1


GPU_OPS = ("Conv", "FusedConv", "Pad", "Resize", "FromImage", "ToImage", "Slice", "Add", "Mul",
           "Relu", "Sigmoid", "Tanh")  # fmt: skip

PREFERENCES = [  # measured with bench/runtime.py on AVX2 and AVX-512 machines
    Preference(
        GPU_OPS,
        "cuda",
        lambda ctx: True,
        "a GPU keeps the network in its memory: every transfer over the bus costs more than "
        "a CPU kernel could save",
    ),
    Preference(
        ("Conv", "FusedConv"),
        "cpu",
        _narrow,
        f"oneDNN is slow with fewer than {NARROW} output channels",
    ),
]


def preferred(ctx: InferCtx, among) -> str | None:
    """The engine a per-op preference puts first for this node, among the engines `among` that
    accept it (a preference for an engine that is absent, or declines, gives way to the next)."""
    return next(
        (p.first for p in PREFERENCES if ctx.node.op in p.ops and p.first in among and p.when(ctx)),
        None,
    )


def ordered(engines: list[Any], ctx: InferCtx) -> tuple[list[Any], dict[str, str]]:
    """The engines in the order to try for this node, and why any were moved back."""
    names = [engine_name(e) for e in engines]
    for pref in PREFERENCES:
        if ctx.node.op in pref.ops and pref.first in names and pref.when(ctx):
            i = names.index(pref.first)
            moved = {n: f"preference: {pref.first} first ({pref.why})" for n in names[:i]}
            return [engines[i], *engines[:i], *engines[i + 1 :]], moved
    return engines, {}


def _context(node: Node, graph: Graph, values: dict) -> tuple[dict, InferCtx]:
    attrs = kernel_attrs(SCHEMAS[node.op], node)
    ctx = InferCtx(node, attrs, [values.get(n) if n else None for n in node.inputs], graph.opset)
    return attrs, ctx


def assign(graph: Graph, engines: list[Any], values: dict) -> list[Step]:
    """A Step for every node in execution order: the first engine (in the node's order) whose
    kernel accepts it, and why the ones before it did not."""
    steps = []
    for node in graph.toposort():
        attrs, ctx = _context(node, graph, values)
        order, moved = ordered(engines, ctx)
        declined: dict[str, str] = {}
        chosen = next(((e, k) for e in order if (k := _try(e, node, ctx, declined))), None)
        if chosen is None:
            reasons = "; ".join(f"{k}: {v}" for k, v in declined.items())
            raise ModelError(f"no engine runs {node.label()} ({reasons})")
        engine, kernel = chosen
        for name, why in moved.items():
            if name != engine_name(engine):
                declined.setdefault(name, why)
        steps.append(Step(node, kernel, engine_name(engine), attrs, declined))
    return steps


def _try(engine, node: Node, ctx: InferCtx, declined: dict[str, str]):
    kernel = engine.KERNELS.get(node.op)
    if kernel is None:
        declined[engine_name(engine)] = f"no kernel for {node.op}"
        return None
    check = getattr(kernel, "check", None)
    if check is not None:
        try:
            check(ctx)
        except Unsupported as exc:
            declined[engine_name(engine)] = exc.reason
            return None
    return kernel


def candidates(
    graph: Graph, engines: list[Any], values: dict, preferences: bool = False
) -> list[list[tuple[str, Callable]]]:
    """Per node in execution order: each (engine, kernel) that accepts it, best preferred first;
    with `preferences`, only the first that accepts it where a per-op preference applies (the
    preference is a measured fact: nothing to time)."""
    found = []
    for node in graph.toposort():
        _, ctx = _context(node, graph, values)
        able = [(engine_name(e), k) for e in engines if (k := _try(e, node, ctx, {})) is not None]
        first = preferred(ctx, dict(able)) if preferences else None
        if first is not None:
            able = [(first, dict(able)[first])]
        fast = [(name, k) for name, k in able if name != REFERENCE]
        found.append(fast or able)  # the reference is the spec: it only runs what nothing else can
    return found
