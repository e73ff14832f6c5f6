"""load(): an ONNX model (path, bytes or Graph) -> a Predictor bound to engines."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from .executor import Predictor
from .ir import Graph
from .memory import MAX_BYTES, PLAN_CACHE_BYTES
from .onnx_io import load_model


def load(
    path: str | os.PathLike | bytes | Graph,
    engines: Sequence[Any] | str | None = None,
    threads: int | None = None,
    optimize: bool = True,
    precision: str = "fp32",
    auto: bool = False,
    max_bytes: int = MAX_BYTES,
    plan_cache_bytes: int = PLAN_CACHE_BYTES,
    measure: bool | None = None,
) -> Predictor:
    """Load an ONNX model (path, bytes or Graph), run the graph passes, bind it to engines.

    engines: None (every available engine, each node on the one measured fastest for it on
    this machine, measured once and cached: runtime/measured.py), names ("torch,reference":
    that preference order), engine objects, or "auto" (every node timed on the first run at
    each size in this process). measure: measure engines given by name too (True), or never
    (False: the preference order decides; also PALMBRUSH_MEASURE=0).
    max_bytes: the most the weights, and the weights plus one input size's activations, may
    take; plan_cache_bytes: the most the plans and arenas kept for the input sizes seen may
    take, least recently used out first (defaults in runtime/memory.py).
    """
    graph = path if isinstance(path, Graph) else load_model(path, max_bytes=max_bytes)
    return Predictor(
        graph, engines, threads, optimize, precision, auto, max_bytes, plan_cache_bytes, measure
    )
