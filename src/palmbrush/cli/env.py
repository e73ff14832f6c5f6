"""`palmbrush env`: versions and engines, for bug reports."""

from __future__ import annotations

import argparse
import importlib
import platform


def add_parser(sub) -> None:
    p = sub.add_parser("env", help="print versions and engines (paste into bug reports)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from palmbrush import __version__
    from palmbrush.runtime import registry

    print(f"palmbrush {__version__}")
    print(f"python {platform.python_version()} on {platform.platform()}")
    for name in ("numpy", "onnx", "onnxruntime", "torch", "numba"):
        try:
            version = importlib.import_module(name).__version__
        except ImportError:
            version = "not installed"
        print(f"{name} {version}")
    print("engines (in preference order):")
    for engine in registry.resolve(None):
        print(f"  {engine.NAME}: available")
    for name, module in registry.discover().items():
        if not module.available():
            reason = getattr(module, "unavailable_reason", lambda: "not installed")()
            print(f"  {name}: unavailable ({reason})")
    return 0
