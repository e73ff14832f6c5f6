"""The memory planner: no two live tensors ever share bytes; weights and I/O are never planned."""

from __future__ import annotations

import numpy as np
from conftest import SAMPLE
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from palmbrush.runtime import load
from palmbrush.runtime.memory import Lifetime, place


@st.composite
def random_dags(draw):
    """Random DAGs of Add/Relu/Concat over [1, C, 4, 4] tensors, with random fan-out."""
    n = draw(st.integers(2, 25))
    nodes, channels = [], {"x": 1}
    for i in range(n):
        names = list(channels)
        op = draw(st.sampled_from(["Relu", "Add", "Concat"]))
        a = draw(st.sampled_from(names))
        out = f"v{i}"
        if op == "Relu":
            nodes.append(helper.make_node("Relu", [a], [out], name=out))
            channels[out] = channels[a]
        else:
            b = draw(st.sampled_from(names))
            if op == "Add" and channels[a] == channels[b]:
                nodes.append(helper.make_node("Add", [a, b], [out], name=out))
                channels[out] = channels[a]
            else:
                nodes.append(helper.make_node("Concat", [a, b], [out], name=out, axis=1))
                channels[out] = channels[a] + channels[b]
    outputs = draw(
        st.lists(st.sampled_from(list(channels)[1:]), min_size=1, max_size=3, unique=True)
    )
    graph = helper.make_graph(
        nodes,
        "dag",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _assert_no_live_overlap(plan):
    spans = [s for s in plan.lifetimes.values() if s.nbytes]
    for i, a in enumerate(spans):
        for b in spans[i + 1 :]:
            if a.overlaps(b):
                a0, b0 = plan.offsets[a.name], plan.offsets[b.name]
                assert a0 + a.nbytes <= b0 or b0 + b.nbytes <= a0, (a, b)


@settings(max_examples=60, deadline=None)
@given(random_dags())
def test_random_graphs_never_share_bytes_between_live_tensors(model):
    predictor = load(model.SerializeToString())
    plan = predictor.memory_plan({"x": (1, 1, 4, 4)})
    _assert_no_live_overlap(plan)
    assert "x" not in plan.lifetimes
    assert not set(predictor.graph.outputs) & set(plan.lifetimes)
    assert plan.arena_bytes <= plan.naive_bytes
    # Freeing on last use must not change results: compare with every value kept alive.
    x = np.random.default_rng(0).normal(size=(1, 1, 4, 4)).astype(np.float32)
    kept = predictor.run({"x": x}, intermediates=True)
    out = predictor.run({"x": x})
    for name in predictor.graph.outputs:
        np.testing.assert_array_equal(out[name], kept[name])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 30), st.integers(0, 10), st.integers(1, 5000)), max_size=40)
)
def test_placement_never_overlaps_for_arbitrary_lifetimes(raw):
    spans = [Lifetime(f"t{i}", a, a + d, n) for i, (a, d, n) in enumerate(raw)]
    offsets, arena = place(spans)
    for i, a in enumerate(spans):
        assert offsets[a.name] % 64 == 0
        assert offsets[a.name] + a.nbytes <= arena
        for b in spans[i + 1 :]:
            if a.overlaps(b):
                lo, hi = sorted([(offsets[a.name], a), (offsets[b.name], b)], key=lambda p: p[0])
                assert lo[0] + lo[1].nbytes <= hi[0]


def test_a_style_network_reuses_most_of_its_intermediate_memory():
    shapes = {"frame": (1, 480, 640, 3)}
    plan = load(SAMPLE, optimize=False).memory_plan(shapes)  # every op its own intermediate
    _assert_no_live_overlap(plan)
    assert plan.arena_bytes < plan.naive_bytes / 3
    fused = load(SAMPLE).memory_plan(shapes)  # fusion only ever removes intermediates
    _assert_no_live_overlap(fused)
    assert fused.naive_bytes < plan.naive_bytes and fused.arena_bytes <= plan.arena_bytes
