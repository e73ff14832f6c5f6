"""One parity matrix generated from the registry: every kernel of every engine against the
reference engine, on a case per op, with the tolerances in one table, and the engine that ran
each node asserted (a kernel that declined and left the node to the reference would pass a
picture test and fail here). An engine that is not installed skips with its reason; an op an
engine claims with no case here fails, so a new kernel cannot go untested."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from conftest import SAMPLE, make_model
from onnx import TensorProto, helper

from palmbrush.runtime import load, registry

F = TensorProto.FLOAT
RNG = np.random.default_rng(11)

# op -> assert_allclose arguments against the reference. Convolutions sum in another order than
# NumPy's; gathers and frame conversions are copies and roundings, so exact; a whole style
# network (the cases of the frame ops) ends in uint8 levels, where fp32 order moves one level.
TOLERANCE = {
    "Conv": dict(rtol=1e-4, atol=1e-4),
    "FusedConv": dict(rtol=1e-4, atol=1e-4),
    "Pad": dict(rtol=0, atol=0),
    "Resize": dict(rtol=0, atol=0),
    "FromImage": dict(rtol=0, atol=1),
    "ToImage": dict(rtol=0, atol=1),
    "FromYUV": dict(rtol=0, atol=1),
    "ToYUV": dict(rtol=0, atol=1),
    "Slice": dict(rtol=0, atol=0),
    "Add": dict(rtol=0, atol=0),
    "Mul": dict(rtol=0, atol=0),
    "Relu": dict(rtol=0, atol=0),
    "Sigmoid": dict(rtol=1e-6, atol=1e-7),  # exp of another library
    "Tanh": dict(rtol=1e-6, atol=1e-7),
}


def _x(*shape):
    return RNG.normal(size=shape).astype(np.float32)


def _conv():
    w = RNG.normal(size=(5, 3, 3, 3)).astype(np.float32) / 3
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 0, 1, 2], strides=[1, 2])]
    io = [("x", F, [1, 3, 7, 9])], [("y", F, None)]
    return make_model(nodes, *io, inits={"w": w, "b": _x(5)}), {"x": _x(1, 3, 7, 9)}


def _fused_conv():
    """Reflect pad -> conv -> instance norm -> relu -> + residual: one FusedConv after passes."""
    w = RNG.normal(size=(4, 4, 3, 3)).astype(np.float32) / 3
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"], mode="reflect"),
        helper.make_node("Conv", ["p", "w", "b"], ["c"]),
        helper.make_node("InstanceNormalization", ["c", "s", "t"], ["n"]),
        helper.make_node("Relu", ["n"], ["r"]),
        helper.make_node("Add", ["r", "x"], ["y"]),
    ]
    inits = {"pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "w": w, "b": _x(4),
             "s": _x(4), "t": _x(4)}  # fmt: skip
    io = [("x", F, [1, 4, 6, 11])], [("y", F, None)]
    return make_model(nodes, *io, inits=inits), {"x": _x(1, 4, 6, 11)}


def _pad():
    nodes = [helper.make_node("Pad", ["x", "pads"], ["y"], mode="edge")]
    inits = {"pads": np.array([0, 0, 2, 1, 0, 0, 0, 3], np.int64)}
    return make_model(nodes, [("x", F, [1, 2, 5, 4])], [("y", F, None)], inits=inits), {
        "x": _x(1, 2, 5, 4)
    }


def _resize():
    nodes = [helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="nearest",
                              coordinate_transformation_mode="asymmetric",
                              nearest_mode="floor")]  # fmt: skip
    inits = {"scales": np.array([1, 1, 2, 2], np.float32)}
    return make_model(nodes, [("x", F, [1, 3, 5, 7])], [("y", F, None)], inits=inits), {
        "x": _x(1, 3, 5, 7)
    }


def _slice():
    nodes = [helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["y"])]
    inits = {"starts": np.array([1, -4], np.int64), "ends": np.array([-1, 100], np.int64),
             "axes": np.array([2, -1], np.int64)}  # fmt: skip
    return make_model(nodes, [("x", F, [1, 2, 5, 7])], [("y", F, None)], inits=inits), {
        "x": _x(1, 2, 5, 7)
    }


def _elementwise(op: str):
    def case():
        names = ["x", "z"] if op in ("Add", "Mul") else ["x"]
        nodes = [helper.make_node(op, names, ["y"])]
        inits = {"z": _x(1, 3, 1, 4)} if len(names) == 2 else {}  # broadcast along H
        return make_model(nodes, [("x", F, [1, 3, 2, 4])], [("y", F, None)], inits=inits), {
            "x": _x(1, 3, 2, 4)
        }

    return case


def _style_network():
    """The bundled style network: its graph passes make FromImage and ToImage of the frame."""
    import onnx

    frame = RNG.integers(0, 256, (1, 23, 31, 3), dtype=np.uint8)
    return onnx.load(SAMPLE), {"frame": frame}


def _yuv_style_network():
    """The bundled style network on the YUV path (media/yuv.py): its graph passes make FromYUV
    and ToYUV of the planes; odd halves (22 x 15 chroma) on purpose."""
    import onnx

    from palmbrush.media.yuv import wrap_yuv

    planes = {"y": (1, 30, 44), "u": (1, 15, 22), "v": (1, 15, 22)}
    feeds = {k: RNG.integers(0, 256, shape, dtype=np.uint8) for k, shape in planes.items()}
    return wrap_yuv(onnx.load(SAMPLE)), feeds


CASES = {"Conv": _conv, "FusedConv": _fused_conv, "Pad": _pad, "Resize": _resize,
         "FromImage": _style_network, "ToImage": _style_network, "Slice": _slice,
         "FromYUV": _yuv_style_network, "ToYUV": _yuv_style_network,
         **{op: _elementwise(op) for op in ("Add", "Mul", "Relu", "Sigmoid", "Tanh")}}  # fmt: skip

KNOWN = registry.discover()
HAS_TORCH = importlib.util.find_spec("torch") is not None


def _marks(name, module):
    if module.available():
        return []
    reason = f"engine {name}: {getattr(module, 'unavailable_reason', lambda: '')()}"
    gpu = getattr(module, "PLACE", None) is not None  # hardware, not a missing package
    return [pytest.mark.skip(reason=reason), *([pytest.mark.gpu] if gpu else [])]


MATRIX = [
    pytest.param(name, op, id=f"{name}-{op}", marks=_marks(name, module))
    for name, module in sorted(KNOWN.items())
    if name != registry.REFERENCE
    for op in sorted(module.KERNELS)
] + [  # the cuda engine's code on PyTorch's CPU device: its kernels and transfers, everywhere
    pytest.param(
        "cuda@cpu",
        op,
        id=f"cuda@cpu-{op}",
        marks=pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed"),
    )
    for op in sorted(KNOWN["cuda"].KERNELS)
]


def _engine(name: str):
    if name == "cuda@cpu":
        from palmbrush.runtime.engines import cuda

        return [cuda.on_device("cpu")]
    return name


def test_every_kernel_of_every_engine_has_a_case():
    claimed = {op for name, m in KNOWN.items() if name != registry.REFERENCE for op in m.KERNELS}
    assert claimed and claimed <= set(CASES), f"no parity case for {sorted(claimed - set(CASES))}"
    assert set(TOLERANCE) == set(CASES)


@pytest.mark.parametrize(("engine", "op"), MATRIX)
def test_the_kernel_matches_the_reference_and_is_the_one_that_ran(engine, op):
    model, feeds = CASES[op]()
    blob = model.SerializeToString()
    ours = load(blob, engines=_engine(engine))
    ran = {c.engine for c in ours.plan if c.op == op}
    assert ran == {engine}, f"{op} ran on {ran}: {[c.declined for c in ours.plan if c.op == op]}"
    got, want = ours.run(feeds), load(blob, engines="reference").run(feeds)
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].shape == want[name].shape and got[name].dtype == want[name].dtype
        np.testing.assert_allclose(
            got[name].astype(np.float64), want[name].astype(np.float64), **TOLERANCE[op]
        )
