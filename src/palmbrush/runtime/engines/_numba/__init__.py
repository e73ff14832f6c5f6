"""Code the cpu and torch engines share, so neither imports the other: the Numba kernels
(kernels.py, and codegen.py's generated convolutions), the array operations built on
them (ops.py) and the NumPy window geometry they read (tables.py).
Importing this package does not import Numba."""

from __future__ import annotations

import importlib.util


def available() -> bool:
    return importlib.util.find_spec("numba") is not None
