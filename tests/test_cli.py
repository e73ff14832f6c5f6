"""The command line as a user meets it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import SAMPLE, run_cli


def test_help_stays_fast_by_not_importing_heavy_modules():
    code = (
        "import sys; from palmbrush.cli.main import build_parser; build_parser(); "
        "heavy = [m for m in ('numpy', 'onnx', 'torch', 'onnxruntime') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    assert _python(code).strip() == ""
    assert "inspect" in run_cli("--help").stdout


def _python(code: str) -> str:
    """The stdout of `code` run by a new interpreter (so sys.modules starts empty)."""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_runtime_package_imports_its_names_only_when_they_are_used():
    code = (
        "import sys; import palmbrush.runtime as r; from palmbrush.runtime.errors import "
        "ModelError; light = [m for m in ('numpy', 'onnx') if m in sys.modules]; "
        "load = r.load; print(','.join(light), 'numpy' in sys.modules, load.__module__)"
    )
    assert _python(code).split() == ["True", "palmbrush.runtime.api"]  # none, then numpy on use


def test_inspect_prints_io_ops_parameters_macs_and_the_engine_plan():
    result = run_cli("inspect", str(SAMPLE), "--size", "640x480", "--engines", "reference")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "frame: uint8 [1xHxWx3]" in out
    assert "stylized: uint8 [1xHxWx3]" in out
    assert "Conv 6" in out and "InstanceNormalization 5" in out
    assert "parameters: 10,995" in out
    assert "1.99G MACs" in out
    assert (
        "after graph passes (fuse_pad_conv 5, fuse_upsample_conv 1, fuse_conv_norm 5, "
        "fuse_conv_activation 4, fuse_residual 1, fuse_from_image 1, fuse_to_image 1): 12 nodes"
        in out
    )
    assert "conv_13       FusedConv  reference" in out


def test_bench_reports_a_ratio_to_onnxruntime_measured_in_the_same_run():
    pytest.importorskip("onnxruntime")
    result = run_cli(
        "bench", str(SAMPLE), "--size", "64x48", "--vs", "onnxruntime", "--repeat", "3"
    )
    assert result.returncode == 0, result.stderr
    rows = {
        line.split("  ")[0].split(" (")[0]: line.split()
        for line in result.stdout.splitlines()
        if line.startswith(("palmbrush", "onnxruntime"))
    }
    assert set(rows) == {"palmbrush", "onnxruntime"}
    ours, theirs = (float(rows[name][-4]) for name in ("palmbrush", "onnxruntime"))
    low, high = (float(rows["palmbrush"][i]) for i in (-3, -2))
    assert 0 < low <= ours <= high  # min <= median <= max, all measured
    ratio = float(rows["palmbrush"][-1].rstrip("x"))
    assert ratio == pytest.approx(theirs / ours, rel=0.01, abs=0.006)  # printed to 2 places


PROFILE = ["bench", str(SAMPLE), "--size", "40x32", "--repeat", "1", "--profile"]


def test_bench_profile_shows_engine_and_time_per_node():
    result = run_cli(*PROFILE, "--engines", "reference")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("conv_")]
    assert len(rows) == 6 and all(r[1:3] == ["FusedConv", "reference"] for r in rows)
    assert all(r[4].endswith("%") for r in rows)


def test_bench_profile_says_why_a_faster_engine_declined():
    pytest.importorskip("torch")
    result = run_cli(*PROFILE, "--engines", "torch,reference")
    assert result.returncode == 0, result.stderr
    sigmoid = next(line for line in result.stdout.splitlines() if line.startswith("sigmoid_"))
    assert "reference" in sigmoid and "torch: no kernel for Sigmoid" in sigmoid


def test_env_lists_versions_and_engines():
    result = run_cli("env")
    assert result.returncode == 0
    assert "numpy" in result.stdout and "reference: available" in result.stdout


def test_bad_size_is_a_one_line_error():
    result = run_cli("inspect", str(SAMPLE), "--size", "big")
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "palmbrush: error: size must look like 640x480 (width x height), got 'big'"
    )
