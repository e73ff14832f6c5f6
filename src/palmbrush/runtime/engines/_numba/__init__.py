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


def vector_registers() -> int:
    """The SIMD registers the compiled kernels get: 16 on x86 without AVX-512 (AVX2), else 32
    (AVX-512; NEON). Numba compiles for the host CPU unless NUMBA_CPU_FEATURES says otherwise."""
    import platform

    import numba

    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
        return 32
    wanted = numba.config.CPU_FEATURES
    if wanted:
        return 32 if "+avx512f" in wanted.split(",") else 16
    from llvmlite import binding

    return 32 if binding.get_host_cpu_features().get("avx512f") else 16
