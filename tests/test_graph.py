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
