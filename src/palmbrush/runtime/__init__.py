"""palmbrush.runtime: run ONNX graphs on pluggable engines; needs only numpy and onnx."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from .errors import FeedError, ModelError, PalmbrushError, Unsupported
from .executor import NodeTime, Predictor
from .ir import Graph, Node, Value, verify
from .onnx_io import load_model, save_model

__all__ = [
    "FeedError",
    "Graph",
    "ModelError",
    "Node",
    "NodeTime",
    "PalmbrushError",
    "Predictor",
    "Unsupported",
    "Value",
    "load",
    "load_model",
    "save_model",
    "verify",
]


def load(
    path: str | os.PathLike | bytes | Graph,
    engines: Sequence[Any] | str | None = None,
    threads: int | None = None,
) -> Predictor:
    """Load an ONNX model (path, bytes or Graph) and bind it to engines, best first."""
    graph = path if isinstance(path, Graph) else load_model(path)
    return Predictor(graph, engines=engines, threads=threads)
