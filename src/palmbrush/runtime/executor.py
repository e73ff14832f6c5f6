"""Predictor: copy the graph -> verify -> passes -> assign engines -> plan memory -> run."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from ..contract import MAX_THREADS
from . import autotune, interim, layout, measured, passes, places, registry
from . import memory as mem
from .engines.reference import KERNELS as REFERENCE
from .errors import PalmbrushError
from .feeds import check_feeds
from .ir import Graph, Value
from .ops import infer_values
from .ops.identity import returns_input
from .plan import Choice, Step
from .verification import verify


@dataclass
class NodeTime:
    node: str  # a node's name, or for a transfer or conversion the value moved or converted
    op: str  # a node's op, "Transfer" (places.py) or "Convert" (layout.py)
    engine: str  # for a transfer or conversion: "from -> to"
    ms: float
    declined: dict[str, str]  # engine -> why it does not run this node


class Predictor:
    """A loaded model bound to engines; run() it on frames of any size its inputs allow.

    It works on its own copy of the graph, and keeps its decisions (steps: node, kernel,
    engine, why the others declined) in its own plan, per input size when engines are timed
    (no engine flags: measured.py; engines="auto").

    max_bytes bounds the weights plus the activations of one input size (a larger frame is a
    FeedError before anything is allocated); plan_cache_bytes bounds the plans and arenas
    kept for the input sizes seen, least recently used out first (the newest is always kept).
    """

    def __init__(
        self,
        graph: Graph,
        engines: Sequence[Any] | str | None = None,
        threads: int | None = None,
        optimize: bool = True,
        precision: str = "fp32",
        auto: bool = False,
        max_bytes: int = mem.MAX_BYTES,
        plan_cache_bytes: int = mem.PLAN_CACHE_BYTES,
        measure: bool | None = None,
    ):
        whole = isinstance(threads, int) and not isinstance(threads, bool)
        if threads is not None and not (whole and 1 <= threads <= MAX_THREADS):
            raise PalmbrushError(
                f"threads must be a whole number from 1 to {MAX_THREADS}, got {threads}"
            )
        graph = graph.copy()  # passes rewrite it, verify writes inferred shapes onto it
        verify(graph)
        self.rewrites = passes.optimize(graph) if optimize else {}
        if optimize:
            verify(graph)
        self.graph = graph
        self.threads = threads
        self.auto = auto or engines == "auto"  # engines="auto": the best available, timed
        default = engines is None and not self.auto
        if measure is None:  # no engine flags: each node on the engine measured fastest here
            measure = default and measured.enabled()
        self.measured = measure and not self.auto
        engines = None if engines == "auto" else engines
        self.engines = registry.with_precision(registry.resolve(engines), precision)
        self.steps: list[Step] = registry.assign(graph, self.engines, graph.values)
        self._tunes = self.auto or self.measured  # choices per input size, by timing
        self._candidates = (
            registry.candidates(graph, self.engines, graph.values, preferences=self.measured)
            if self._tunes
            else []
        )
        self._choices = (
            measured.Choices(measured.machine_key(self.engines, threads, precision))
            if self._tunes
            else None
        )
        interim_steps = (
            interim.interim_steps(graph, self.engines, self.steps)
            if default and interim.enabled()
            else None
        )
        self._first = interim.FirstRuns(interim_steps, self.engines) if interim_steps else None
        self._last_steps = self.steps  # what the latest run ran, for profile()
        self._last_moves: list[tuple[int, str, str, str, float]] = []  # and its moves, conversions
        used = {s.engine for s in self.steps + (interim_steps or [])}
        used |= {name for c in self._candidates for name, _ in c}
        self._used = [e for e in self.engines if registry.engine_name(e) in used]
        self._places = {registry.engine_name(e): places.place_of(e) for e in self.engines}
        self._movers = {places.place_of(e): e for e in self.engines if places.place_of(e)}
        self._serial = bool(interim.compiling_engines(self._used))  # runs take compiled_turn()
        self._apply_threads()
        kernels = [s.kernel for s in self.steps] + [k for c in self._candidates for _, k in c]
        kernels += [s.kernel for s in interim_steps or []]
        self._writes_into = any(getattr(k, "writes_into", False) for k in kernels)
        self.max_bytes = max_bytes
        self.plan_cache = mem.PlanCache(plan_cache_bytes)  # input shapes -> _SizePlan
        self._weight_bytes = sum(a.nbytes for a in graph.initializers.values())
        self._lock = threading.Lock()
        self._computed = {out for node in graph.nodes for out in node.outputs if out}

    @property
    def plan(self) -> list[Choice]:
        """Which engine runs each node, why the engines before it declined, and the transfers
        its inputs need (places.py), as chosen at load time (with engines="auto", plan_at()
        gives what timing chose at a size)."""
        return self._choices_of(self.steps)

    def _choices_of(self, steps: list[Step], plan: _SizePlan | None = None) -> list[Choice]:
        """Each step's choice, with the transfers its inputs need (at a size: `plan`'s)."""
        constants, folded, aliases = (
            (plan.constants, plan.folded, plan.aliases) if plan else ((), (), ())
        )
        movable = partial(self._movable, constants)
        moves = places.transfers(steps, self._places, movable, folded, aliases)
        return [step.choice(moved) for step, moved in zip(steps, moves)]

    def _movable(self, constants, name: str) -> bool:
        """Whether a value is computed per run (moved between places), not a constant at
        this size (device kernels upload those once)."""
        return name not in constants and (name in self._computed or name in self.graph.inputs)

    def plan_at(self, feeds_or_shapes: dict[str, Any]) -> list[Choice]:
        """The plan at these input shapes: with engines="auto", the engines timing chose on
        the first run at this size (the load-time plan until then); while an engine compiles
        on a fresh machine, the interim plan the runs use (interim.py)."""
        plan = self._prepare(self._input_values(feeds_or_shapes))
        if self._first is not None and self._first.compiling():
            return self._choices_of(self._first.steps, plan)
        return self._choices_of(plan.tuned or self.steps, plan)

    def tuned_at(self, feeds_or_shapes: dict[str, Any]) -> bool:
        """Whether this size's engines are chosen by timing (here or, when measured, by an
        earlier process on this machine) rather than by the preference order alone."""
        return self._prepare(self._input_values(feeds_or_shapes)).tuned is not None

    def ready(self, timeout: float | None = None) -> bool:
        """False while runs use the interim plan of interim.py (a fresh machine's first runs,
        its engines compiling in the background): waits up to `timeout` seconds (None: until
        the compile is done) for that to end. Raises the compiled plan's error, if it had one."""
        return self._first is None or self._first.ready(timeout)

    def _apply_threads(self) -> None:
        """The thread count on the engines that run something (importing torch takes 3 s);
        per thread for Numba, so the background compile thread calls it too."""
        for engine in self._used:
            if self.threads and hasattr(engine, "set_threads"):
                engine.set_threads(self.threads)

    @property
    def inputs(self) -> list[Value]:
        return [self.graph.values[n] for n in self.graph.inputs]

    @property
    def outputs(self) -> list[Value]:
        return [self.graph.values[n] for n in self.graph.outputs]

    def shapes(self, feeds_or_shapes: dict[str, Any]) -> dict[str, Value]:
        """Every value's dtype and concrete shape for these input shapes (nothing is run)."""
        return self._prepare(self._input_values(feeds_or_shapes)).values

    def memory_plan(self, feeds_or_shapes: dict[str, Any]) -> mem.MemoryPlan:
        return self._prepare(self._input_values(feeds_or_shapes)).memory

    def specialized(self, feeds_or_shapes: dict[str, Any]) -> dict[str, str]:
        """Nodes that do not run at these input shapes: node name -> "folded" (its outputs are
        constants at this size: shape arithmetic) or "no-op" (it returns its input as is)."""
        plan = self._prepare(self._input_values(feeds_or_shapes))
        names = [step.node.name for step in self.steps]
        return {names[i]: ("folded" if i in plan.folded else "no-op") for i in plan.skipped}

    def run(
        self, feeds: dict[str, np.ndarray], intermediates: bool = False
    ) -> dict[str, np.ndarray]:
        """Outputs by name; with intermediates=True, every value the graph computed as well."""
        return self._execute(feeds, intermediates, None)

    def profile(self, feeds: dict[str, np.ndarray], repeat: int = 1) -> list[NodeTime]:
        """Per-node time (median over `repeat` runs) and engine, in execution order, with a
        row before the node that needed it for each transfer between places (op "Transfer")
        and each layout conversion (op "Convert", layout.py)."""
        if self._tunes:
            self._execute(feeds, False, None)  # time engines per node before timing the run
        runs: list[list[float]] = []
        moves: dict[tuple[int, str, str, str], list[float]] = {}
        for _ in range(max(1, repeat)):
            times: list[float] = []
            self._execute(feeds, False, times)
            runs.append(times)
            for index, name, op, route, ms in self._last_moves:
                moves.setdefault((index, name, op, route), []).append(ms)
        median = np.median(np.array(runs), axis=0)

        def before(index: int) -> list[NodeTime]:
            return [NodeTime(name, op, route, float(np.median(t)), {})
                    for (at, name, op, route), t in moves.items() if at == index]  # fmt: skip

        rows = []
        for index, (step, ms) in enumerate(zip(self._last_steps, median)):
            rows += before(index)
            choice = step.choice()
            rows.append(NodeTime(choice.node, choice.op, choice.engine, float(ms), choice.declined))
        return rows + before(len(self._last_steps))  # the outputs, handed over as NumPy arrays

    def _execute(self, feeds, intermediates: bool, times: list[float] | None):
        with self._lock:  # one run at a time: runs at one size share that size's arena
            if self._first is not None and self._first.pending():
                kind, result = self._first_run(feeds, intermediates, times)
                if kind == "interim" or (
                    kind == "compiled" and not intermediates and times is None
                ):
                    return result
            return self._run_steps(feeds, intermediates, times)

    def _first_run(self, feeds, intermediates: bool, times: list[float] | None):
        """A run before the compiled plan has run once: interim.FirstRuns.run()."""
        checked = self._check_feeds(feeds)
        plan = self._prepare(self._input_values(checked))

        def compiled():
            return self._run_steps(checked, False, None, plan=plan)

        run_interim = partial(self._run_steps, feeds, intermediates, times, self._first.steps)
        return self._first.run(compiled, run_interim)

    def _run_steps(self, feeds, intermediates: bool, times: list[float] | None,
                   steps: list[Step] | None = None, plan: _SizePlan | None = None):  # fmt: skip
        """One run of `steps` (the predictor's own by default). Given a `plan`, the run is a
        private one (the background run of interim.py): it shares no arena and records
        nothing on the predictor."""
        private = plan is not None
        self._apply_threads()  # per calling thread for Numba: runs may come from any thread
        if self._serial and steps is None:  # compiled kernels: interim.compiled_turn()
            with interim.compiled_turn():
                return self._loop(feeds, intermediates, times, steps, plan, private)
        return self._loop(feeds, intermediates, times, steps, plan, private)

    def _loop(self, feeds, intermediates, times, steps, plan, private):
        feeds = self._check_feeds(feeds)
        plan = plan or self._prepare(self._input_values(feeds))
        values, mplan = plan.values, plan.memory
        env: dict[str, np.ndarray] = {
            n: v.const for n, v in self.graph.values.items() if v.const is not None
        }
        env.update(plan.constants)
        env.update(feeds)
        if self._writes_into and plan.arena is None and not private:
            plan.arena = mem.Arena(mplan)
        arena = None if private else plan.arena
        tuned = plan.tuned if steps is None else None  # given steps (interim) run as they are
        tune = self._tunes and tuned is None and steps is None and not private
        # (never in interim.py's background run: its times would be taken against the interim
        # runs on the same cores, and a process may exit before it saves them)
        kept: dict[str, np.ndarray] = {}
        chosen: list[Step] = []
        # the arena holds layout copies for the steps its memory plan was made for, which are
        # not those a timing run tries or the given (interim) steps: theirs are new arrays
        planned = arena if steps is None and not tune else None
        mover = places.Mover(self._movers, partial(_copy_buffer, planned, values))
        moves: list[tuple[int, str, str, str, float]] = []
        for index, step in enumerate(steps or self.steps):
            node = step.node
            logged = len(mover.log)
            args = partial(self._arguments, node, env, mover, plan.constants)
            start = time.perf_counter()
            if index in plan.skipped:  # folded at this size, or a no-op: nothing to run
                results = [env[node.inputs[0]]] if index in plan.aliases else ()
                place = mover.held.get(node.inputs[0]) if results else None
            elif tune and plan.keys[index] is not None:
                step, results = self._time(step, index, plan, args, arena, values)
                place = self._places[step.engine]
            else:
                step = tuned[index] if tuned is not None else step
                place = self._places[step.engine]
                results = _call(step, step.kernel, args(place, step.kernel), arena, values)
            chosen.append(step)
            moved = mover.log[logged:]
            if times is not None and place is not None:  # a device runs asynchronously
                self._movers[place].synchronize()
            if times is not None:
                spent = sum(ms for *_, ms in moved)
                times.append((time.perf_counter() - start) * 1e3 - spent)
            moves += [(index, *move) for move in moved]
            for name, array in zip(node.outputs, results):
                if name:
                    env[name] = array
                    mover.stored(name, array, place)
            for name in mplan.free_after[index]:
                array = env.pop(name)
                if intermediates:
                    kept[name] = _detach(np.asarray(mover.host(name, array)), arena)
                mover.freed(name)
        if tune:
            plan.tuned = chosen
            self._choices.save()
            self._plan_memory(plan)  # the chosen engines' conversions get their buffers
        logged = len(mover.log)
        outputs = {
            name: _detach(np.asarray(mover.host(name, env[name])), arena)
            for name in self.graph.outputs
        }
        moves += [(len(chosen), *move) for move in mover.log[logged:]]
        if not private:
            self._last_steps, self._last_moves = chosen, moves
        if not intermediates:
            return outputs
        computed = {
            n: np.asarray(mover.host(n, a))
            for n, a in env.items()
            if n not in feeds and n in self._computed
        }
        return {**kept, **computed, **outputs}

    def _arguments(self, node, env, mover: places.Mover, constants, place, kernel) -> list:
        """The node's inputs where `kernel` (of `place`) reads them, moved there if need be
        and in the layout it reads (layout.py); the inputs it lists in host_inputs (index
        arguments) always on the host."""
        host = getattr(kernel, "host_inputs", ())
        planar = layout.reads_planar_only(kernel)
        return [
            mover.get(name, env[name], None if i in host else place,
                      self._movable(constants, name), planar) if name else None
            for i, name in enumerate(node.inputs)
        ]  # fmt: skip

    def _time(self, step, index: int, plan: _SizePlan, args, arena, values) -> tuple[Step, list]:
        """Time the engines that accept this step's node (started first: start-up is not the
        node's time), record the times for later processes, keep the fastest."""
        able = self._candidates[index]
        for name, _ in able:
            measured.start(self._engine(name), self._choices)
        engine_of = {id(kernel): name for name, kernel in able}

        def converted(kernel):  # the time to a planar host output, as cpu kernels read it
            place = self._places[engine_of[id(kernel)]]
            results = _call(step, kernel, args(place, kernel), arena, values)
            if place is not None:  # charged for the download its host consumers would need
                for result in results:
                    self._movers[place].download(result)
            layout.charge_conversion(results)
            return results

        label = "measured" if self.measured else "auto"
        step, results, times = autotune.pick(step, able, converted, label=label)
        self._choices.records[plan.keys[index]] = measured.Record.of(times)
        return step, results

    def _engine(self, name: str):
        return next(e for e in self.engines if registry.engine_name(e) == name)

    def _input_values(self, feeds: dict[str, Any]) -> dict[str, Value]:
        out = {}
        for name in self.graph.inputs:
            item = feeds[name]
            shape = tuple(item.shape) if hasattr(item, "shape") else tuple(item)
            dtype = item.dtype if hasattr(item, "dtype") else self.graph.values[name].dtype
            out[name] = Value(name, np.dtype(dtype), shape)
        return out

    def _prepare(self, inputs: dict[str, Value]) -> _SizePlan:
        key = tuple((n, v.shape) for n, v in inputs.items())
        plan = self.plan_cache.get(key)
        if plan is None:
            plan = self._plan(inputs)
            arena = plan.memory.arena_bytes if self._writes_into else 0
            self.plan_cache.put(key, plan, arena + plan.constant_bytes)
        return plan

    def _plan(self, inputs: dict[str, Value]) -> _SizePlan:
        values = infer_values(self.graph, inputs, kernels=REFERENCE)
        order = [step.node for step in self.steps]
        folded, constants, aliases = set(), {}, {}
        for step, node in enumerate(order):
            outs = [o for o in node.outputs if o]
            if all(values[o].const is not None for o in outs):
                folded.add(step)
                constants.update({o: values[o].const for o in outs})
            elif returns_input(node, values):
                aliases[step] = node.inputs[0]
        named = {order[step].outputs[0]: source for step, source in aliases.items()}
        plan = _SizePlan(values, None, folded, constants, set(aliases), aliased=named)
        if self._tunes:
            plan.keys = [
                measured.node_key(step, values, [name for name, _ in able])
                if len(able) > 1 and i not in plan.skipped
                else None
                for i, (step, able) in enumerate(zip(self.steps, self._candidates))
            ]
        if self.measured:  # times measured here before, by any process: no timing run
            plan.tuned = measured.decide(
                self.steps, plan.keys, self._choices, self.engines, self._candidates
            )
        self._plan_memory(plan)
        shapes = ", ".join(f"{name} {list(v.shape)}" for name, v in inputs.items())
        activations = plan.memory.total_bytes + plan.constant_bytes
        mem.check_budget(self._weight_bytes, activations, self.max_bytes, f"at {shapes}")
        return plan

    def _plan_memory(self, plan: _SizePlan) -> None:
        """Buffers for this size's values, and for the planar copies the steps it runs will
        convert (layout.py); made again once timing has chosen the engines (a new arena)."""
        steps = plan.tuned or self.steps
        movable = partial(self._movable, plan.constants)
        _, spans = layout.conversions(steps, movable, plan.folded, plan.aliases)
        extra = {
            name + layout.SUFFIX: (first, last, mem.nbytes_of(plan.values[name]))
            for name, (first, last) in spans.items()
            if mem.nbytes_of(plan.values[name]) is not None
        }
        order = [step.node for step in self.steps]
        memory = mem.plan_memory(order, self.graph, plan.values, plan.aliased, extra)
        if plan.memory is None or memory.offsets != plan.memory.offsets:
            plan.memory, plan.arena = memory, None  # a new arena on the next run

    def _check_feeds(self, feeds: dict[str, Any]) -> dict[str, np.ndarray]:
        return check_feeds(feeds, self.inputs)


@dataclass
class _SizePlan:
    """What the predictor knows for one set of input shapes."""

    values: dict[str, Value]  # every value's dtype and concrete shape
    memory: mem.MemoryPlan | None  # set by Predictor._plan_memory
    folded: set[int]  # steps whose outputs are constants here
    constants: dict[str, np.ndarray]  # their values
    aliases: set[int]  # steps that return their input unchanged
    aliased: dict[str, str] = field(default_factory=dict)  # their outputs -> their inputs
    arena: mem.Arena | None = None  # made on the first run, reused by every later one
    tuned: list[Step] | None = None  # the steps timing chose at this size (measured.py)
    keys: list[str | None] = field(default_factory=list)  # per step: its times' cache key

    @property
    def skipped(self) -> set[int]:
        return self.folded | self.aliases

    @property
    def constant_bytes(self) -> int:
        return sum(a.nbytes for a in self.constants.values())


def _call(step: Step, kernel, args: list, arena, values):
    """Run one kernel on its input values `args`; failures become one PalmbrushError naming
    the node and engine."""
    node, attrs = step.node, step.attrs
    planned = arena is not None and getattr(kernel, "writes_into", False)
    try:
        if planned:
            outs = [arena.view(name, values[name]) for name in node.outputs]
            result = kernel(*args, out=outs, **attrs)
        else:
            with np.errstate(all="ignore"):
                result = kernel(*args, **attrs)
    except PalmbrushError:
        raise
    except Exception as exc:
        raise PalmbrushError(f"{node.label()} failed on engine '{step.engine}': {exc}") from exc
    results = result if isinstance(result, tuple | list) else (result,)
    if arena is not None and not planned:  # a view into the arena (Reshape, Slice...) would
        results = [_detach(r, arena) for r in results]  # outlive the buffer it points into
    return results


def _copy_buffer(arena: mem.Arena | None, values: dict[str, Value], name: str):
    """The planned buffer of value `name`'s planar copy (layout.py), or None (a new array)."""
    if arena is None or name not in values:
        return None
    value = values[name]
    return arena.view(name + layout.SUFFIX, Value(name + layout.SUFFIX, value.dtype, value.shape))


def _detach(array, arena: mem.Arena | None):
    """A copy of arrays that live in the arena (it is overwritten by later steps and runs)."""
    owned = arena is not None and isinstance(array, np.ndarray) and arena.owns(array)
    return array.copy() if owned else array
