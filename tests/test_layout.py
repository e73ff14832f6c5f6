"""Layouts between engines (runtime/layout.py): a channels-last result of the torch engine read
by planar-only cpu kernels is converted by the executor, once per run, as a step that `plan`
names, `profile` times and the memory plan gives its own buffer."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from conftest import make_model
from onnx import TensorProto, helper

from palmbrush.runtime import layout, load

F = TensorProto.FLOAT
pytestmark = pytest.mark.skipif(
    not (importlib.util.find_spec("torch") and importlib.util.find_spec("numba")),
    reason="needs the torch and cpu engines (torch, numba)",
)


def _two_readers():
    """y = Conv(x) (torch: channels-last), read by two Pads (cpu: planar only), each followed
    by a Conv (torch) and summed (reference)."""
    rng = np.random.default_rng(3)
    inits = {
        "w": rng.normal(size=(8, 4, 3, 3)).astype(np.float32),
        "v": rng.normal(size=(8, 8, 3, 3)).astype(np.float32),  # 8+ outputs: torch (PREFERENCES)
        "p": np.array([0, 0, 1, 1, 0, 0, 1, 1]),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["y"], name="a", pads=[1, 1, 1, 1]),
        helper.make_node("Pad", ["y", "p"], ["r"], name="reflect", mode="reflect"),
        helper.make_node("Pad", ["y", "p"], ["e"], name="edge", mode="edge"),
        helper.make_node("Conv", ["r", "v"], ["c1"], name="b"),
        helper.make_node("Conv", ["e", "v"], ["c2"], name="c"),
        helper.make_node("Add", ["c1", "c2"], ["out"], name="sum"),
    ]
    return make_model(nodes, [("x", F, [1, 4, 9, 11])], [("out", F, None)], inits)


def test_a_channels_last_value_is_converted_once_for_its_planar_readers(monkeypatch):
    blob = _two_readers().SerializeToString()
    x = np.random.default_rng(4).normal(size=(1, 4, 9, 11)).astype(np.float32)
    ours = load(blob, engines="torch,cpu", optimize=False)  # unfused: the Pads stay nodes
    engines = {c.node: c.engine for c in ours.plan}
    assert engines == {"a": "torch", "reflect": "cpu", "edge": "cpu", "b": "torch",
                       "c": "torch", "sum": "reference"}  # fmt: skip
    moves = {c.node: c.transfers for c in ours.plan_at({"x": x})}
    assert moves["reflect"] == ["y: channels-last -> planar"]  # before the first reader only
    assert all(not m for node, m in moves.items() if node != "reflect")
    memory = ours.memory_plan({"x": x})
    copy = memory.lifetimes["y" + layout.SUFFIX]  # the copy's own planned buffer
    assert (copy.first, copy.last) == (1, 2) and copy.nbytes == x.size * 2 * 4

    from palmbrush.runtime.engines._numba import ops

    def refuse(array):
        raise AssertionError("a cpu kernel converted a layout itself")

    monkeypatch.setattr(ops, "planar", refuse)  # the kernels' own fallback must not run
    want = load(blob, engines="reference").run({"x": x})["out"]
    for _ in range(2):  # the second run reuses the arena's buffer for the copy
        np.testing.assert_allclose(ours.run({"x": x})["out"], want, rtol=1e-4, atol=1e-4)
    rows = ours.profile({"x": x}, repeat=2)
    converts = [r for r in rows if r.op == "Convert"]
    assert [(r.node, r.engine) for r in converts] == [("y", "channels-last -> planar")]
    order = [r.node for r in rows]
    assert order.index("a") < order.index("y") < order.index("reflect")  # timed between them
    assert converts[0].ms > 0


def test_no_conversion_where_every_reader_takes_the_layout():
    """Planar producers (cpu), or readers that take either layout (reference), need none."""
    blob = _two_readers().SerializeToString()
    x = np.random.default_rng(5).normal(size=(1, 4, 9, 11)).astype(np.float32)
    for engines in ("cpu", "torch,reference"):
        predictor = load(blob, engines=engines, optimize=False)
        assert not any(c.transfers for c in predictor.plan_at({"x": x})), engines
        rows = predictor.profile({"x": x})
        assert not [r for r in rows if r.op == "Convert"], engines
        memory = predictor.memory_plan({"x": x})
        assert not [n for n in memory.lifetimes if n.endswith(layout.SUFFIX)], engines


def test_conversions_follow_aliases_and_skip_constants():
    """A no-op step passes its input's layout on; a constant is never converted."""
    from palmbrush.runtime.ir import Node
    from palmbrush.runtime.plan import Step

    def kernel(layout_out=None, planar=False):
        def k():
            return None

        if layout_out:
            k.layout = layout_out
        if planar:
            k.layouts_in = (layout.PLANAR,)
        return k

    steps = [
        Step(Node("Conv", ["x", "w"], ["y"]), kernel(layout.CHANNELS_LAST), "torch", {}),
        Step(Node("Identity", ["y"], ["i"]), kernel(), "reference", {}),
        Step(Node("Pad", ["i", "k"], ["p"]), kernel(planar=True), "cpu", {}),
        Step(Node("Pad", ["y", "k"], ["q"]), kernel(planar=True), "cpu", {}),
    ]
    computed = {"x", "y", "i", "p", "q"}
    found, spans = layout.conversions(steps, computed.__contains__, aliases={1})
    assert found == [[], [], ["i"], ["y"]] and spans == {"i": (2, 2), "y": (3, 3)}
    found, spans = layout.conversions(steps, computed.__contains__)  # Identity runs: its
    assert found == [[], [], ["i"], ["y"]]  # kernel declares nothing, so keeps y's layout
    steps[1] = Step(steps[1].node, kernel(layout.PLANAR), "cpu", {})  # one that says planar
    found, spans = layout.conversions(steps, computed.__contains__)
    assert found == [[], [], [], ["y"]] and spans == {"y": (3, 3)}


def test_timing_engines_never_reads_a_copy_planned_for_other_steps():
    """engines="auto" times cpu where the load-time plan has torch: a cpu candidate reading
    y after the planned readers of y's copy must not get a buffer since given to another
    value (the timing run's copies are its own arrays)."""
    rng = np.random.default_rng(7)
    inits = {
        "w": rng.normal(size=(8, 2, 3, 3)).astype(np.float32),
        "v": rng.normal(size=(8, 8, 3, 3)).astype(np.float32),
        "p": np.array([0, 0, 1, 1, 0, 0, 1, 1]),
    }
    nodes = [  # a grouped conv: torch only (cpu declines groups), so y is channels-last
        helper.make_node("Conv", ["x", "w"], ["y"], name="a", pads=[1, 1, 1, 1], group=2),
        helper.make_node("Pad", ["y", "p"], ["r"], name="reflect", mode="reflect"),
        helper.make_node("Conv", ["r", "v"], ["c1"], name="b"),
        helper.make_node("Conv", ["c1", "v"], ["c2"], name="c", pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["y", "v"], ["c3"], name="d", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "c3"], ["out"], name="sum"),
    ]
    blob = make_model(nodes, [("x", F, [1, 4, 9, 11])], [("out", F, None)], inits)
    blob = blob.SerializeToString()
    x = np.random.default_rng(8).normal(size=(1, 4, 9, 11)).astype(np.float32)
    want = load(blob, engines="reference").run({"x": x})["out"]
    timed = load(blob, engines="torch,cpu", optimize=False, auto=True)
    planned = {c.node: c.engine for c in timed.plan}
    assert planned["a"] == planned["d"] == "torch"  # d: cpu is only a candidate
    for _ in range(2):  # the timing run, then the chosen plan's
        np.testing.assert_allclose(timed.run({"x": x})["out"], want, rtol=1e-4, atol=1e-4)
