"""Whole-model parity: PyTorch models exported to ONNX, run on palmbrush, onnxruntime, PyTorch."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from nets import Classifier, TransformerNet, export, randomize  # noqa: E402

from palmbrush.runtime import load  # noqa: E402


def _ort(model: bytes, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _assert_close(ours: np.ndarray, theirs: np.ndarray, who: str, rel: float = 1e-4):
    span = float(theirs.max() - theirs.min()) or 1.0
    worst = float(np.abs(ours.astype(np.float64) - theirs).max())
    assert ours.shape == theirs.shape, who
    assert worst <= rel * span, f"{who}: max abs diff {worst:.3g} > {rel} x range {span:.3g}"


@pytest.mark.parametrize("size", [(64, 64), (52, 76)])
def test_transformer_net_matches_onnxruntime_and_pytorch(size):
    net = randomize(TransformerNet())
    model = export(net, (1, 3, 64, 64))
    ops = {n.op_type for n in onnx.load_from_string(model).graph.node}
    assert {"Pad", "InstanceNormalization", "Resize", "Conv"} <= ops
    predictor = load(model, engines="reference")
    x = np.random.default_rng(1).random((1, 3, *size), dtype=np.float32)
    ours = predictor.run({"x": x})["y"]
    with torch.no_grad():
        _assert_close(ours, net(torch.from_numpy(x)).numpy(), "pytorch")
    _assert_close(ours, _ort(model, x), "onnxruntime")
    assert {c.engine for c in predictor.plan} == {"reference"}


def test_classifier_with_batchnorm_pooling_and_gemm_matches():
    net = randomize(Classifier())
    model = export(net, (2, 3, 32, 32), dynamic=False)
    ops = {n.op_type for n in onnx.load_from_string(model).graph.node}
    assert {"BatchNormalization", "MaxPool", "AveragePool", "Gemm", "Softmax"} <= ops
    x = np.random.default_rng(2).random((2, 3, 32, 32), dtype=np.float32)
    ours = load(model).run({"x": x})["y"]
    with torch.no_grad():
        _assert_close(ours, net(torch.from_numpy(x)).numpy(), "pytorch")
    _assert_close(ours, _ort(model, x), "onnxruntime")


class _Calibration:
    def __init__(self, name: str, batches: list[np.ndarray]):
        self.items = iter([{name: b} for b in batches])

    def get_next(self):
        return next(self.items, None)


@pytest.mark.parametrize("fmt", ["QOperator", "QDQ"])
def test_quantized_model_from_onnxruntime_quantizer_matches(tmp_path, fmt):
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    net = randomize(Classifier())
    src, dst = tmp_path / "float.onnx", tmp_path / "quant.onnx"
    # Opset 19: the first whose QuantizeLinear/DequantizeLinear ONNX's reference evaluator has.
    src.write_bytes(export(net, (1, 3, 32, 32), dynamic=False, opset=19))
    rng = np.random.default_rng(3)
    calib = [rng.random((1, 3, 32, 32), dtype=np.float32) for _ in range(8)]
    # QOperator Gemm becomes com.microsoft's QGemm, outside the ONNX standard: conv only there.
    ops_to_quantize = ["Conv"] if fmt == "QOperator" else ["Conv", "Gemm"]
    quantize_static(
        str(src),
        str(dst),
        _Calibration("x", calib),
        quant_format=getattr(QuantFormat, fmt),
        op_types_to_quantize=ops_to_quantize,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
    )
    model = dst.read_bytes()
    ops = {n.op_type for n in onnx.load_from_string(model).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    assert ("QLinearConv" in ops) == (fmt == "QOperator")
    x = rng.random((1, 3, 32, 32), dtype=np.float32)
    ours = load(model).run({"x": x}, intermediates=True)
    theirs = _standard(model, {"x": x})
    quantized = [n for n, a in theirs.items() if a.dtype in (np.uint8, np.int8)]
    assert len(quantized) >= 3  # the input and each quantized layer's output
    for name in quantized:
        steps = np.abs(ours[name].astype(np.int32) - theirs[name].astype(np.int32)).max()
        assert steps <= QUANT_STEPS, f"{name}: {steps} quantization steps from the standard"
    _assert_close(ours["y"], theirs["y"], "ONNX reference evaluator", rel=2e-2)


# Quantized parity is counted in steps of the integer tensors: float sums in another order may
# round a value to the neighbouring step, never further.
QUANT_STEPS = 1


def _standard(model: bytes, feeds: dict) -> dict[str, np.ndarray]:
    """Every value, as the standard defines it: ONNX's reference evaluator (NumPy), whose
    results, unlike onnxruntime's fused int8 kernels, do not depend on the CPU."""
    from onnx.reference import ReferenceEvaluator
    from onnx.reference.ops.op_qlinear_conv import QLinearConv

    class PerChannelQLinearConv(QLinearConv):
        """onnx 1.17's QLinearConv applies a per-channel weight scale (C,) along the last
        axis (width); the standard scales each output channel: (C,) -> (C, 1, 1)."""

        op_domain = ""

        def _run(self, x, x_scale, x_zero_point, w, w_scale, *rest, **attrs):
            if np.ndim(w_scale) == 1:
                w_scale = w_scale.reshape(-1, *[1] * (w.ndim - 2))
            return super()._run(x, x_scale, x_zero_point, w, w_scale, *rest, **attrs)

    PerChannelQLinearConv.__name__ = "QLinearConv"  # the evaluator matches ops by class name
    proto = onnx.load_from_string(model)
    evaluator = ReferenceEvaluator(proto, new_ops=[PerChannelQLinearConv])
    names = [o for node in proto.graph.node for o in node.output if o]
    return dict(zip(names, evaluator.run(names, feeds), strict=True))
