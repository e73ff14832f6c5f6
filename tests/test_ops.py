"""Op-level parity beyond the conformance suite: random configurations against ONNX's own
reference evaluator and PyTorch, and ops the suite only tests at opsets we do not load."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CONV_CASES, make_model
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from palmbrush.runtime import load

F = TensorProto.FLOAT


def _both(model, feeds):
    ours = load(model.SerializeToString()).run(feeds)
    theirs = ReferenceEvaluator(model).run(None, feeds)
    return ours, theirs


def _onnxruntime(model, feeds):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_upsample_matches_onnx_reference(mode):
    node = helper.make_node("Upsample", ["x", "s"], ["y"], mode=mode)
    scales = np.array([1, 1, 2, 3], np.float32)
    model = make_model([node], [("x", F, [1, 2, 3, 4])], [("y", F, None)], {"s": scales}, opset=9)
    model.opset_import[0].version = 13  # Upsample-10 is unchanged at opset 13
    x = np.random.default_rng(0).normal(size=(1, 2, 3, 4)).astype(np.float32)
    ours = load(model.SerializeToString()).run({"x": x})["y"]
    nearest = x.repeat(2, axis=2).repeat(3, axis=3)
    if mode == "nearest":
        np.testing.assert_array_equal(ours, nearest)
        return
    # Upsample-10 is Resize with asymmetric coordinates; onnxruntime runs that at opset 13.
    resize = helper.make_node(
        "Resize", ["x", "", "s"], ["y"], mode="linear", coordinate_transformation_mode="asymmetric"
    )
    equivalent = make_model([resize], [("x", F, [1, 2, 3, 4])], [("y", F, None)], {"s": scales})
    theirs = _onnxruntime(equivalent, {"x": x})[0]
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(**CONV_CASES, auto_pad=st.sampled_from(["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]))
def test_random_convolutions_match_onnxruntime(size, k, stride, dilation, group, pad, auto_pad):
    if auto_pad.startswith("SAME"):
        dilation = 1  # onnxruntime refuses dilated SAME convolutions
    span = dilation * (k - 1) + 1
    padded = [s + (2 * pad if auto_pad == "NOTSET" else 0) for s in size]
    # No output position: the model would be refused at load, as it should be.
    assume(auto_pad not in ("NOTSET", "VALID") or min(padded) >= span)
    attrs = {"kernel_shape": [k, k], "strides": [stride] * 2, "dilations": [dilation] * 2}
    attrs["group"], attrs["auto_pad"] = group, auto_pad
    if auto_pad == "NOTSET":
        attrs["pads"] = [pad] * 4
    rng = np.random.default_rng(k * 100 + stride)
    x = rng.normal(size=(1, 2 * group, *size)).astype(np.float32)
    w = rng.normal(size=(2 * group, 2, k, k)).astype(np.float32)
    b = rng.normal(size=(2 * group,)).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], **attrs)
    model = make_model([node], [("x", F, list(x.shape))], [("y", F, None)], {"w": w, "b": b})
    ours = load(model.SerializeToString()).run({"x": x})["y"]
    np.testing.assert_allclose(ours, _onnxruntime(model, {"x": x})[0], rtol=1e-4, atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(
    size=st.integers(1, 6),
    k=st.integers(1, 4),
    stride=st.integers(1, 3),
    pad=st.integers(0, 1),
    extra=st.integers(0, 2),
)
def test_random_transposed_convolutions_match_pytorch(size, k, stride, pad, extra):
    torch = pytest.importorskip("torch")
    extra = min(extra, stride - 1)  # PyTorch: output_padding < stride
    assume((size - 1) * stride - 2 * pad + k + extra > 0)  # a non-empty output
    rng = np.random.default_rng(size * 10 + k)
    x = rng.normal(size=(1, 3, size, size + 1)).astype(np.float32)
    w = rng.normal(size=(3, 2, k, k)).astype(np.float32)
    attrs = {"strides": [stride] * 2, "pads": [pad] * 4, "output_padding": [extra] * 2}
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], **attrs)
    model = make_model([node], [("x", F, list(x.shape))], [("y", F, None)], {"w": w})
    ours = load(model.SerializeToString()).run({"x": x})["y"]
    theirs = torch.nn.functional.conv_transpose2d(
        torch.from_numpy(x), torch.from_numpy(w), stride=stride, padding=pad, output_padding=extra
    ).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)


PAD_CASES = [
    (mode, size)
    for mode in ["reflect", "edge", "wrap", "constant"]
    for size in [(1, 1), (2, 3), (5, 4)]
    if not (mode == "reflect" and min(size) < 2)  # reflecting a 1-pixel side is undefined
]


@pytest.mark.parametrize(("mode", "size"), PAD_CASES)
def test_pad_modes_on_tiny_images_match_onnx_reference(mode, size):
    pads = (
        np.array([0, 0, 1, 1, 0, 0, 1, 1])
        if mode == "reflect"
        else np.array([0, 0, 2, 1, 0, 0, 1, 2])
    )
    node = helper.make_node("Pad", ["x", "p"], ["y"], mode=mode)
    model = make_model([node], [("x", F, [1, 2, *size])], [("y", F, None)], {"p": pads})
    x = np.random.default_rng(1).normal(size=(1, 2, *size)).astype(np.float32)
    ours, theirs = _both(model, {"x": x})
    np.testing.assert_array_equal(ours["y"], theirs[0])
