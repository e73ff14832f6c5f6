"""engines="auto": time every engine that accepts a node, on the first run at each input size.

The fastest kernel wins and is cached for that size; the others are recorded on the node as
declined with their times, so `plan` and `profile` show why each engine was chosen. The
reference engine never competes (it runs only what no faster engine accepts): timing it would
also leave its BLAS threads spinning against the other engines' threads.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def pick(node, candidates: list[tuple[str, Callable]], call: Callable, trials: int = 2):
    """Run each (engine, kernel) `trials` times on this node's real inputs; keep the fastest.

    `call(kernel)` runs the kernel and returns its results. Returns (kernel, results).
    """
    timed = []
    for name, kernel in candidates:
        best = float("inf")
        for _ in range(trials):  # the first call may pay one-off costs (allocation, JIT, caches)
            start = time.perf_counter()
            results = call(kernel)
            best = min(best, time.perf_counter() - start)
        timed.append((best, name, kernel, results))
    timed.sort(key=lambda t: t[0])
    fastest, winner, kernel, results = timed[0]
    node.engine = winner
    for seconds, name, _, _ in timed[1:]:
        node.declined[name] = f"auto: {seconds * 1e3:.3f} ms vs {fastest * 1e3:.3f} ms on {winner}"
    return kernel, results
