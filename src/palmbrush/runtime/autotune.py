"""engines="auto": time every engine that accepts a node, on the first run at each input size.

The fastest kernel wins and is kept in that size's plan; the others are recorded in its step as
declined with their times, so `plan_at` and `profile` show why each engine was chosen. The
reference engine never competes (it runs only what no faster engine accepts): timing it would
also leave its BLAS threads spinning against the other engines' threads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from .plan import Step

clock = time.perf_counter  # seconds; tests replace it to time kernels exactly


def pick(
    step: Step, candidates: list[tuple[str, Callable]], call: Callable, trials: int = 3,
    label: str = "auto",
):  # fmt: skip
    """Run each (engine, kernel) once untimed (its first call at a shape pays for one-time
    work: oneDNN's primitive and its JIT code, the first touch of fresh buffers' pages, which
    on a VM with transparent huge pages can take 100 ms for 40 MB), then `trials` times on
    this node's real inputs, taking turns (so caches and thread pools favour no one); keep the
    fastest by best time.

    `call(kernel)` runs the kernel and returns its results. Returns (the step as timing chose
    it, its results, engine -> best time in ms).
    """
    best = [float("inf")] * len(candidates)
    results: list = [None] * len(candidates)
    if len(candidates) > 1:
        for _, kernel in candidates:
            call(kernel)
    for _ in range(trials if len(candidates) > 1 else 1):
        for i, (_, kernel) in enumerate(candidates):
            start = clock()
            results[i] = call(kernel)
            best[i] = min(best[i], clock() - start)
    order = sorted(range(len(candidates)), key=lambda i: best[i])
    winner = order[0]
    name, kernel = candidates[winner]
    if winner != len(candidates) - 1:  # a later candidate may have written the same planned
        results[winner] = call(kernel)  # output buffer since: the winner's result, once more
    declined = dict(step.declined)
    declined.pop(name, None)
    for i in order[1:]:
        declined[candidates[i][0]] = (
            f"{label}: {best[i] * 1e3:.3f} ms vs {best[winner] * 1e3:.3f} ms on {name}"
        )
    times = {candidates[i][0]: best[i] * 1e3 for i in order}
    return replace(step, kernel=kernel, engine=name, declined=declined), results[winner], times
