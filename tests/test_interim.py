"""The first runs while an engine compiles (runtime/interim.py): the interim plan, said where
it is used, the compiled plan once it has run, and its errors never lost."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import types

import numpy as np
import pytest
from conftest import SAMPLE, make_model
from onnx import TensorProto, helper

from palmbrush.runtime import PalmbrushError, load, registry
from palmbrush.runtime.interim import COMPILING


def _relu_model():
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu")]
    io = [("x", TensorProto.FLOAT, [2, 3])], [("y", TensorProto.FLOAT, [2, 3])]
    return make_model(nodes, *io).SerializeToString()


def _compiling_engine(first_call, later=lambda x: np.maximum(x, 0) + 100):
    """An engine whose first call stands for a compile: it runs `first_call` once. Its
    answers are off by 100 from the reference, so a test sees which plan ran."""
    calls = []

    def relu(x):
        calls.append(threading.current_thread().name)
        return first_call(x) if len(calls) == 1 else later(x)

    engine = types.SimpleNamespace(NAME="jit", PRIORITY=30, COMPILES=True, KERNELS={"Relu": relu},
                                   available=lambda: True)  # fmt: skip
    return engine, calls


@pytest.fixture
def default_engines(monkeypatch):
    """engines=None picks from the engines this fixture is given, and interim is on."""
    monkeypatch.setenv("PALMBRUSH_INTERIM", "1")
    found = registry.discover()

    def use(engine):
        monkeypatch.setattr(
            registry, "discover", lambda: {"jit": engine, "reference": found["reference"]}
        )

    return use


def test_a_slow_compile_runs_the_interim_plan_and_says_so_until_the_compiled_plan_has_run(
    default_engines, caplog
):
    release = threading.Event()

    def compile_then_run(x):
        release.wait(30)  # "compiling" until the test lets it finish
        return np.maximum(x, 0) + 100

    engine, calls = _compiling_engine(compile_then_run)
    default_engines(engine)
    predictor = load(_relu_model())
    assert {c.node: c.engine for c in predictor.plan} == {"relu": "jit"}
    x = np.array([[-1, 0, 1], [2, -3, 4]], np.float32)
    with caplog.at_level("INFO", logger="palmbrush.runtime"):
        first = predictor.run({"x": x})["y"]
    np.testing.assert_array_equal(first, np.maximum(x, 0))  # the reference ran it
    assert "the jit engine is compiling kernels" in caplog.text
    choice = predictor.plan_at({"x": x})[0]
    assert choice.engine == "reference" and choice.declined["jit"] == COMPILING
    assert [t.engine for t in predictor.profile({"x": x})] == ["reference"]
    assert not predictor.ready(timeout=0)
    release.set()
    assert predictor.ready(timeout=30)
    np.testing.assert_array_equal(predictor.run({"x": x})["y"], np.maximum(x, 0) + 100)
    assert predictor.plan_at({"x": x})[0].engine == "jit"
    assert calls[0] == "palmbrush-compile" and len(calls) == 2  # compiled in the background


def test_a_quick_compile_gives_the_compiled_plans_picture_from_the_first_run(default_engines):
    engine, calls = _compiling_engine(lambda x: np.maximum(x, 0) + 100)
    default_engines(engine)
    predictor = load(_relu_model())
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(predictor.run({"x": x})["y"], x + 100)
    assert predictor.plan_at({"x": x})[0].engine == "jit" and len(calls) == 1


def test_a_failing_compiled_plan_is_an_error_not_a_quiet_interim(default_engines):
    def broken(x):
        raise ValueError("bad kernel")

    engine, _ = _compiling_engine(broken, later=broken)
    default_engines(engine)
    predictor = load(_relu_model())
    with pytest.raises(PalmbrushError, match=r"relu.*jit.*bad kernel"):
        predictor.run({"x": np.ones((2, 3), np.float32)})


def test_engines_asked_for_by_name_wait_for_their_compile(default_engines):
    engine, calls = _compiling_engine(lambda x: (time.sleep(1.5), np.maximum(x, 0) + 100)[1])
    default_engines(engine)
    predictor = load(_relu_model(), engines=[engine])
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(predictor.run({"x": x})["y"], x + 100)
    assert calls == [threading.current_thread().name]


_FRESH = """
import logging, sys, time
import numpy as np
from palmbrush.runtime import load
logging.basicConfig(level=logging.INFO, format="%(message)s")
reference = load(sys.argv[1], engines="reference")
predictor = load(sys.argv[1])
frame = np.random.default_rng(5).integers(0, 256, (1, 48, 64, 3), dtype=np.uint8)
want = reference.run({"frame": frame})["stylized"]
first = predictor.run({"frame": frame})["stylized"]
engines = sorted({c.engine for c in predictor.plan_at({"frame": frame})})
print("first", int(np.abs(first.astype(int) - want).max()), *engines)
assert predictor.ready(timeout=600)
later = predictor.run({"frame": frame})["stylized"]
engines = sorted({c.engine for c in predictor.plan_at({"frame": frame})})
print("later", int(np.abs(later.astype(int) - want).max()), *engines)
"""


@pytest.mark.slow
def test_a_fresh_install_stylizes_on_the_reference_while_the_cpu_engine_compiles(tmp_path):
    pytest.importorskip("numba")
    env = {**os.environ, "PALMBRUSH_INTERIM": "1", "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
           "PALMBRUSH_CACHE": str(tmp_path / "palmbrush")}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", _FRESH, str(SAMPLE)], env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    first, later = done.stdout.splitlines()
    assert first.split() == ["first", "0", "reference"]  # the interim plan: the reference's
    assert "the cpu engine is compiling kernels" in done.stderr
    assert later.split()[0] == "later" and int(later.split()[1]) <= 1
    assert "cpu" in later.split()[2:]


def test_a_compiled_plan_failing_after_the_wait_is_raised_by_ready_and_logged(
    default_engines, caplog
):
    def slow_then_broken(x):
        time.sleep(1.5)
        raise ValueError("bad kernel")

    engine, _ = _compiling_engine(slow_then_broken, later=slow_then_broken)
    default_engines(engine)
    predictor = load(_relu_model())
    x = np.ones((2, 3), np.float32)
    with caplog.at_level("INFO", logger="palmbrush.runtime"):
        np.testing.assert_array_equal(predictor.run({"x": x})["y"], x)  # interim: reference
        with pytest.raises(PalmbrushError, match=r"relu.*jit.*bad kernel"):
            predictor.ready(timeout=30)
    assert "the compiled plan failed" in caplog.text
