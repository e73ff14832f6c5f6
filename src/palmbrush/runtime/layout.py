"""Memory layouts of 4-D float tensors between engines: planar NCHW (the cpu and reference
engines) and channels-last (the torch engine: logical NCHW, memory NHWC).

The consumer converts what it is given, in one streaming pass (engines/_numba/ops.py); this
module lets the measuring of engines (measured.py, autotune.py) charge a producer for the
conversion its output will need, so a node is not given to an engine whose fast kernel only
moves the cost into its consumer's conversion.
"""

from __future__ import annotations

import numpy as np


def charge_conversion(results) -> None:
    """Convert every channels-last result to planar, as the next planar kernel will (timing
    only: the converted copy is dropped)."""
    from .engines import _numba

    if not _numba.available():
        return
    from .engines._numba import ops

    for array in results:
        if isinstance(array, np.ndarray) and ops.channels_last(array):
            ops.planar(array)
