"""Code the cpu and torch engines share, so neither imports the other: the Numba kernels
(kernels.py, and codegen.py's generated convolutions), the array operations built on
them (ops.py) and the NumPy window geometry they read (tables.py).
Importing this package does not import Numba."""

from __future__ import annotations

import importlib.util


def available() -> bool:
    return importlib.util.find_spec("numba") is not None


def compile_count() -> int:
    """How many kernel compiles this process has started (Numba cache misses of the shared
    kernels and the generated ones); interim.py watches it to see a compile begin."""
    import sys

    if "numba" not in sys.modules:
        return 0
    from . import codegen

    kernels = sys.modules.get(f"{__name__}.kernels")
    with codegen._LOCK:
        dispatchers = list(codegen._LOADED.values())
    dispatchers += [v for v in vars(kernels).values() if hasattr(v, "stats")] if kernels else []
    return sum(sum(d.stats.cache_misses.values()) for d in dispatchers)
