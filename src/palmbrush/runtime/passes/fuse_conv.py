"""Fold what surrounds a convolution into one FusedConv node, one rule at a time:

# Pad(reflect | edge | zeros, on H and W) -> Conv  =>  FusedConv(pad_mode, pre_pads)
# Resize(nearest, integer scales, floor coordinates) -> Conv  =>  FusedConv(upsample)
# Conv -> InstanceNormalization  =>  FusedConv(norm=instance)
# Conv -> Relu | LeakyRelu | Sigmoid  =>  FusedConv(activation)
# Add(Conv(...), r) with r the same shape  =>  FusedConv(residual=r)
"""

from __future__ import annotations

from ..ir import Graph
from ..ops.schema_nn import nearest_factors
from .common import (
    absorb,
    as_fused,
    const,
    input_at,
    is_plain_conv,
    only_consumer,
    producer,
    set_input,
)

ACTIVATIONS = {"Relu": "relu", "LeakyRelu": "leaky_relu", "Sigmoid": "sigmoid"}


def fuse_pad(graph: Graph) -> int:
    fused = 0
    for pad in [n for n in graph.nodes if n.op == "Pad"]:
        conv = only_consumer(graph, pad.outputs[0])
        mode = pad.attrs.get("mode", "constant")
        pads = const(graph, input_at(pad, 1))
        fill = const(graph, input_at(pad, 2))
        if not (is_plain_conv(conv) and conv.inputs[0] == pad.outputs[0]) or input_at(pad, 3):
            continue
        if conv.attrs.get("auto_pad", "NOTSET") != "NOTSET" or conv.attrs.get("pre_pads") or \
                conv.attrs.get("upsample"):  # fmt: skip
            continue
        if pads is None or len(pads) != 8 or any(pads[[0, 1, 4, 5]]) or (pads < 0).any():
            continue
        if mode not in ("constant", "reflect", "edge") or (fill is not None and fill.any()):
            continue
        as_fused(conv).attrs.update(pad_mode=mode, pre_pads=[int(p) for p in pads[[2, 3, 6, 7]]])
        conv.inputs[0] = pad.inputs[0]
        graph.nodes.remove(pad)
        graph.values.pop(pad.outputs[0], None)
        fused += 1
    return fused


def fuse_norm(graph: Graph) -> int:
    fused = 0
    for norm in [n for n in graph.nodes if n.op == "InstanceNormalization"]:
        conv = producer(graph, norm.inputs[0])
        if not is_plain_conv(conv) or only_consumer(graph, conv.outputs[0]) is not norm:
            continue
        as_fused(conv).attrs.update(norm="instance", epsilon=norm.attrs.get("epsilon", 1e-5))
        set_input(conv, 3, norm.inputs[1])
        set_input(conv, 4, norm.inputs[2])
        absorb(graph, conv, norm)
        fused += 1
    return fused


def fuse_activation(graph: Graph) -> int:
    fused = 0
    for act in [n for n in graph.nodes if n.op in ACTIVATIONS]:
        conv = producer(graph, act.inputs[0])
        if conv is None or conv.op not in ("Conv", "FusedConv") or input_at(conv, 5):
            continue
        if conv.attrs.get("activation", "none") != "none":
            continue
        if only_consumer(graph, conv.outputs[0]) is not act:
            continue
        as_fused(conv).attrs.update(
            activation=ACTIVATIONS[act.op], alpha=act.attrs.get("alpha", 0.01)
        )
        absorb(graph, conv, act)
        fused += 1
    return fused


def fuse_residual(graph: Graph) -> int:
    fused = 0
    for add in [n for n in graph.nodes if n.op == "Add"]:
        for side in (0, 1):
            conv = producer(graph, add.inputs[side])
            other = add.inputs[1 - side]
            if conv is None or conv.op not in ("Conv", "FusedConv") or input_at(conv, 5):
                continue
            if only_consumer(graph, conv.outputs[0]) is not add or not _residual_like(graph, add):
                continue
            set_input(as_fused(conv), 5, other)
            absorb(graph, conv, add)
            fused += 1
            break
    return fused


def _residual_like(graph: Graph, add) -> bool:
    """Same rank, and every dim known on both sides is equal (FusedConv broadcasts like Add)."""
    a, b = (graph.values.get(i) for i in add.inputs)
    if a is None or b is None or a.shape is None or b.shape is None or len(a.shape) != len(b.shape):
        return False
    return all(x == y for x, y in zip(a.shape, b.shape) if x is not None and y is not None)


def fuse_upsample(graph: Graph) -> int:
    fused = 0
    for resize in [n for n in graph.nodes if n.op == "Resize"]:
        conv = only_consumer(graph, resize.outputs[0])
        if conv is None or conv.op not in ("Conv", "FusedConv") or conv.attrs.get("upsample"):
            continue
        if (
            conv.inputs[0] != resize.outputs[0]
            or (factors := _nearest_factors(graph, resize)) is None
        ):
            continue
        as_fused(conv).attrs["upsample"] = factors
        conv.inputs[0] = resize.inputs[0]
        graph.nodes.remove(resize)
        graph.values.pop(resize.outputs[0], None)
        fused += 1
    return fused


def _nearest_factors(graph: Graph, resize) -> list[int] | None:
    """[sh, sw] when the Resize is a nearest upsampling of H, W by integer factors whose
    coordinates are floor(x / s), which is what FusedConv's upsample computes."""
    x = graph.values.get(resize.inputs[0])
    if input_at(resize, 3) or x is None or x.shape is None or len(x.shape) != 4:
        return None
    factors = nearest_factors(resize.attrs, const(graph, input_at(resize, 2)))
    return None if isinstance(factors, str) else factors
