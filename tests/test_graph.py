"""Structure: verify() catches broken graphs; inference agrees with what kernels compute."""

from __future__ import annotations

import glob
import os

import numpy as np
import onnx
import onnx.backend.test
import pytest
from conftest import SAMPLE, make_model
from onnx import TensorProto, helper, numpy_helper

from palmbrush.runtime import ModelError, load, load_model, save_model, verify
from palmbrush.runtime.ir import Node


def _graph():
    return load_model(SAMPLE)


def test_the_sample_model_verifies_and_round_trips_through_onnx(tmp_path):
    graph = _graph()
    verify(graph)
    save_model(graph, tmp_path / "copy.onnx")
    onnx.checker.check_model(str(tmp_path / "copy.onnx"))
    frame = np.random.default_rng(0).integers(0, 256, (1, 40, 48, 3), np.uint8)
    a = load(SAMPLE).run({"frame": frame})["stylized"]
    b = load(tmp_path / "copy.onnx").run({"frame": frame})["stylized"]
    np.testing.assert_array_equal(a, b)


def _broken(change):
    graph = _graph()
    change(graph)
    with pytest.raises(ModelError) as info:
        verify(graph)
    return str(info.value)


def test_verify_catches_a_cycle():
    def loop(g):
        g.nodes[0].inputs[0] = g.nodes[-1].outputs[0]

    assert "cycle" in _broken(loop)


def test_verify_catches_a_value_produced_twice():
    def twice(g):
        g.nodes[3].outputs[0] = g.nodes[2].outputs[0]

    assert "produced twice" in _broken(twice)


def test_verify_catches_a_dangling_input_and_a_missing_output():
    assert "nothing produces" in _broken(lambda g: g.nodes[5].inputs.__setitem__(0, "ghost"))
    assert "never produced" in _broken(lambda g: g.outputs.append("nowhere"))


def test_verify_catches_duplicate_node_names_and_bad_arity_and_attributes():
    def rename(g):
        g.nodes[1].name = g.nodes[0].name

    assert "two nodes are named" in _broken(rename)
    assert "has 2 inputs" in _broken(
        lambda g: g.nodes.append(Node("Relu", ["frame", "frame"], ["z"], name="z"))
    )
    assert "unknown attribute 'bogus'" in _broken(
        lambda g: g.nodes[0].attrs.__setitem__("bogus", 1)
    )


def test_verify_catches_shapes_that_contradict_the_schemas():
    model = make_model(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")],
        [("x", TensorProto.FLOAT, [1, 4, 8, 8])],
        [("y", TensorProto.FLOAT, [1, 2, 8, 8])],  # a 3x3 valid conv gives 6x6
        {"w": np.zeros((2, 4, 3, 3), np.float32)},
    )
    with pytest.raises(ModelError, match=r"declared \[1, 2, 8, 8\] but computes \[1, 2, 6, 6\]"):
        load(model.SerializeToString())
    wrong_channels = make_model(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")],
        [("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [("y", TensorProto.FLOAT, None)],
        {"w": np.zeros((2, 4, 3, 3), np.float32)},
    )
    with pytest.raises(ModelError, match="input has 3 channels; weights expect 4"):
        load(wrong_channels.SerializeToString())


def _window(op, x, w=None, b=None, dtype=TensorProto.FLOAT, **attrs):
    """One Conv / ConvTranspose / pool node on an input of shape x, with weights of shape w."""
    inits = {} if w is None else {"w": np.zeros(w, np.float32)}
    inits.update({} if b is None else {"b": np.zeros(b, np.float32)})
    node = helper.make_node(op, ["x", *inits], ["y"], name="n", **attrs)
    return make_model([node], [("x", dtype, x)], [("y", dtype, None)], inits)


def _one(op, x, **attrs):
    node = helper.make_node(op, ["x"], ["y"], name="n", **attrs)
    return make_model([node], [("x", TensorProto.FLOAT, x)], [("y", TensorProto.FLOAT, None)])


def _qlinear_conv(**attrs):
    names = ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"]
    scale, zero = np.float32(1), np.uint8(0)
    inits = {"xs": scale, "xz": zero, "w": np.zeros((1, 1, 3, 3), np.uint8), "ws": scale}
    inits.update({"wz": zero, "ys": scale, "yz": zero})
    node = helper.make_node("QLinearConv", names, ["y"], name="n", **attrs)
    u8 = TensorProto.UINT8
    return make_model([node], [("x", u8, [1, 1, 4, 4])], [("y", u8, None)], inits)


X = [1, 2, 8, 8]
RESTATED = {
    "conv kernel_shape": (
        _window("Conv", X, (4, 2, 3, 3), kernel_shape=[5, 5]),
        "node 'n' (Conv): kernel_shape [5, 5] contradicts weight shape [4, 2, 3, 3]",
    ),
    "conv kernel_shape rank": (
        _window("Conv", X, (4, 2, 3, 3), kernel_shape=[3]),
        "kernel_shape [3] contradicts weight shape [4, 2, 3, 3]",
    ),
    "conv group": (
        _window("Conv", [1, 4, 8, 8], (4, 2, 3, 3)),
        "input has 4 channels; weights expect 2 (input [1, 4, 8, 8], weights [4, 2, 3, 3], group",
    ),
    "conv groups split": (
        _window("Conv", [1, 4, 8, 8], (3, 2, 3, 3), group=2),
        "weight shape [3, 2, 3, 3] does not split into 2 groups",
    ),
    "conv weight rank": (_window("Conv", X, (4, 2, 3)), "weight shape [4, 2, 3] has rank 3"),
    "conv bias": (
        _window("Conv", X, (4, 2, 3, 3), (3,)),
        "bias shape [3] does not match weight shape [4, 2, 3, 3] (4 outputs)",
    ),
    "conv dilations": (
        _window("Conv", X, (4, 2, 3, 3), dilations=[1, 1, 1]),
        "dilations [1, 1, 1] has 3 entries; expected 2",
    ),
    "conv pads": (_window("Conv", X, (4, 2, 3, 3), pads=[1, 1]), "pads [1, 1] has 2 entries"),
    "qlinearconv kernel_shape": (
        _qlinear_conv(kernel_shape=[5, 5]),
        "node 'n' (QLinearConv): kernel_shape [5, 5] contradicts weight shape [1, 1, 3, 3]",
    ),
    "convtranspose kernel_shape": (
        _window("ConvTranspose", X, (2, 4, 3, 3), kernel_shape=[2, 2]),
        "node 'n' (ConvTranspose): kernel_shape [2, 2] contradicts weight shape [2, 4, 3, 3]",
    ),
    "convtranspose channels": (
        _window("ConvTranspose", [1, 3, 8, 8], (2, 4, 3, 3)),
        "input has 3 channels; weights expect 2",
    ),
    "convtranspose bias": (
        _window("ConvTranspose", X, (2, 4, 3, 3), (2,)),
        "bias shape [2] does not match weight shape [2, 4, 3, 3] (4 outputs)",
    ),
    "convtranspose strides": (
        _window("ConvTranspose", X, (2, 4, 3, 3), strides=[2, 2, 2]),
        "strides [2, 2, 2] has 3 entries; expected 2",
    ),
    "convtranspose output_padding": (
        _window("ConvTranspose", X, (2, 4, 3, 3), strides=[2, 2], output_padding=[1]),
        "output_padding [1] has 1 entries; expected 2",
    ),
    "convtranspose output_shape": (
        _window("ConvTranspose", X, (2, 4, 3, 3), output_shape=[16]),
        "output_shape [16] does not fit a 2-D kernel",
    ),
    "maxpool strides": (
        _window("MaxPool", X, kernel_shape=[2, 2], strides=[2]),
        "node 'n' (MaxPool): strides [2] has 1 entries; expected 2",
    ),
    "instancenorm scale": (
        make_model(
            [helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"], name="n")],
            [("x", TensorProto.FLOAT, X)],
            [("y", TensorProto.FLOAT, None)],
            {"s": np.ones(1, np.float32), "b": np.zeros(2, np.float32)},
        ),
        "input 1 has shape [1]; input [1, 2, 8, 8] has 2 channels",
    ),
    "split num_outputs": (
        make_model(
            [helper.make_node("Split", ["x"], ["a", "b"], name="n", axis=1, num_outputs=3)],
            [("x", TensorProto.FLOAT, X)],
            [("a", TensorProto.FLOAT, None), ("b", TensorProto.FLOAT, None)],
            opset=18,
        ),
        "num_outputs=3 but the node has 2 outputs",
    ),
    "softmax axis": (
        _one("Softmax", X, axis=4),
        "node 'n' (Softmax): axis 4 is out of range for rank 4",
    ),
    "averagepool kernel rank": (
        _window("AveragePool", X, kernel_shape=[2]),
        "input rank 4 does not match a 1-D kernel",
    ),
}


@pytest.mark.parametrize("case", sorted(RESTATED))
def test_attributes_that_restate_shapes_must_agree_with_the_tensors(case):
    model, fragment = RESTATED[case]
    with pytest.raises(ModelError) as info:
        load(model.SerializeToString())
    assert fragment in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_attributes_that_restate_shapes_correctly_load():
    for model in (
        _window("Conv", X, (4, 2, 3, 3), (4,), kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        _window("Conv", [1, 4, 8, 8], (4, 2, 3, 3), group=2, strides=[2, 2], dilations=[1, 1]),
        _window("ConvTranspose", X, (2, 4, 3, 3), (4,), strides=[2, 2], output_padding=[1, 1]),
        _window("MaxPool", X, kernel_shape=[2, 2], strides=[2, 2]),
        _qlinear_conv(kernel_shape=[3, 3]),
    ):
        load(model.SerializeToString())


def test_intermediates_returns_every_value_for_finding_the_first_divergence():
    predictor = load(SAMPLE)
    frame = np.random.default_rng(1).integers(0, 256, (1, 33, 35, 3), np.uint8)
    everything = predictor.run({"frame": frame}, intermediates=True)
    produced = {o for n in predictor.graph.nodes for o in n.outputs}
    assert produced <= set(everything)
    shapes = predictor.shapes({"frame": frame.shape})
    for name in produced:
        assert everything[name].shape == shapes[name].shape, name
        assert everything[name].dtype == shapes[name].dtype, name
    assert everything["stylized"].shape == (1, 33, 35, 3)


DATA = os.path.join(os.path.dirname(onnx.backend.test.__file__), "data", "node")
OURS = (
    "test_conv",
    "test_resize",
    "test_slice",
    "test_reshape",
    "test_pad",
    "test_split",
    "test_maxpool",
    "test_averagepool",
    "test_convtranspose",
    "test_reduce",
    "test_gather",
    "test_squeeze",
    "test_unsqueeze",
    "test_expand",
    "test_tile",
    "test_depthtospace",
)
CASES = sorted(
    p
    for p in glob.glob(os.path.join(DATA, "test_*"))
    if os.path.basename(p).startswith(OURS) and "expanded" not in p and "antialias" not in p
)


@pytest.mark.skipif(not CASES, reason="this onnx wheel carries no backend test data")
def test_inferred_shapes_match_what_the_reference_computes_on_conformance_models():
    """Shape inference (the schemas) and the kernels must agree on every output shape."""
    checked = 0
    for case in CASES:
        model = onnx.load(os.path.join(case, "model.onnx"))
        try:
            predictor = load(model.SerializeToString())
        except ModelError:
            continue  # excluded from conformance for a stated reason
        feeds = {}
        for i, name in enumerate(predictor.graph.inputs):
            tensor = onnx.load_tensor(os.path.join(case, "test_data_set_0", f"input_{i}.pb"))
            feeds[name] = numpy_helper.to_array(tensor)
        outputs = predictor.run(feeds)
        shapes = predictor.shapes(feeds)
        for name, array in outputs.items():
            inferred = shapes[name].shape
            if inferred is not None and all(isinstance(d, int) for d in inferred):
                assert inferred == array.shape, f"{os.path.basename(case)}: {name}"
                checked += 1
    assert checked > 80  # outputs whose shape does not depend on fed values
