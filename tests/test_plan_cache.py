"""The per-input-size plans: bounded by bytes and count, least recently used out first."""

from __future__ import annotations

import gc
import tracemalloc
import weakref

import numpy as np
import pytest
from conftest import SAMPLE, make_model
from onnx import TensorProto, helper

from palmbrush.runtime import load
from palmbrush.runtime.engines import cpu as cpu_engine
from palmbrush.runtime.engines import torch as torch_engine
from palmbrush.runtime.memory import MAX_PLANS, PLAN_CACHE_BYTES, PlanCache

SIZES = [(32 + 2 * i, 34 + 2 * i) for i in range(50)]  # 50 distinct frame sizes, 32..132 px
BOUND = 2 << 20  # a cache of 2 MiB holds a few of these sizes' arenas, not 50


# Arenas exist for engines whose kernels write into planned buffers: the cpu engine's.
needs_cpu = pytest.mark.skipif(not cpu_engine.available(), reason="needs numba (cpu engine)")


def _frame(h: int, w: int) -> np.ndarray:
    return np.random.default_rng(h * w).integers(0, 256, (1, h, w, 3), np.uint8)


def _traced_after(predictor, sizes) -> int:
    """Bytes numpy and Python hold (tracemalloc) after running every size in turn."""
    for h, w in sizes:
        predictor.run({"frame": _frame(h, w)})
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


@needs_cpu
def test_memory_stays_flat_over_50_frame_sizes():
    """An unbounded cache grows by every size's arena (about 23 MiB over these 40 sizes)."""
    predictor = load(SAMPLE, engines="cpu", plan_cache_bytes=BOUND)
    tracemalloc.start()
    try:
        early = _traced_after(predictor, SIZES[:10])
        late = _traced_after(predictor, SIZES[10:])
    finally:
        tracemalloc.stop()
    assert late - early < BOUND + (2 << 20), f"grew {(late - early) / 2**20:.1f} MiB"
    assert predictor.plan_cache.nbytes <= BOUND
    assert 1 <= len(predictor.plan_cache) < 10


def test_the_newest_plan_is_kept_even_over_the_bound_and_results_do_not_change():
    unbounded = load(SAMPLE)
    none_kept = load(SAMPLE, plan_cache_bytes=0)
    for h, w in [*SIZES[:3], SIZES[0]]:
        frame = _frame(h, w)
        a, b = unbounded.run({"frame": frame}), none_kept.run({"frame": frame})
        np.testing.assert_array_equal(a["stylized"], b["stylized"])
        assert len(none_kept.plan_cache) == 1
    assert unbounded.plan_cache.max_bytes == PLAN_CACHE_BYTES
    assert len(unbounded.plan_cache) == 3


@needs_cpu
def test_an_evicted_plan_frees_its_arena():
    predictor = load(SAMPLE, engines="cpu", plan_cache_bytes=0)
    predictor.run({"frame": _frame(40, 40)})
    plan = predictor.plan_cache.get((("frame", (1, 40, 40, 3)),))
    buffer = weakref.ref(plan.arena.buffer)
    del plan
    predictor.run({"frame": _frame(48, 48)})
    gc.collect()
    assert buffer() is None


def test_auto_tuned_kernels_are_bounded_with_their_plans():
    predictor = load(SAMPLE, engines="auto", plan_cache_bytes=0)
    for h, w in SIZES[:3]:
        predictor.run({"frame": _frame(h, w)})
        plan = predictor.plan_cache.get((("frame", (1, h, w, 3)),))
        assert plan.tuned is not None and len(predictor.plan_cache) == 1


def _dequantized_conv():
    """Conv weights computed by a node: with optimize=False each input size folds its own."""
    nodes = [
        helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["w"], name="dq"),
        helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1]),
    ]
    inits = {"wq": np.ones((16, 8, 3, 3), np.uint8), "s": np.float32(0.1), "z": np.uint8(0)}
    x, y = ("x", TensorProto.FLOAT, [1, 8, "H", "W"]), ("y", TensorProto.FLOAT, None)
    return make_model(nodes, [x], [y], inits).SerializeToString()


@pytest.mark.skipif(not torch_engine.available(), reason="needs PyTorch for the torch engine")
def test_engine_caches_forget_the_weights_of_an_evicted_plan():
    predictor = load(_dequantized_conv(), "torch,reference", optimize=False, plan_cache_bytes=0)
    assert {c.op: c.engine for c in predictor.plan}["Conv"] == "torch"
    predictor.run({"x": np.ones((1, 8, 16, 16), np.float32)})
    weight = weakref.ref(predictor.plan_cache.get((("x", (1, 8, 16, 16)),)).constants["w"])
    predictor.run({"x": np.ones((1, 8, 17, 16), np.float32)})
    gc.collect()
    assert weight() is None


def test_the_cache_drops_the_least_recently_used_plan_first():
    cache = PlanCache(max_bytes=100)
    cache.put("a", "A", 40)
    cache.put("b", "B", 40)
    assert cache.get("a") == "A"  # a is now the most recent
    cache.put("c", "C", 40)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == ("A", None, "C")
    assert cache.nbytes == 80
    cache.put("huge", "H", 1000)  # over the bound on its own: kept, everything else goes
    assert len(cache) == 1 and cache.get("huge") == "H" and cache.nbytes == 1000


def test_the_cache_bounds_the_number_of_plans_too():
    cache = PlanCache(max_bytes=1 << 40)
    for i in range(MAX_PLANS + 10):
        cache.put(i, i, 0)
    assert len(cache) == MAX_PLANS and cache.get(0) is None and cache.get(MAX_PLANS + 9) is not None
