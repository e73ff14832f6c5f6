"""Shared helpers: tiny ONNX models built in code, and the shared data folder when present."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

# Runs on the default engines wait for compiled kernels, so a test's pictures do not depend on
# which test happened to compile them first; tests/test_interim.py turns the interim plan on.
os.environ.setdefault("PALMBRUSH_INTERIM", "0")
# ... and on the registry's preference order, not on engines timed on a busy test machine;
# tests/test_measured.py turns measuring on.
os.environ.setdefault("PALMBRUSH_MEASURE", "0")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
SAMPLE = REPO / "src/palmbrush/samples/tiny_stylenet.onnx"


# Convolution configurations for property tests: odd and one-pixel sizes, strides, dilations.
CONV_CASES = {
    "size": st.tuples(st.integers(1, 9), st.integers(1, 9)),
    "k": st.integers(1, 4),
    "stride": st.integers(1, 3),
    "dilation": st.integers(1, 2),
    "group": st.sampled_from([1, 2]),
    "pad": st.integers(0, 2),
}


def make_model(nodes, inputs, outputs, inits=(), opset: int = 17, value_info=()) -> onnx.ModelProto:
    """A model from helper nodes; inputs/outputs are (name, elem_type, shape) triples."""
    graph = helper.make_graph(
        nodes,
        "test",
        [helper.make_tensor_value_info(*i) for i in inputs],
        [helper.make_tensor_value_info(*o) for o in outputs],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in dict(inits).items()],
        value_info=[helper.make_tensor_value_info(*v) for v in value_info],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def relu_model(opset: int = 17) -> onnx.ModelProto:
    return make_model(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        [("x", TensorProto.FLOAT, [1, 3, "H", "W"])],
        [("y", TensorProto.FLOAT, [1, 3, "H", "W"])],
        opset=opset,
    )


def run_cli(*args: str, timeout: float = 120):
    """Run the palmbrush CLI in a fresh process (exit codes and stderr as a user sees them)."""
    import subprocess

    return subprocess.run(
        [sys.executable, "-m", "palmbrush.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def stop_process(process) -> None:
    """Terminate a server started by a test; kill it if it does not stop within 10 s."""
    import subprocess

    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


IN_CI = os.environ.get("CI", "").lower() == "true"  # CI sets CI=true; a user's clone does not


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI every test runs: what a user's clone may lack (Chromium, ../shared, an optional
    package) is installed there, so a skip there is a failure, not a pass."""
    report = (yield).get_result()
    hardware = item.get_closest_marker("gpu") is not None and not _gpu()  # lent to some only
    if IN_CI and report.skipped and not hasattr(report, "wasxfail") and not hardware:
        report.outcome, report.longrepr = "failed", _ci_skip(report.longrepr)


def _gpu() -> bool:
    """Whether this machine has a GPU for the cuda engine (then its tests must run, in CI too)."""
    from palmbrush.runtime.engines import cuda

    return cuda.available()


SKIPPED_FILES: list[str] = []  # in CI: files a module-level importorskip skipped whole


def pytest_collectreport(report):
    if IN_CI and report.skipped:  # kept as a skip, so every other file still runs ...
        SKIPPED_FILES.append(f"{report.nodeid}: {_ci_skip(report.longrepr)}")


def pytest_sessionfinish(session, exitstatus):
    if SKIPPED_FILES and exitstatus == 0:  # ... and the run fails at the end
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    for line in SKIPPED_FILES:
        terminalreporter.write_line(f"FAILED (skipped in CI) {line}", red=True)


def _ci_skip(longrepr) -> str:
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return f"skipped in CI, where nothing may be missing: {reason}"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"needs the shared data folder {SHARED} (not part of a user's clone)")
    return SHARED


def pytest_collection_modifyitems(config, items):
    """Deselect the ONNX backend cases palmbrush does not claim: ops it does not include and
    the cases test_conformance.EXCLUDE gives a reason for (~2,200 in all). As skips they would
    hide the skips that mean something."""
    unclaimed = [i for i in items if _skip_reason(i).startswith(UNCLAIMED)]
    if unclaimed:
        config.hook.pytest_deselected(items=unclaimed)
        chosen = set(map(id, unclaimed))
        items[:] = [i for i in items if id(i) not in chosen]


UNCLAIMED = ("no matched include pattern", "matched exclude pattern")  # onnx's runner says


def _skip_reason(item) -> str:
    return getattr(getattr(item, "obj", None), "__unittest_skip_why__", None) or ""


@pytest.fixture(autouse=True)
def _measured_times_in_a_temporary_folder(monkeypatch, tmp_path_factory):
    """engines="auto" and measuring write engine-choices.json: never the developer's cache."""
    from palmbrush.runtime import measured

    folder = tmp_path_factory.mktemp("choices")
    monkeypatch.setattr(measured, "cache_dir", lambda: folder)
