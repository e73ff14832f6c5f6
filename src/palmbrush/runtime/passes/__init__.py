"""Graph passes: small rewrite rules, run in order; each returns how many rewrites it made.

Passes change how a graph computes, never what: on the reference engine an optimized graph
gives the same numbers as the original (tests check this, and verify() after every pass).
"""

from __future__ import annotations

from collections.abc import Callable

from ..engines.reference import KERNELS as REFERENCE
from ..ir import Graph
from ..ops import infer_graph
from ..verification import verify
from . import fold_batchnorm, fold_constants, fuse_conv, fuse_image, fuse_yuv, remove_dead

PASSES: list[tuple[str, Callable[[Graph], int]]] = [
    ("fold_constants", fold_constants.run),
    ("remove_dead", remove_dead.run),
    ("fuse_yuv_in", fuse_yuv.fuse_yuv_in),  # before the Conv rules: it reads plain Convs
    ("fuse_yuv_out", fuse_yuv.fuse_yuv_out),
    ("fold_batchnorm", fold_batchnorm.run),
    ("fuse_pad_conv", fuse_conv.fuse_pad),
    ("fuse_upsample_conv", fuse_conv.fuse_upsample),
    ("fuse_conv_norm", fuse_conv.fuse_norm),
    ("fuse_conv_activation", fuse_conv.fuse_activation),
    ("fuse_residual", fuse_conv.fuse_residual),
    ("fuse_from_image", fuse_image.fuse_from_image),
    ("fuse_to_image", fuse_image.fuse_to_image),
    ("fuse_yuv_gathers", fuse_yuv.fuse_yuv_gathers),
    ("remove_dead", remove_dead.run),
]


def optimize(graph: Graph, check: bool = False) -> dict[str, int]:
    """Run every pass in order on `graph` (in place); with check=True, verify() after each."""
    infer_graph(
        graph, kernels=REFERENCE
    )  # the rules read inferred shapes (folding sizes, residual shapes)
    counts: dict[str, int] = {}
    for name, rewrite in PASSES:
        counts[name] = counts.get(name, 0) + rewrite(graph)
        if check:
            verify(graph)
    return counts
