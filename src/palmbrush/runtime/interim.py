"""The first runs of a model whose best engine still has to compile its kernels.

The cpu engine's kernels are compiled by Numba the first time this machine runs them (then
loaded from disk: ~0.5 s). On a fresh install that took 27 s for a shipped style, so with the
default engines a Predictor does what a tiered JIT does: its first run starts the compiled plan
in a background thread and waits up to WAIT_S for it (enough when the kernels are on disk
already, and then the picture is the compiled plan's); otherwise it runs the same graph on the
engines that need no compiling (the torch engine, the reference) and keeps doing so, said in
the log, in `plan_at` and in `profile`, until the background run has finished. Asking for an
engine by name (engines="cpu") waits for it instead; PALMBRUSH_INTERIM=0 turns this off.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from . import registry
from .ir import Graph
from .plan import Step

WAIT_S = 1.0  # how long a first run waits for the compiled plan before it runs the interim one
COMPILING = "compiling its kernels for this machine (first use); runs once they are ready"
log = logging.getLogger("palmbrush.runtime")


def enabled() -> bool:
    return os.environ.get("PALMBRUSH_INTERIM", "1") != "0"


def interim_steps(graph: Graph, engines: list[Any], steps: list[Step]) -> list[Step] | None:
    """The steps to run while the engines that compile (COMPILES = True) are compiling, each
    saying why; None if no step is on such an engine."""
    compiling = {registry.engine_name(e) for e in engines if getattr(e, "COMPILES", False)}
    if not any(step.engine in compiling for step in steps):
        return None
    others = [e for e in engines if registry.engine_name(e) not in compiling]
    interim = registry.assign(graph, others, graph.values)
    for i, (step, stand_in) in enumerate(zip(steps, interim)):
        if step.engine in compiling:
            interim[i] = replace(stand_in, declined={step.engine: COMPILING, **stand_in.declined})
    return interim


class Warmup:
    """One background run of the compiled plan; its result or error, once finished."""

    def __init__(self):
        self.started = False
        self.result: Any = None
        self.error: BaseException | None = None
        self._done = threading.Event()

    def start(self, run: Callable[[], Any]) -> None:
        def work():
            try:
                self.result = run()
            except BaseException as exc:
                self.error = exc
            finally:
                self._done.set()

        self.started = True
        threading.Thread(target=work, name="palmbrush-compile", daemon=True).start()

    def finished(self) -> bool:
        return self._done.is_set()

    def wait(self, seconds: float) -> bool:
        return self._done.wait(seconds)

    def announce(self, interim: list[Step]) -> None:
        moved = [s for s in interim if COMPILING in s.declined.values()]
        waiting = sorted(
            {name for s in moved for name, why in s.declined.items() if why == COMPILING}
        )
        stand_ins = sorted({s.engine for s in moved})
        engines = " and ".join(f"the {name} engine" for name in waiting)
        log.info(
            "%s compiling kernels for this machine (first use; cached after); until they are "
            "ready, %s runs those nodes",
            engines + (" are" if len(waiting) > 1 else " is"),
            " and ".join(stand_ins),
        )
