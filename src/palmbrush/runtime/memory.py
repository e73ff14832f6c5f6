"""Buffer lifetimes and reuse: intermediates whose lifetimes do not overlap share arena space.

Graph inputs, graph outputs and constants (weights) are never planned, so they are never
reused. Offsets come from greedy-by-size placement: the largest tensors are placed first, each
at the lowest offset that does not overlap any placed tensor alive at the same time.
An Arena holds one input size's buffers; a PlanCache bounds the sizes a Predictor keeps.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import FeedError
from .ir import Graph, Node, Value

ALIGN = 64  # bytes; keeps every buffer cache-line and SIMD aligned
MAX_BYTES = 8 << 30  # a model's weights, and its weights plus one input size's activations
PLAN_CACHE_BYTES = 256 << 20  # per Predictor: arenas and constants of the input sizes it keeps
MAX_PLANS = 64  # and at most this many input sizes, however small


@dataclass(frozen=True)
class Lifetime:
    """A planned tensor lives from the step that writes it to the last step that reads it."""

    name: str
    first: int
    last: int
    nbytes: int

    def overlaps(self, other: Lifetime) -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass
class MemoryPlan:
    lifetimes: dict[str, Lifetime]
    offsets: dict[str, int]  # byte offset in the arena, for tensors of known size
    arena_bytes: int
    free_after: list[list[str]]  # per step: intermediates that are dead once it has run
    output_bytes: int = 0  # the graph outputs: never planned, but allocated by every run

    @property
    def total_bytes(self) -> int:
        """The bytes this input size's intermediates and outputs take."""
        return self.arena_bytes + self.output_bytes

    @property
    def naive_bytes(self) -> int:
        """What the intermediates would take with no reuse at all."""
        return sum(_aligned(t.nbytes) for t in self.lifetimes.values())


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def nbytes_of(value: Value | None) -> int | None:
    if value is None or value.dtype is None or value.shape is None:
        return None
    if not all(isinstance(d, int) for d in value.shape):
        return None
    return int(np.prod(value.shape, dtype=np.int64)) * value.dtype.itemsize


def lifetimes(
    order: list[Node], graph: Graph, values: dict[str, Value], aliases: dict[str, str] | None = None
) -> tuple[dict[str, Lifetime], dict[str, int]]:
    """Lifetimes of every intermediate (not an input, output or constant) in step order, and
    the last reader of each alias. An alias (output -> input: a step that passes its input
    through) has no buffer of its own: it keeps its input's buffer alive while it is read,
    and to the end if it is a graph output."""
    aliases = aliases or {}
    fixed = set(graph.inputs) | set(graph.outputs)
    fixed |= {n for n, v in graph.values.items() if v.const is not None}
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    alias_last: dict[str, int] = {}

    def root(name: str) -> str:
        while name in aliases:
            name = aliases[name]
        return name

    for step, node in enumerate(order):
        for name in node.outputs:
            if name in aliases:
                alias_last[name] = step
                if name in graph.outputs and root(name) in first:
                    last[root(name)] = len(order) - 1
            elif name and name not in fixed:
                first[name] = last[name] = step
        for name in node.inputs:
            if name in aliases:
                alias_last[name] = step
            if root(name) in first:
                last[root(name)] = max(last[root(name)], step)
    spans = {
        name: Lifetime(name, first[name], last[name], nbytes_of(values.get(name)) or 0)
        for name in first
    }
    return spans, {n: s for n, s in alias_last.items() if n not in graph.outputs}


def place(spans: list[Lifetime]) -> tuple[dict[str, int], int]:
    """Greedy by size: each tensor at the lowest offset clear of every overlapping one."""
    offsets: dict[str, int] = {}
    placed: list[Lifetime] = []
    alive: dict[int, list[Lifetime]] = {}  # step -> placed tensors alive then
    for span in sorted(spans, key=lambda t: (-t.nbytes, t.first, t.name)):
        if span.nbytes == 0:
            continue
        rivals = {
            p.name: p for step in range(span.first, span.last + 1) for p in alive.get(step, [])
        }
        busy = sorted((offsets[n], offsets[n] + _aligned(p.nbytes)) for n, p in rivals.items())
        offset = 0
        for start, end in busy:
            if offset + _aligned(span.nbytes) <= start:
                break
            offset = max(offset, end)
        offsets[span.name] = offset
        placed.append(span)
        for step in range(span.first, span.last + 1):
            alive.setdefault(step, []).append(span)
    arena = max((offsets[p.name] + _aligned(p.nbytes) for p in placed), default=0)
    return offsets, arena


def plan_memory(
    order: list[Node],
    graph: Graph,
    values: dict[str, Value],
    aliases: dict[str, str] | None = None,
    extra: dict[str, tuple[int, int, int]] | None = None,
) -> MemoryPlan:
    """`extra`: buffers no node outputs, name -> (first step, last step, bytes): the copies
    the executor makes between steps (layout.py's conversions). They are freed with the
    value they copy (whose span covers theirs), so they get no entry in free_after."""
    spans, alias_last = lifetimes(order, graph, values, aliases)
    copies = {n: Lifetime(n, first, last, size) for n, (first, last, size) in (extra or {}).items()}
    offsets, arena = place(list(spans.values()) + list(copies.values()))
    free_after: list[list[str]] = [[] for _ in order]
    for span in spans.values():
        free_after[span.last].append(span.name)
    for name, step in alias_last.items():
        free_after[step].append(name)
    outputs = sum(nbytes_of(values.get(name)) or 0 for name in set(graph.outputs))
    return MemoryPlan({**spans, **copies}, offsets, arena, free_after, outputs)


class Arena:
    """One allocation per input size, reused by every run, for kernels that write into planned
    buffers (writes_into=True)."""

    def __init__(self, plan: MemoryPlan):
        self.plan = plan
        self.buffer = np.empty(plan.arena_bytes, dtype=np.uint8)

    def view(self, name: str, value: Value) -> np.ndarray | None:
        if name not in self.plan.offsets:
            return None
        offset = self.plan.offsets[name]
        nbytes = self.plan.lifetimes[name].nbytes
        return self.buffer[offset : offset + nbytes].view(value.dtype).reshape(value.shape)

    def owns(self, array: np.ndarray) -> bool:
        return np.may_share_memory(array, self.buffer)  # bounds only: cheap, never misses


class PlanCache:
    """Plans by input size, least recently used out first once they hold over max_bytes or
    max_items; the newest is always kept. A plan dropped here frees its arena with it."""

    def __init__(self, max_bytes: int = PLAN_CACHE_BYTES, max_items: int = MAX_PLANS):
        self.max_bytes = max_bytes
        self.max_items = max_items
        self.nbytes = 0  # what the plans held now count, by the sizes they were put with
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return None if found is None else found[0]

    def put(self, key: Hashable, item: Any, nbytes: int) -> None:
        with self._lock:
            if key in self._items:
                self.nbytes -= self._items.pop(key)[1]
            self._items[key] = (item, nbytes)
            self.nbytes += nbytes
            while len(self._items) > 1 and (
                self.nbytes > self.max_bytes or len(self._items) > self.max_items
            ):
                self.nbytes -= self._items.popitem(last=False)[1][1]


def check_budget(weights: int, activations: int, max_bytes: int, where: str) -> None:
    """Weights plus the activations of one input size must fit in max_bytes."""
    total = weights + activations
    if total > max_bytes:
        raise FeedError(
            f"{where} the model needs {human_bytes(total)} (weights {human_bytes(weights)}, "
            f"activations {human_bytes(activations)}), over the {human_bytes(max_bytes)} bound "
            f"(max_bytes)"
        )


def human_bytes(n: int) -> str:
    """1536 -> '1.5 KiB': sizes in the messages that refuse a model or a feed."""
    power = min(3, max(0, (int(n).bit_length() - 1) // 10))
    unit = ("bytes", "KiB", "MiB", "GiB")[power]
    return f"{n:,} bytes" if power == 0 else f"{n / 1024**power:.1f} {unit}"
