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


def test_the_bundled_sample_goes_from_34_to_18_nodes_with_the_same_picture():
    graph = load_model(SAMPLE)
    assert len(graph.nodes) == 34
    optimize(graph, check=True)
    assert len(graph.nodes) == 18 and _ops(graph)["FusedConv"] == 6
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
