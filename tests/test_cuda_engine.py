"""The cuda engine and the transfers between places (runtime/places.py).

Its code runs everywhere on PyTorch's CPU device (cuda.on_device("cpu")): values then live
in torch tensors, as they would in GPU memory, so the uploads, downloads and the plan's
transfers are tested on every machine. The same tests on a real GPU skip with their reason
where none is present (marked gpu: a GPU is lent to some machines only, CI's included)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import SAMPLE, make_model
from onnx import TensorProto, helper

from palmbrush.runtime import PalmbrushError, load

torch = pytest.importorskip("torch", reason="the cuda engine runs on PyTorch")
from palmbrush.runtime.engines import cuda  # noqa: E402

GPU = pytest.mark.gpu
NO_GPU = not cuda.available()
needs_gpu = [GPU, pytest.mark.skipif(NO_GPU, reason=f"engine cuda: {cuda.unavailable_reason()}")]
F = TensorProto.FLOAT
FRAME = np.random.default_rng(21).integers(0, 256, (1, 41, 47, 3), dtype=np.uint8)


def _device(kind: str):
    return cuda.on_device("cpu") if kind == "cpu" else cuda


DEVICES = [pytest.param("cpu", id="torch-cpu-device"),
           pytest.param("cuda", id="cuda", marks=needs_gpu)]  # fmt: skip


@pytest.mark.parametrize("kind", DEVICES)
def test_the_whole_network_stays_on_the_device_and_gives_the_reference_picture(kind):
    engine = _device(kind)
    predictor = load(SAMPLE, engines=[engine])
    feeds = {"frame": FRAME}
    got = predictor.run(feeds)["stylized"]
    want = load(SAMPLE, engines="reference").run(feeds)["stylized"]
    assert isinstance(got, np.ndarray) and got.dtype == np.uint8 and got.shape == want.shape
    assert np.abs(got.astype(int) - want).max() <= 1
    plan = predictor.plan_at(feeds)
    device_ops = {c.op for c in plan if c.engine == engine.NAME}
    assert {"FromImage", "FusedConv", "ToImage"} <= device_ops
    moved = [t for c in plan for t in c.transfers]
    assert moved == [f"frame: host -> {engine.PLACE}"]  # the uint8 frame, once; nothing else

    rows = predictor.profile(feeds, repeat=2)
    transfers = [(r.node, r.engine) for r in rows if r.op == "Transfer"]
    assert transfers == [("frame", f"host -> {engine.PLACE}"),
                         ("stylized", f"{engine.PLACE} -> host")]  # fmt: skip
    assert all(r.ms >= 0 for r in rows)


def test_a_value_is_moved_once_per_place_however_many_nodes_read_it():
    """Relu on the device, two host nodes (the reference's Exp, Neg) reading its output: one
    download, shown once in the plan and once per run in the profile."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Exp", ["r"], ["e"], name="exp"),
        helper.make_node("Neg", ["r"], ["n"], name="neg"),
        helper.make_node("Add", ["e", "n"], ["y"], name="add"),
    ]
    model = make_model(nodes, [("x", F, [1, 2, 3, 4])], [("y", F, None)]).SerializeToString()
    engine = cuda.on_device("cpu")
    predictor = load(model, engines=[engine])
    x = np.random.default_rng(3).normal(size=(1, 2, 3, 4)).astype(np.float32)
    plan = {c.node: c for c in predictor.plan_at({"x": x})}
    assert plan["relu"].engine == plan["add"].engine == engine.NAME
    assert plan["exp"].engine == plan["neg"].engine == "reference"
    assert plan["relu"].transfers == [f"x: host -> {engine.PLACE}"]
    assert plan["exp"].transfers == [f"r: {engine.PLACE} -> host"]
    assert plan["neg"].transfers == []  # already moved for exp
    assert plan["add"].transfers == [f"e: host -> {engine.PLACE}", f"n: host -> {engine.PLACE}"]
    rows = predictor.profile({"x": x})
    assert [r.node for r in rows if r.op == "Transfer"] == ["x", "r", "e", "n", "y"]
    got = predictor.run({"x": x}, intermediates=True)
    want = load(model, engines="reference").run({"x": x}, intermediates=True)
    assert got.keys() == want.keys()
    for name in want:
        assert isinstance(got[name], np.ndarray), name  # never a device tensor to the caller
        np.testing.assert_allclose(got[name], want[name], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kind", DEVICES)
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precisions_are_options_and_stay_close(kind, precision):
    engine = _device(kind)
    fp32 = load(SAMPLE, engines=[engine]).run({"frame": FRAME})["stylized"].astype(int)
    half = load(SAMPLE, engines=[engine], precision=precision)
    assert {c.engine for c in half.plan if c.op == "FusedConv"} == {engine.NAME}
    got = half.run({"frame": FRAME})["stylized"].astype(int)
    diff = np.abs(got - fp32)
    assert diff.max() > 0, "the precision had no effect"
    assert np.mean(diff <= 2) >= 0.99, np.mean(diff <= 2)


def test_an_unknown_precision_is_an_error_naming_it():
    with pytest.raises(PalmbrushError, match="precision fp8 needs an engine that offers it"):
        load(SAMPLE, engines=[cuda.on_device("cpu")], precision="fp8")


@pytest.mark.skipif(not NO_GPU, reason="this machine has a GPU: the engine is available")
def test_without_a_gpu_the_engine_is_unavailable_and_loading_never_imports_torch_for_it():
    """A machine without the NVIDIA driver answers from the file system (importing PyTorch
    costs 3 s a load): in a fresh process, the default engines load and run a model with
    PyTorch never imported."""
    assert cuda.unavailable_reason().startswith("no NVIDIA GPU")
    code = (
        "import sys, numpy as np\n"
        "from palmbrush.runtime import load, registry\n"
        f"p = load({str(SAMPLE)!r})\n"
        "p.run({'frame': np.zeros((1, 16, 16, 3), np.uint8)})\n"
        "assert 'cuda' not in {e.NAME for e in registry.resolve(None)}\n"
        "assert 'torch' not in sys.modules, 'PyTorch was imported'\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PALMBRUSH_MEASURE": "0", "PALMBRUSH_INTERIM": "0"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


@pytest.mark.parametrize("pad_mode", ["reflect", "edge", "constant"])
@pytest.mark.parametrize("upsample", [None, [2, 2]])
@pytest.mark.parametrize(
    ("pads", "strides", "dilations", "group"),
    [
        ([1, 0, 2, 1], [1, 1], [1, 1], 1),
        ([0, 0, 0, 0], [2, 1], [2, 2], 2),
        ([1, 1, 1, 1], [1, 2], [1, 1], 4),
    ],
)
def test_fused_convolutions_on_the_device_match_the_reference(
    pad_mode, upsample, pads, strides, dilations, group
):
    """FusedConv's attributes as the passes make them (reference kernels compose them)."""
    from palmbrush.runtime.engines.reference import KERNELS

    rng = np.random.default_rng(sum(pads) + 10 * group)
    x = rng.normal(size=(1, 4, 9, 11)).astype(np.float32)
    w = rng.normal(size=(8, 4 // group, 3, 3)).astype(np.float32) / 3
    b, scale, bias = (rng.normal(size=8).astype(np.float32) for _ in range(3))
    attrs = dict(upsample=upsample, pad_mode=pad_mode, pre_pads=[1, 2, 1, 0], norm="instance",
                 epsilon=1e-5, activation="leaky_relu", alpha=0.2, pads=pads, strides=strides,
                 dilations=dilations, group=group, kernel_shape=[3, 3])  # fmt: skip
    attrs["auto_pad"] = "NOTSET"
    want = KERNELS["FusedConv"](x, w, b, scale, bias, None, **attrs)
    residual = rng.normal(size=want.shape).astype(np.float32)
    want = want + residual
    engine = cuda.on_device("cpu")
    kernel = engine.KERNELS["FusedConv"]
    got = kernel(engine.upload(x), w, b, scale, bias, engine.upload(residual), **attrs)
    assert isinstance(got, torch.Tensor)
    np.testing.assert_allclose(engine.download(got), want, rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(NO_GPU, reason=f"engine cuda: {cuda.unavailable_reason()}")
def test_with_a_gpu_the_default_puts_every_style_on_it_within_a_level_of_the_reference():
    from palmbrush.styles import catalogue, resolve

    frame = np.random.default_rng(4).integers(0, 256, (1, 181, 243, 3), dtype=np.uint8)
    for name in catalogue():
        path = resolve(name)
        predictor = load(path)
        assert {c.engine for c in predictor.plan if c.op == "FusedConv"} == {"cuda"}, name
        got = predictor.run({"frame": frame})["stylized"].astype(int)
        want = load(path, engines="reference").run({"frame": frame})["stylized"]
        assert np.abs(got - want).max() <= 1, name
