"""Graph passes: node counts after each rewrite, verify() after each, and unchanged numbers."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from conftest import SAMPLE, make_model
from onnx import TensorProto, helper

from palmbrush.runtime import load, load_model
from palmbrush.runtime.passes import optimize

F = TensorProto.FLOAT


def _ops(graph) -> dict[str, int]:
    return dict(Counter(n.op for n in graph.nodes))


def _same_outputs(model: bytes, feeds: dict, exact: bool = True):
    plain = load(model, engines="reference", optimize=False).run(feeds)
    fused = load(model, engines="reference").run(feeds)
    for name, value in plain.items():
        if exact:
            np.testing.assert_array_equal(fused[name], value)
        else:
            np.testing.assert_allclose(fused[name], value, rtol=1e-5, atol=1e-6)


def test_a_johnson_style_network_collapses_to_fused_convs_with_identical_output():
    pytest.importorskip("torch")
    from nets import TransformerNet, export, randomize

    model = export(randomize(TransformerNet()), (1, 3, 64, 64))
    graph = load_model(model)
    counts = optimize(graph, check=True)  # verify() after every pass
    assert _ops(graph) == {"FusedConv": 10}
    assert counts["fuse_pad_conv"] == 10 and counts["fuse_conv_norm"] == 9
    assert counts["fuse_upsample_conv"] == 2
    assert counts["fuse_conv_activation"] == 7 and counts["fuse_residual"] == 2
    assert counts["fold_constants"] > 0  # torch's pad-size arithmetic, all constant
    for shape in [(1, 3, 64, 64), (1, 3, 52, 76)]:
        x = np.random.default_rng(0).random(shape, dtype=np.float32)
        _same_outputs(model, {"x": x})


def test_the_bundled_sample_goes_from_34_to_12_nodes_with_the_same_picture():
    graph = load_model(SAMPLE)
    assert len(graph.nodes) == 34
    optimize(graph, check=True)
    assert len(graph.nodes) == 12 and _ops(graph)["FusedConv"] == 6
    assert _ops(graph)["FromImage"] == _ops(graph)["ToImage"] == 1
    frame = np.random.default_rng(1).integers(0, 256, (1, 37, 53, 3), np.uint8)
    _same_outputs(SAMPLE.read_bytes(), {"frame": frame})


def _conv_bn_relu(bn_eps=1e-3):
    rng = np.random.default_rng(2)
    inits = {
        "w": rng.normal(size=(4, 3, 3, 3)).astype(np.float32),
        "b": rng.normal(size=4).astype(np.float32),
        "s": rng.uniform(0.5, 1.5, 4).astype(np.float32),
        "t": rng.normal(size=4).astype(np.float32),
        "m": rng.normal(size=4).astype(np.float32),
        "v": rng.uniform(0.5, 2, 4).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "s", "t", "m", "v"], ["n"], name="bn",
                         epsilon=bn_eps),
        helper.make_node("Relu", ["n"], ["y"], name="relu"),
    ]  # fmt: skip
    return make_model(nodes, [("x", F, [1, 3, 8, 8])], [("y", F, None)], inits).SerializeToString()


def test_batchnorm_after_a_conv_is_folded_into_its_weights():
    model = _conv_bn_relu()
    graph = load_model(model)
    counts = optimize(graph, check=True)
    assert counts["fold_batchnorm"] == 1 and _ops(graph) == {"FusedConv": 1}
    x = np.random.default_rng(3).normal(size=(1, 3, 8, 8)).astype(np.float32)
    _same_outputs(model, {"x": x}, exact=False)


def _pad_conv(pads, mode="reflect", value=None, extra_user=False):
    channels = 2 + pads[1] + pads[5]
    inits = {"p": np.array(pads), "w": np.ones((2, channels, 3, 3), np.float32)}
    pad_inputs = ["x", "p"]
    if value is not None:
        inits["cv"] = np.array(value, np.float32)
        pad_inputs.append("cv")
    nodes = [helper.make_node("Pad", pad_inputs, ["padded"], name="pad", mode=mode),
             helper.make_node("Conv", ["padded", "w"], ["y"], name="conv")]  # fmt: skip
    outputs = [("y", F, None)]
    if extra_user:
        nodes.append(helper.make_node("Relu", ["padded"], ["z"], name="other"))
        outputs.append(("z", F, None))
    return make_model(nodes, [("x", F, [1, 2, 6, 6])], outputs, inits).SerializeToString()


@pytest.mark.parametrize(
    ("case", "model", "fused"),
    [
        ("reflect", _pad_conv([0, 0, 1, 2, 0, 0, 2, 1]), True),
        ("edge", _pad_conv([0, 0, 1, 1, 0, 0, 1, 1], mode="edge"), True),
        ("zeros", _pad_conv([0, 0, 1, 1, 0, 0, 1, 1], mode="constant", value=0.0), True),
        ("non-zero fill", _pad_conv([0, 0, 1, 1, 0, 0, 1, 1], mode="constant", value=2.0), False),
        ("channel pad", _pad_conv([0, 1, 1, 1, 0, 1, 1, 1], mode="edge"), False),
        ("pad read twice", _pad_conv([0, 0, 1, 1, 0, 0, 1, 1], extra_user=True), False),
    ],
)
def test_pad_folds_into_conv_only_when_it_means_the_same(case, model, fused):
    graph = load_model(model)
    counts = optimize(graph, check=True)
    assert counts["fuse_pad_conv"] == int(fused), case
    assert ("Pad" in _ops(graph)) != fused
    x = np.random.default_rng(4).normal(size=(1, 2, 6, 6)).astype(np.float32)
    _same_outputs(model, {"x": x})


def test_dead_branches_and_unused_weights_are_removed():
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="used"),
             helper.make_node("Neg", ["x"], ["unused1"], name="dead1"),
             helper.make_node("Add", ["unused1", "w"], ["unused2"], name="dead2")]  # fmt: skip
    model = make_model(nodes, [("x", F, [4])], [("y", F, None)], {"w": np.ones(4, np.float32)})
    graph = load_model(model.SerializeToString())
    counts = optimize(graph, check=True)
    assert counts["remove_dead"] == 2 and _ops(graph) == {"Relu": 1}
    assert "w" not in graph.values


def test_an_optimized_graph_saves_and_loads_back_with_the_same_picture(tmp_path):
    from palmbrush.runtime import save_model

    graph = load_model(SAMPLE)
    optimize(graph, check=True)
    save_model(graph, tmp_path / "fused.onnx")
    again = load_model(tmp_path / "fused.onnx")
    assert _ops(again)["FusedConv"] == 6
    frame = np.random.default_rng(5).integers(0, 256, (1, 40, 44, 3), np.uint8)
    a = load(again, engines="reference", optimize=False).run({"frame": frame})["stylized"]
    b = load(SAMPLE, engines="reference").run({"frame": frame})["stylized"]
    np.testing.assert_array_equal(a, b)


def _image_io_model(transpose_first: bool):
    """uint8 NHWC frame -> float NCHW / 255 -> x 2 (a stand-in network) -> uint8 NHWC."""
    cast_in, cast_out = ("f", "c") if transpose_first else ("frame", "c")
    perm_in, perm_out = ("frame", "f") if transpose_first else ("c", "t")
    to_float = helper.make_node("Cast", [cast_in], [cast_out], name="cast", to=TensorProto.FLOAT)
    perm_in = helper.make_node("Transpose", [perm_in], [perm_out], name="t_in", perm=[0, 3, 1, 2])
    nodes = [
        perm_in,
        to_float,
        helper.make_node("Div", ["c" if transpose_first else "t", "k255"], ["x"], name="div"),
        helper.make_node("Mul", ["x", "two"], ["net"], name="net"),
        helper.make_node("Mul", ["net", "k255"], ["m"], name="mul"),
        helper.make_node("Round", ["m"], ["r"], name="round"),
        helper.make_node("Clip", ["r", "zero", "k255"], ["cl"], name="clip"),
        helper.make_node("Transpose", ["cl"], ["tt"], name="t_out", perm=[0, 2, 3, 1]),
        helper.make_node("Cast", ["tt"], ["out"], name="to_uint8", to=TensorProto.UINT8),
    ]
    inits = {"k255": np.float32(255), "two": np.float32(0.75), "zero": np.float32(0)}
    u8 = TensorProto.UINT8
    return make_model(nodes, [("frame", u8, [1, "H", "W", 3])], [("out", u8, None)], inits)


@pytest.mark.parametrize("transpose_first", [True, False])
def test_uint8_pre_and_post_processing_become_one_node_each_with_the_same_picture(
    transpose_first,
):
    model = _image_io_model(transpose_first)
    graph = load_model(model.SerializeToString())
    counts = optimize(graph, check=True)
    assert counts["fuse_from_image"] == counts["fuse_to_image"] == 1
    assert [n.op for n in graph.toposort()] == ["FromImage", "Mul", "ToImage"]
    # every uint8 level, so x * 0.75 * 255 lands on many exact .5 ties (round half to even)
    frame = np.arange(256 * 3, dtype=np.int64).reshape(1, 16, 16, 3).astype(np.uint8)
    _same_outputs(model.SerializeToString(), {"frame": frame})
