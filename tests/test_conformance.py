"""ONNX's own backend conformance suite, run on palmbrush for every op we claim.

Each exclusion is on its own line with the reason.
"""

import os

import numpy as np
import onnx
import onnx.backend.test
import pytest
from onnx import numpy_helper

from palmbrush.runtime import load
from palmbrush.runtime.backend import PalmbrushBackend

OPS = [
    "conv",
    "convtranspose",
    "instancenorm",
    "batchnorm",
    "layer_normalization",
    "relu",
    "leakyrelu",
    "prelu",
    "elu",
    "selu",
    "celu",
    "sigmoid",
    "hardsigmoid",
    "hardswish",
    "tanh",
    "softplus",
    "softsign",
    "clip",
    "erf",
    "gelu",
    "add",
    "sub",
    "mul",
    "div",
    "pow",
    "sqrt",
    "reciprocal",
    "neg",
    "abs",
    "exp",
    "log",
    "floor",
    "ceil",
    "round",
    "sign",
    "sin",
    "cos",
    "min",
    "max",
    "mean",
    "sum",
    "where",
    "equal",
    "less",
    "greater",
    "less_equal",
    "greater_equal",
    "not",
    "and",
    "or",
    "xor",
    "mod",
    "reduce_mean",
    "reduce_sum",
    "reduce_max",
    "reduce_min",
    "reduce_prod",
    "reduce_l1",
    "reduce_l2",
    "reduce_sum_square",
    "reduce_log_sum_exp",
    "pad",
    "constant_pad",
    "reflect_pad",
    "edge_pad",
    "wrap_pad",
    "resize",
    "upsample",
    "maxpool",
    "averagepool",
    "globalaveragepool",
    "globalmaxpool",
    "concat",
    "split",
    "slice",
    "gather",
    "reshape",
    "transpose",
    "flatten",
    "squeeze",
    "unsqueeze",
    "expand",
    "tile",
    "shape",
    "size",
    "cast",
    "castlike",
    "constant",
    "constantofshape",
    "range",
    "identity",
    "dropout",
    "gemm",
    "matmul",
    "softmax",
    "logsoftmax",
    "depthtospace",
    "spacetodepth",
    "quantizelinear",
    "dequantizelinear",
    "qlinearconv",
    "qlinearmatmul",
    "basic_conv_with_padding",
    "basic_conv_without_padding",
]

EXCLUDE = {
    # Other ops that share a prefix with ours.
    r"test_gather_elements": "GatherElements is a different op",
    r"test_gathernd": "GatherND is a different op",
    r"test_matmulinteger": "MatMulInteger is a different op",
    r"test_reduce_log_sum_(?!exp)": "ReduceLogSum is not claimed",
    r"test_maxunpool": "MaxUnpool is a different op",
    r"test_constant_of_shape": "named test_constantofshape in this suite",
    r"test_split_to_sequence": "SplitToSequence returns a sequence, not a tensor",
    r"test_castlike_.*FLOAT8|test_cast_.*FLOAT8|test_cast.*E4M3|test_cast.*E5M2": "float8 types",
    r"test_cast.*BFLOAT16|test_castlike.*BFLOAT16": "bfloat16 is not a supported dtype",
    r"test_cast.*STRING|test_castlike.*STRING": "string tensors are not supported",
    r"test_cast.*INT4|test_cast.*UINT4|test_castlike.*INT4": "4-bit integer types",
    r"test_quantizelinear_.*(e4m3|e5m2|int4|uint4|float4)": "float8 / 4-bit quantization",
    r"test_dequantizelinear_.*(e4m3|e5m2|int4|uint4|float4)": "float8 / 4-bit quantization",
    r"test_.*quantizelinear_blocked": "blocked quantization (block_size) is not supported",
    r"test_training_dropout": "Dropout in training mode is not inference",
    r"test_batchnorm_.*training_mode": "BatchNormalization in training mode is not inference",
    r"test_resize_.*antialias": "Resize antialias=1 is not supported",
    r"test_upsample_nearest": "opset 9 model; palmbrush loads opsets 13 and later",
    r"test_range_.*_loop|test_range_.*_expanded": "uses Loop (control flow): not supported",
    r"test_celu_expanded": "opset 12 model; Constant changed in opset 13",
    r"test_dropout_.*_old": "opset 11 model; Dropout's ratio became an input in opset 12",
    r"test_expand_shape_model|test_sign_model": "opset 9 model from before opset 13",
    r"test_(log_)?softmax_(functional_)?(dim3|lastdim)": "opset 6 model; Softmax's axis rule "
    "changed in opset 13",
    r"test_equal_string": "string tensors are not supported",
    r"test_identity_opt|test_identity_sequence": "optional and sequence types are not supported",
    # Expected outputs that onnxruntime disagrees with; test_suite_disagrees_* checks that we
    # match onnxruntime exactly there instead.
    r"test_qlinearmatmul_.*_int8": "expected output wraps around int8 instead of saturating",
    r"test_averagepool_3d_dilations_large_count_include_pad_is_1_ceil_mode_is_True": "the "
    "expected divisor differs from onnxruntime's for dilated taps past the padding",
}
DISAGREES = [
    "test_qlinearmatmul_2D_int8_float32",
    "test_qlinearmatmul_3D_int8_float32",
    "test_averagepool_3d_dilations_large_count_include_pad_is_1_ceil_mode_is_True",
]

backend_test = onnx.backend.test.BackendTest(PalmbrushBackend, __name__)
backend_test.include(rf"^test_({'|'.join(OPS)})(_.*)?_cpu$")
for pattern in EXCLUDE:
    backend_test.exclude(pattern)

pytestmark = pytest.mark.conformance
globals().update(backend_test.enable_report().test_cases)


@pytest.mark.parametrize("name", DISAGREES)
def test_suite_disagrees_with_onnxruntime_and_we_match_onnxruntime(name):
    ort = pytest.importorskip("onnxruntime")
    folder = os.path.join(os.path.dirname(onnx.backend.test.__file__), "data", "node", name)
    if not os.path.isdir(folder):
        pytest.skip("this onnx wheel carries no backend test data")
    model = onnx.load(os.path.join(folder, "model.onnx"))
    feeds = {
        info.name: numpy_helper.to_array(
            onnx.load_tensor(os.path.join(folder, "test_data_set_0", f"input_{i}.pb"))
        )
        for i, info in enumerate(model.graph.input)
    }
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    theirs = session.run(None, feeds)[0]
    ours = load(model.SerializeToString()).run(feeds)[model.graph.output[0].name]
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)
