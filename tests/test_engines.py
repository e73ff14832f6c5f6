"""Engine dispatch: ordered preference, declines with reasons, reference completion."""

from __future__ import annotations

import importlib.util
import types

import numpy as np
import pytest
from conftest import SAMPLE, make_model
from onnx import TensorProto, helper

from palmbrush.runtime import ModelError, PalmbrushError, Unsupported, load
from palmbrush.runtime.registry import declines, discover, resolve


def _fake_engine(name: str, kernels: dict) -> types.SimpleNamespace:
    return types.SimpleNamespace(NAME=name, KERNELS=kernels, available=lambda: True)


def _two_op_model():
    return make_model(
        [
            helper.make_node("Relu", ["x"], ["r"], name="relu"),
            helper.make_node("Sigmoid", ["r"], ["s"], name="sigmoid"),
            helper.make_node("Transpose", ["s"], ["y"], name="transpose", perm=[0, 2, 3, 1]),
        ],
        [("x", TensorProto.FLOAT, [1, 2, 3, 4])],
        [("y", TensorProto.FLOAT, [1, 3, 4, 2])],
    )


def test_engines_are_discovered_from_the_engines_folder():
    engines = discover()
    assert "reference" in engines
    assert resolve(None)[-1] is engines["reference"]


def test_a_declining_engine_falls_back_to_the_next_and_records_why():
    calls = []

    @declines(lambda ctx: (_ for _ in ()).throw(Unsupported("sigmoid only in float16")))
    def sigmoid(x):
        raise AssertionError("a declined kernel must never run")

    def relu(x):
        calls.append("relu")
        return np.maximum(x, 0)

    fast = _fake_engine("fast", {"Relu": relu, "Sigmoid": sigmoid})
    predictor = load(_two_op_model().SerializeToString(), engines=[fast])
    plan = {c.node: c for c in predictor.plan}
    assert plan["relu"].engine == "fast" and plan["relu"].declined == {}
    assert plan["sigmoid"].engine == "reference"
    assert plan["sigmoid"].declined == {"fast": "sigmoid only in float16"}
    assert plan["transpose"].declined == {"fast": "no kernel for Transpose"}
    x = np.random.default_rng(0).normal(size=(1, 2, 3, 4)).astype(np.float32)
    y = predictor.run({"x": x})["y"]
    expected = np.transpose(1 / (1 + np.exp(-np.maximum(x, 0))), (0, 2, 3, 1))
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    assert calls == ["relu"]


def test_profile_names_the_engine_and_time_of_every_node():
    fast = _fake_engine("fast", {"Relu": lambda x: np.maximum(x, 0)})
    predictor = load(_two_op_model().SerializeToString(), engines=[fast])
    x = np.ones((1, 2, 3, 4), np.float32)
    rows = predictor.profile({"x": x}, repeat=2)
    assert [(r.node, r.engine) for r in rows] == [
        ("relu", "fast"),
        ("sigmoid", "reference"),
        ("transpose", "reference"),
    ]
    assert all(r.ms >= 0 for r in rows)


def test_unknown_and_unavailable_engine_names_are_clear_errors():
    with pytest.raises(PalmbrushError, match="unknown engine 'warp'"):
        load(SAMPLE, engines="warp")


def test_an_op_no_engine_lists_is_one_error_naming_op_and_node():
    model = make_model(
        [helper.make_node("Einsum", ["x"], ["y"], name="mystery", equation="ii->i")],
        [("x", TensorProto.FLOAT, [2, 2])],
        [("y", TensorProto.FLOAT, [2])],
    )
    with pytest.raises(ModelError, match="unsupported operator 'Einsum' at node 'mystery'"):
        load(model.SerializeToString())


def test_kernels_that_write_into_planned_buffers_share_the_arena_and_stay_correct():
    """An engine kernel with writes_into=True gets arena views; results must not alias."""

    def add(a, b, out):
        np.add(a, b, out=out[0])
        return out[0]

    add.writes_into = True
    nodes = [
        helper.make_node("Add", [f"t{i}", "one"], [f"t{i + 1}"], name=f"a{i}") for i in range(6)
    ]
    nodes.append(helper.make_node("Relu", ["t6"], ["y"], name="relu"))
    io = [("t0", TensorProto.FLOAT, [64, 64])], [("y", TensorProto.FLOAT, [64, 64])]
    model = make_model(nodes, *io, {"one": np.float32(1)})
    predictor = load(model.SerializeToString(), engines=[_fake_engine("arena", {"Add": add})])
    plan = predictor.memory_plan({"t0": (64, 64)})
    assert plan.naive_bytes == 6 * 64 * 64 * 4
    assert plan.arena_bytes == 2 * 64 * 64 * 4  # six intermediates fit in two buffers
    x = np.random.default_rng(1).normal(size=(64, 64)).astype(np.float32)
    np.testing.assert_allclose(predictor.run({"t0": x})["y"], np.maximum(x + 6, 0), rtol=1e-6)
    everything = predictor.run({"t0": x}, intermediates=True)
    for i in range(1, 7):  # kept intermediates are copies, not arena views overwritten later
        np.testing.assert_allclose(everything[f"t{i}"], x + i, rtol=1e-6)
    assert "t0" not in everything and "one" not in everything


def test_auto_times_every_capable_engine_once_per_size_and_keeps_the_fastest(monkeypatch):
    from palmbrush.runtime import autotune

    clock = [0.0]  # autotune's clock: only the kernels move it, so the timing is exact
    monkeypatch.setattr(autotune, "clock", lambda: clock[0])
    calls = []

    def slow_relu(x):
        calls.append(x.shape)
        clock[0] += 0.02
        return np.maximum(x, 0)

    slow = _fake_engine("slow", {"Relu": slow_relu})
    fast = _fake_engine("fast", {"Relu": lambda x: np.maximum(x, 0)})
    model = _two_op_model().SerializeToString()
    preferred = load(model, engines=[slow, fast])
    assert {c.node: c.engine for c in preferred.plan}["relu"] == "slow"  # preference alone

    auto = load(model, engines=[slow, fast], auto=True)
    x = np.random.default_rng(2).normal(size=(1, 2, 3, 4)).astype(np.float32)
    first = auto.run({"x": x})["y"]
    plan = {c.node: c for c in auto.plan_at({"x": x})}
    assert plan["relu"].engine == "fast"
    assert plan["relu"].declined["slow"] == "auto: 20.000 ms vs 0.000 ms on fast"
    assert plan["sigmoid"].engine == "reference"  # nothing else accepts it
    assert len(calls) == 4  # a warm-up call and three timed ones on the first run here ...
    np.testing.assert_array_equal(auto.run({"x": x})["y"], first)
    assert len(calls) == 4  # ... and never again at that size
    auto.run({"x": np.ones((1, 2, 3, 4), np.float32)})
    assert len(calls) == 4
    assert {c.node: c.engine for c in auto.plan}["relu"] == "slow"  # load time: preference


def test_timing_keeps_the_winners_result_when_a_later_candidate_wrote_the_same_buffer(
    monkeypatch,
):
    """Kernels that write into the planned output buffer share it while they are timed: the
    winner's result must be its own, not the bytes the last candidate left there (a
    channels-last writer, as the torch engine is, leaves another layout in them)."""
    from palmbrush.runtime import autotune

    clock = [0.0]
    monkeypatch.setattr(autotune, "clock", lambda: clock[0])

    def planar_relu(x, out=None):
        return np.maximum(x, 0, out=out[0] if out else None)

    def channels_last_relu(x, out=None):
        clock[0] += 0.02  # slower: it loses
        n, c, h, w = x.shape
        given = out[0] if out else np.empty(x.shape, np.float32)
        hwc = given.reshape(-1).reshape(n, h, w, c)
        hwc[...] = np.maximum(x, 0).transpose(0, 2, 3, 1)
        return hwc.transpose(0, 3, 1, 2)

    planar_relu.writes_into = channels_last_relu.writes_into = True
    engines = [_fake_engine("planar", {"Relu": planar_relu}),
               _fake_engine("hwc", {"Relu": channels_last_relu})]  # fmt: skip
    model = _two_op_model().SerializeToString()
    x = np.random.default_rng(4).normal(size=(1, 2, 3, 4)).astype(np.float32)
    auto = load(model, engines=engines, auto=True)
    got = auto.run({"x": x})["y"]
    assert {c.node: c.engine for c in auto.plan_at({"x": x})}["relu"] == "planar"
    want = load(model, engines="reference").run({"x": x})["y"]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(auto.run({"x": x})["y"], want, rtol=1e-6)


def test_predictors_own_their_plans_and_never_change_the_graph_they_are_given():
    from palmbrush.runtime import load_model

    graph = load_model(SAMPLE)
    before = [(n.op, list(n.inputs), list(n.outputs), repr(n.attrs)) for n in graph.nodes]
    shapes = {name: v.shape for name, v in graph.values.items()}
    fast = _fake_engine("fast", {"Sigmoid": lambda x: 1 / (1 + np.exp(-x))})
    one, two = load(graph, engines=[fast]), load(graph, engines="reference")
    assert len(one.graph.nodes) < len(graph.nodes)  # passes fused the copy, not the original
    assert [(n.op, list(n.inputs), list(n.outputs), repr(n.attrs)) for n in graph.nodes] == before
    assert {name: v.shape for name, v in graph.values.items()} == shapes
    assert {c.engine for c in two.plan} == {"reference"}
    assert {c.op: c.engine for c in one.plan}["Sigmoid"] == "fast"  # each keeps its own choices
    frame = np.random.default_rng(3).integers(0, 256, (1, 36, 40, 3), dtype=np.uint8)
    ours, theirs = one.run({"frame": frame})["stylized"], two.run({"frame": frame})["stylized"]
    assert np.abs(ours.astype(int) - theirs).max() <= 1


def _pad_to_even_model():
    """Pads H to an even size (edge), with the amount computed from Shape at run time."""
    I64 = TensorProto.INT64
    inits = {"two": np.array(2), "axis0": np.array([0]), "zeros6": np.zeros(6, np.int64),
             "zero": np.zeros(1, np.int64), "start": np.array([0]), "end": np.array([10**6]),
             "axis3": np.array([3])}  # fmt: skip
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "two"], ["h"], name="height"),
        helper.make_node("Mod", ["h", "two"], ["odd"], name="odd"),
        helper.make_node("Unsqueeze", ["odd", "axis0"], ["odd1"], name="unsqueeze"),
        helper.make_node("Concat", ["zeros6", "odd1", "zero"], ["pads"], name="pads", axis=0),
        helper.make_node("Pad", ["x", "pads"], ["p"], name="pad", mode="edge"),
        helper.make_node("Relu", ["p"], ["r"], name="relu"),
        helper.make_node("Slice", ["r", "start", "end", "axis3"], ["y"], name="slice"),
    ]
    x, y = ("x", TensorProto.FLOAT, [1, 2, "H", "W"]), ("y", TensorProto.FLOAT, None)
    return make_model(nodes, [x], [y], inits, value_info=[("h", I64, [])])


def test_shape_arithmetic_is_folded_per_input_size_and_no_ops_are_skipped():
    predictor = load(_pad_to_even_model().SerializeToString(), engines="reference")
    arithmetic = {n: "folded" for n in ("shape", "height", "odd", "unsqueeze", "pads")}
    assert predictor.specialized({"x": (1, 2, 4, 3)}) == {**arithmetic, "pad": "no-op",
                                                          "slice": "no-op"}  # fmt: skip
    assert predictor.specialized({"x": (1, 2, 5, 3)}) == {**arithmetic, "slice": "no-op"}
    for h in (4, 5):
        x = np.random.default_rng(h).normal(size=(1, 2, h, 3)).astype(np.float32)
        want = np.maximum(np.pad(x, [(0, 0), (0, 0), (0, h % 2), (0, 0)], mode="edge"), 0)
        np.testing.assert_array_equal(predictor.run({"x": x})["y"], want)


@pytest.mark.skipif(
    importlib.util.find_spec("torch") is None or importlib.util.find_spec("numba") is None,
    reason="needs the cpu and torch engines",
)
def test_a_preference_for_an_engine_that_is_absent_gives_way_to_the_next_preference():
    """The GPU preference claims every convolution for cuda; with no cuda in the list, the
    narrow-convolution preference (cpu first) must still decide the RGB head unmeasured."""
    from palmbrush.runtime import registry
    from palmbrush.runtime.onnx_io import graph_from_proto

    w = np.ones((3, 8, 3, 3), np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="head")]
    model = make_model(nodes, [("x", TensorProto.FLOAT, [1, 8, 6, 6])],
                       [("y", TensorProto.FLOAT, None)], inits={"w": w})  # fmt: skip
    graph = graph_from_proto(model)
    engines = resolve("torch,cpu")
    (able,) = registry.candidates(graph, engines, graph.values, preferences=True)
    assert [name for name, _ in able] == ["cpu"]
