"""Broken and hostile models: one clear line, exit code 2, never a hang, crash or allocation."""

from __future__ import annotations

import contextlib
import tracemalloc

import numpy as np
import onnx
import pytest
from conftest import SAMPLE, make_model, relu_model, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from palmbrush.runtime import FeedError, ModelError, PalmbrushError, load


def _write(tmp_path, model_or_bytes, name="model.onnx"):
    path = tmp_path / name
    data = (
        model_or_bytes if isinstance(model_or_bytes, bytes) else model_or_bytes.SerializeToString()
    )
    path.write_bytes(data)
    return path


def _assert_cli_error(path, *fragments):
    result = run_cli("inspect", str(path), "--size", "64x64", timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def _cycle():
    return make_model(
        [
            helper.make_node("Relu", ["x", "b"], ["a"], name="first"),
            helper.make_node("Relu", ["a"], ["b"], name="second"),
        ],
        [("x", TensorProto.FLOAT, [1])],
        [("b", TensorProto.FLOAT, [1])],
    )


def _huge_initializer():
    tensor = numpy_helper.from_array(np.zeros(4, np.float32), "w")
    del tensor.dims[:]
    tensor.dims.extend([1_000_000, 1_000_000])
    model = relu_model()
    model.graph.initializer.append(tensor)
    return model


def _huge_constant_of_shape():
    return make_model(
        [helper.make_node("ConstantOfShape", ["shape"], ["y"], name="fill")],
        [],
        [("y", TensorProto.FLOAT, None)],
        {"shape": np.array([1_000_000, 1_000_000])},
    )


def _negative_dim():
    model = relu_model()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = -5
    return model


def _external(location: str):
    model = relu_model()
    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4])
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value=location)
    model.graph.initializer.append(tensor)
    return model


def _one_node(op: str, reads: str, name: str):
    """x -> op -> y, where the node reads `reads` (which may be a name nothing produces)."""
    node = helper.make_node(op, [reads], ["y"], name=name)
    return make_model([node], [("x", TensorProto.FLOAT, [1])], [("y", TensorProto.FLOAT, [1])])


def _conv(weight=(1, 1, 1, 1), **attrs):
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", **attrs)
    w = {"w": np.zeros(weight, np.float32)}
    return make_model(
        [node], [("x", TensorProto.FLOAT, [1, 1, 4, 4])], [("y", TensorProto.FLOAT, None)], w
    )


def _declared_only(count: int, elements: int):
    """A model whose `count` float32 initializers declare `elements` each but hold nothing."""
    model = relu_model()
    for i in range(count):
        model.graph.initializer.append(
            TensorProto(name=f"w{i}", data_type=TensorProto.FLOAT, dims=[elements])
        )
    return model


def _expanded(copies: int, elements: int):
    """x [1] -> `copies` Expands to [elements] -> Sum: all alive at once, sized only at run."""
    expands = [
        helper.make_node("Expand", ["x", "shape"], [f"e{i}"], name=f"expand{i}")
        for i in range(copies)
    ]
    total = helper.make_node("Sum", [f"e{i}" for i in range(copies)], ["y"], name="sum")
    return make_model(
        [*expands, total],
        [("x", TensorProto.FLOAT, [1])],
        [("y", TensorProto.FLOAT, [elements])],
        {"shape": np.array([elements])},
    )


CASES = {
    "zero stride": (_conv(strides=[0, 0]), "strides=[0, 0] must be >= 1"),
    "negative pads": (_conv(pads=[-1, 0, 0, 0]), "pads=[-1, 0, 0, 0] must be >= 0"),
    "not onnx": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "not an ONNX model"),
    "text": (b"hello, this is not a model\n", "not an ONNX model"),
    "empty": (b"", "empty"),
    "truncated": (SAMPLE.read_bytes()[: len(SAMPLE.read_bytes()) // 2], "not an ONNX model"),
    "cycle": (_cycle(), "cycle"),
    "dangling": (_one_node("Relu", "ghost", "r"), "reads 'ghost', which nothing produces"),
    "unknown op": (_one_node("FancyOp", "x", "f"), "unsupported operator 'FancyOp' at node 'f'"),
    "old opset": (
        make_model(
            [helper.make_node("Reshape", ["x", "s"], ["y"], name="r")],
            [("x", TensorProto.FLOAT, [4])],
            [("y", TensorProto.FLOAT, [2, 2])],
            {"s": np.array([2, 2])},
            opset=4,
        ),
        "opset 4",
    ),
    "negative dim": (_negative_dim(), "negative dimension"),
    "huge initializer": (_huge_initializer(), "declares 1e+12 elements"),
    "huge constant": (_huge_constant_of_shape(), "more than"),
    "outside folder": (_external("../secret.bin"), "outside the model folder"),
    "absolute path": (_external("/etc/passwd"), "outside the model folder"),
    "missing external": (_external("weights.bin"), "is missing"),
    "kernel_shape contradicts weights": (
        _conv(weight=(1, 1, 3, 3), kernel_shape=[5, 5]),
        "node 'conv' (Conv): kernel_shape [5, 5] contradicts weight shape [1, 1, 3, 3]",
    ),
    "strides of another rank": (_conv(strides=[1]), "strides [1] has 1 entries; expected 2"),
    "future opset": (relu_model(opset=99), "opset 99"),
    "weights over the total bound": (_declared_only(3, 1 << 30), "weights take 12.0 GiB"),
    "activations over the total bound": (_expanded(5, 1 << 29), "needs 12.0 GiB"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_model_is_one_clear_line_and_exit_code_2(tmp_path, case):
    model, fragment = CASES[case]
    _assert_cli_error(_write(tmp_path, model), fragment)


@pytest.mark.parametrize("case", ["huge initializer", "huge constant", "cycle", "outside folder"])
def test_broken_model_raises_model_error_from_the_api(tmp_path, case):
    with pytest.raises(ModelError):
        load(_write(tmp_path, CASES[case][0]))


def test_an_opset_newer_than_onnx_knows_is_refused_in_one_line():
    newest = onnx.defs.onnx_opset_version()
    for opset in (newest + 1, 99):
        with pytest.raises(ModelError, match=f"model uses opset {opset}, newer than") as info:
            load(relu_model(opset=opset).SerializeToString())
        assert "\n" not in str(info.value)
    assert load(relu_model(opset=newest).SerializeToString()).graph.opset == newest


def test_weights_over_the_total_bound_are_refused_before_they_are_read():
    with pytest.raises(ModelError, match=r"weights take 12.0 GiB in 3 tensors, over the 8.0 GiB"):
        load(_declared_only(3, 1 << 30).SerializeToString())  # each under the per-tensor cap
    small = relu_model()
    for i in range(10):
        small.graph.initializer.append(numpy_helper.from_array(np.zeros(256, np.float32), f"w{i}"))
    load(small.SerializeToString())
    with pytest.raises(ModelError, match=r"10.0 KiB in 10 tensors, over the 4.0 KiB bound"):
        load(small.SerializeToString(), max_bytes=4096)


def test_activations_over_the_total_bound_are_refused_before_anything_is_allocated():
    predictor = load(_expanded(5, 1 << 29).SerializeToString())  # 2 GiB each, 12 GiB in all
    tracemalloc.start()
    try:
        with pytest.raises(FeedError, match=r"at x \[1\] the model needs 12.0 GiB") as info:
            predictor.run({"x": np.ones(1, np.float32)})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "over the 8.0 GiB bound (max_bytes)" in str(info.value)
    assert peak < 64 << 20


def test_a_lowered_byte_bound_refuses_a_frame_too_large_for_it():
    predictor = load(SAMPLE, max_bytes=4 << 20)
    assert predictor.run({"frame": np.zeros((1, 32, 32, 3), np.uint8)})["stylized"].shape
    with pytest.raises(FeedError, match=r"at frame \[1, 512, 512, 3\] the model needs .* MiB"):
        predictor.run({"frame": np.zeros((1, 512, 512, 3), np.uint8)})


@pytest.mark.parametrize(
    "key, text", [("offset", "abc"), ("offset", "1e3"), ("offset", "-5"), ("length", "16.0")]
)
def test_external_data_offset_and_length_must_be_byte_counts(tmp_path, key, text):
    model = _external("weights.bin")
    model.graph.initializer[0].external_data.add(key=key, value=text)
    (tmp_path / "weights.bin").write_bytes(np.arange(4, dtype=np.float32).tobytes())
    fragment = f"tensor 'w': external data {key} '{text}' is not a byte count"
    with pytest.raises(ModelError, match=fragment):
        load(_write(tmp_path, model))
    _assert_cli_error(tmp_path / "model.onnx", fragment)


def test_missing_model_file(tmp_path):
    _assert_cli_error(tmp_path / "nope.onnx", "model file not found")


def test_external_data_inside_the_folder_loads(tmp_path):
    model = _external("weights.bin")
    (tmp_path / "weights.bin").write_bytes(np.arange(4, dtype=np.float32).tobytes())
    model.graph.node.append(helper.make_node("Identity", ["w"], ["w_out"], name="keep"))
    model.graph.output.append(helper.make_tensor_value_info("w_out", TensorProto.FLOAT, [4]))
    out = load(_write(tmp_path, model)).run({"x": np.ones((1, 3, 2, 2), np.float32)})
    np.testing.assert_array_equal(out["w_out"], np.arange(4, dtype=np.float32))


def test_feeds_of_wrong_dtype_shape_or_name_are_clear_errors():
    predictor = load(relu_model().SerializeToString())
    good = np.zeros((1, 3, 5, 7), np.float32)
    assert predictor.run({"x": good})["y"].shape == (1, 3, 5, 7)
    with pytest.raises(FeedError, match="must be float32, got float64"):
        predictor.run({"x": good.astype(np.float64)})
    with pytest.raises(FeedError, match="must have shape"):
        predictor.run({"x": np.zeros((1, 4, 5, 7), np.float32)})
    with pytest.raises(FeedError, match="must have rank 4"):
        predictor.run({"x": np.zeros((3, 5, 7), np.float32)})
    with pytest.raises(FeedError, match="missing input 'x'"):
        predictor.run({})
    with pytest.raises(FeedError, match="unknown input 'z'"):
        predictor.run({"x": good, "z": good})


def test_a_frame_too_small_for_the_network_is_a_clear_error():
    result = run_cli("bench", str(SAMPLE), "--size", "2x2", "--repeat", "1")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_corrupted_model_bytes_never_escape_as_anything_but_a_model_error(data):
    """Random byte flips and truncations of a real model: it loads, or it is a ModelError."""
    blob = bytearray(SAMPLE.read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    blob = bytes(blob[: data.draw(st.integers(1, len(blob)))])
    try:
        predictor = load(blob)
    except PalmbrushError:
        return
    frame = np.zeros((1, 32, 32, 3), np.uint8)
    with contextlib.suppress(PalmbrushError):
        predictor.run({"frame": frame})


@pytest.mark.parametrize("threads", [0, -3, 5000, True, 2.0])
def test_a_thread_count_outside_1_to_1024_is_refused(threads):
    with pytest.raises(PalmbrushError, match="threads must be"):
        load(str(SAMPLE), threads=threads)
