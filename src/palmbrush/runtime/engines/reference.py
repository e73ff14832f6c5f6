"""The reference engine: plain NumPy kernels, complete and readable.

This engine is the executable spec. Every other engine is tested against it, op by op and
model by model; it never declines an op it lists and favours clarity over speed.
"""

from __future__ import annotations

from ._reference import elementwise, fused, nn, quant, resize, tensor

NAME = "reference"
KERNELS = {
    **elementwise.KERNELS,
    **nn.KERNELS,
    **tensor.KERNELS,
    **resize.KERNELS,
    **quant.KERNELS,
    **fused.KERNELS,
}


def available() -> bool:
    return True
