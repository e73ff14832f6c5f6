"""The first runs of a model whose best engine still has to compile its kernels.

The cpu engine's kernels are compiled by Numba the first time this machine runs them (then
loaded from disk: ~0.5 s). On a fresh install that took 27 s for a shipped style, so with the
default engines a Predictor does what a tiered JIT does: its first run starts the compiled plan
in a background thread and waits for it while nothing compiles (the kernels load from disk,
and the picture is the compiled plan's); as soon as a compile starts it runs the same graph on
the engines that need no compiling (the reference: the torch engine's gathers are Numba
kernels too) and keeps doing so, said in the log, in `plan_at` and in `profile`, until the
background run has finished. Meanwhile the background run holds its own buffers, so memory
peaks at about twice one run's. Asking for an engine by name (engines="cpu") waits for it
instead; PALMBRUSH_INTERIM=0 turns this off. A process that exits mid-compile keeps the kernels
that were finished (each is cached when compiled).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from . import registry
from .ir import Graph
from .plan import Step

WAIT_S = 1.0  # without a compile counter: how long a first run waits for the compiled plan
POLL_S = 0.02
COMPILING = "compiling its kernels for this machine (first use); runs once they are ready"
NUMBA = threading.Lock()  # one run of compiled kernels at a time in a process, unless Numba's
# threading layer takes parallel regions from several threads at once (see compiled_turn)
THREADSAFE_LAYERS = ("omp", "tbb")  # Numba's workqueue layer aborts on concurrent regions


def side_by_side() -> bool:
    """Whether runs on several threads can have compiled kernels running at once: Numba is
    not there, or its threading layer setting lets it pick a threadsafe layer that loads here
    (tbb needs libtbb, omp libgomp); workqueue serializes them (compiled_turn)."""
    import importlib.util

    if importlib.util.find_spec("numba") is None:
        return True
    layer = importlib.import_module("numba").config.THREADING_LAYER
    pools = {"default": ("tbbpool", "omppool"), "threadsafe": ("tbbpool", "omppool"),
             "safe": ("tbbpool",), "tbb": ("tbbpool",), "omp": ("omppool",)}  # fmt: skip
    for pool in pools.get(layer, ()):
        try:
            importlib.import_module(f"numba.np.ufunc.{pool}")
            return True
        except ImportError:  # its library is missing
            continue
    return False


def compiled_turn():
    """What a run of compiled kernels holds: nothing where Numba's threading layer is
    threadsafe (frames may then run side by side, as the video path's workers do), else
    NUMBA. Before Numba has started its threads the layer is unknown: the lock."""
    numba = sys.modules.get("numba")
    try:
        layer = numba.threading_layer() if numba is not None else None
    except ValueError:  # no parallel region has run yet
        layer = None
    return contextlib.nullcontext() if layer in THREADSAFE_LAYERS else NUMBA


log = logging.getLogger("palmbrush.runtime")


def enabled() -> bool:
    return os.environ.get("PALMBRUSH_INTERIM", "1").strip().lower() not in ("0", "false", "no")


def compiling_engines(engines: list[Any]) -> list[Any]:
    return [e for e in engines if getattr(e, "COMPILES", False)]


def interim_steps(graph: Graph, engines: list[Any], steps: list[Step]) -> list[Step] | None:
    """The steps to run while the engines that compile (COMPILES = True) are compiling, each
    saying why; None if no step is on such an engine. (assign() walks the same toposort, so
    step i of both lists is the same node.)"""
    compiling = {registry.engine_name(e) for e in compiling_engines(engines)}
    if not any(step.engine in compiling for step in steps):
        return None
    others = [e for e in engines if registry.engine_name(e) not in compiling]
    interim = registry.assign(graph, others, graph.values)
    for i, (step, stand_in) in enumerate(zip(steps, interim)):
        assert step.node is stand_in.node
        if step.engine in compiling:
            interim[i] = replace(stand_in, declined={step.engine: COMPILING, **stand_in.declined})
    return interim


class FirstRuns:
    """A Predictor's runs until its compiled plan has run once: that run goes to a
    background thread; a first run waits for it while nothing compiles (the kernels load from
    disk), and runs the interim steps from the moment a compile starts."""

    def __init__(self, steps: list[Step], engines: list[Any]):
        self.steps = steps
        self._counters = [getattr(e, "compile_count", None) for e in compiling_engines(engines)]
        self._started = False
        self._result: Any = None
        self._error: BaseException | None = None
        self._done = threading.Event()

    def compiling(self) -> bool:
        """Whether runs use the interim steps now."""
        return self._started and not self._done.is_set()

    def pending(self) -> bool:
        """Whether runs still go through run(): not started, compiling, or an error to raise."""
        return not self._done.is_set() or self._error is not None

    def ready(self, timeout: float | None) -> bool:
        if self._started and not self._done.wait(timeout):
            return False
        self._raise()
        return True

    def run(self, compiled: Callable[[], Any], interim: Callable[[], Any]) -> tuple[str, Any]:
        """("compiled", its result) if this first run's compiled plan finished without
        compiling; ("interim", interim()'s result) while an engine compiles; ("ready", None)
        once the compiled plan has run (the next runs are the predictor's own)."""
        if self._done.is_set():
            self._raise()
            return "ready", None
        if not self._started:
            self._start(compiled)
            if self._wait_unless_compiling():
                self._raise()
                result, self._result = self._result, None
                return "compiled", result
            self._announce()
        return "interim", interim()

    def _start(self, run: Callable[[], Any]) -> None:
        def work():
            try:
                self._result = run()
            except BaseException as exc:
                self._error = exc
                log.warning("the compiled plan failed: %s", exc)
            finally:
                self._done.set()

        self._started = True
        threading.Thread(target=work, name="palmbrush-compile", daemon=True).start()

    def _wait_unless_compiling(self) -> bool:
        """Wait for the background run; False as soon as a compile starts (or, for engines
        with no compile counter, after WAIT_S)."""
        if None in self._counters:
            return self._done.wait(WAIT_S)
        before = sum(count() for count in self._counters)
        while not self._done.wait(POLL_S):
            if sum(count() for count in self._counters) > before:
                return False
        return True

    def _raise(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _announce(self) -> None:
        moved = [s for s in self.steps if COMPILING in s.declined.values()]
        waiting = sorted({n for s in moved for n, why in s.declined.items() if why == COMPILING})
        stand_ins = sorted({s.engine for s in moved})
        log.info(
            "%s compiling kernels for this machine (first use; each is cached once compiled); "
            "until they are ready, %s runs those nodes",
            " and ".join(f"the {name} engine" for name in waiting)
            + (" are" if len(waiting) > 1 else " is"),
            " and ".join(f"the {name} engine" for name in stand_ins),
        )
