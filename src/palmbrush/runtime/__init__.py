"""palmbrush.runtime: run ONNX graphs on pluggable engines; needs only numpy and onnx.

Names are imported on first use (PEP 562), so `import palmbrush.runtime.errors` or a
subcommand's `--help` does not load onnx, NumPy and the executor.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "FeedError": "errors",
    "ModelError": "errors",
    "PalmbrushError": "errors",
    "Unsupported": "errors",
    "Graph": "ir",
    "Node": "ir",
    "Value": "ir",
    "verify": "verification",
    "NodeTime": "executor",
    "Predictor": "executor",
    "load": "api",
    "load_model": "onnx_io",
    "save_model": "onnx_io",
}
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
]  # the keys of _EXPORTS

if TYPE_CHECKING:
    from .api import load
    from .errors import FeedError, ModelError, PalmbrushError, Unsupported
    from .executor import NodeTime, Predictor
    from .ir import Graph, Node, Value
    from .onnx_io import load_model, save_model
    from .verification import verify


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
