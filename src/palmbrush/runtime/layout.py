"""Memory layouts of 4-D float tensors on the host: planar NCHW (the cpu and reference engines'
results) and channels-last (the torch engine's: logical NCHW, memory NHWC).

Kernels declare them: `kernel.layout` is what a kernel's results are (when absent, its first
input's: NumPy's elementwise kernels keep their input's memory order), `kernel.layouts_in`
what it reads (any layout when absent; the cpu engine's kernels say PLANAR). Where a kernel
that reads only planar tensors is given a channels-last one, the executor converts it first,
in one streaming pass, once per run however many such kernels read it: a step of its own,
which `plan` lists with the node that needs it and `profile` times as a "Convert" row. (Once
per value name: the output of a no-op step, another name for the same array, is converted
again if a planar kernel reads it too; and the cuda engine declares no layout, so a planar
kernel reading its downloaded results converts them into a new array, shown by `profile` only.)
`conversions()` predicts them from the steps, so the memory plan gives each converted copy
its own buffer in the arena, alive from the first reader to the last; the executor checks
the arrays themselves, so a conversion the prediction missed is still made (into a new array).

When engines are timed (measured.py, autotune.py), a producer is charged for the conversion its
output will need (charge_conversion), so a node is not given to an engine whose fast kernel
only moves the cost into a conversion.
"""

from __future__ import annotations

import numpy as np

PLANAR, CHANNELS_LAST = "planar", "channels-last"
SUFFIX = "@planar"  # the converted copy of value v is planned as v + SUFFIX


def layout_of(kernel, inputs: list[str | None]) -> str:
    """The layout of a kernel's results, given its inputs' (None: a constant or absent)."""
    declared = getattr(kernel, "layout", None)
    return declared or next((found for found in inputs if found), PLANAR)


def reads_planar_only(kernel) -> bool:
    return tuple(getattr(kernel, "layouts_in", (PLANAR, CHANNELS_LAST))) == (PLANAR,)


def is_channels_last(x) -> bool:
    """A 4-D float32 array that is logical NCHW with NHWC memory (and not also planar)."""
    return (
        isinstance(x, np.ndarray) and x.ndim == 4 and x.dtype == np.float32
        and not x.flags.c_contiguous and x.transpose(0, 2, 3, 1).flags.c_contiguous
    )  # fmt: skip


def to_planar(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """A channels-last array as a planar one (into `out` when given): one streaming pass."""
    out = np.empty(x.shape, np.float32) if out is None else out
    from .engines import _numba

    if not _numba.available():  # no cpu engine then; NumPy for an engine that asks anyway
        np.copyto(out, x)
        return out
    from .engines._numba import ops

    return ops.planar_into(x, out)


def conversions(steps, movable, folded=(), aliases=()) -> tuple[list[list[str]], dict]:
    """Per step, the values converted to planar just before it runs; and each converted copy's
    span (first step, last step reading it). `movable(name)` says whether a value is computed
    per run (constants are never converted: kernels read them as they are); at an input size
    the steps `folded` run nothing and `aliases` pass their input on in its layout."""
    layout: dict[str, str] = {}
    spans: dict[str, list[int]] = {}
    found = []
    for index, step in enumerate(steps):
        converted = []
        if index in folded or index in aliases:
            if index in aliases and step.node.outputs[0]:
                layout[step.node.outputs[0]] = layout.get(step.node.inputs[0], PLANAR)
            found.append(converted)
            continue
        if reads_planar_only(step.kernel):
            for name in step.node.inputs:
                if not name or layout.get(name) != CHANNELS_LAST or not movable(name):
                    continue
                if name not in spans:
                    spans[name] = [index, index]
                    converted.append(name)
                spans[name][1] = index
        found.append(converted)
        made = layout_of(step.kernel, [layout.get(name) for name in step.node.inputs if name])
        for name in step.node.outputs:
            if name:
                layout[name] = made
    return found, {name: tuple(span) for name, span in spans.items()}


def charge_conversion(results) -> None:
    """Convert every channels-last result to planar, as the next planar kernel will (timing
    only: into a reused scratch buffer, as the run's conversion goes into a warm arena one)."""
    for array in results:
        if is_channels_last(array):
            from .engines._numba import ops

            ops.planar(array)
