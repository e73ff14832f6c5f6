"""ONNX element types <-> NumPy dtypes, for the types the runtime supports."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

ONNX_TO_NUMPY = {
    TensorProto.FLOAT: np.dtype(np.float32),
    TensorProto.DOUBLE: np.dtype(np.float64),
    TensorProto.FLOAT16: np.dtype(np.float16),
    TensorProto.UINT8: np.dtype(np.uint8),
    TensorProto.INT8: np.dtype(np.int8),
    TensorProto.UINT16: np.dtype(np.uint16),
    TensorProto.INT16: np.dtype(np.int16),
    TensorProto.UINT32: np.dtype(np.uint32),
    TensorProto.INT32: np.dtype(np.int32),
    TensorProto.UINT64: np.dtype(np.uint64),
    TensorProto.INT64: np.dtype(np.int64),
    TensorProto.BOOL: np.dtype(np.bool_),
}
NUMPY_TO_ONNX = {v: k for k, v in ONNX_TO_NUMPY.items()}


def onnx_to_numpy(elem_type: int, ctx=None) -> np.dtype:
    """The NumPy dtype of an ONNX element type; unsupported types are a clear error."""
    from ..errors import ModelError

    if elem_type not in ONNX_TO_NUMPY:
        name = (
            TensorProto.DataType.Name(elem_type)
            if elem_type in TensorProto.DataType.values()
            else str(elem_type)
        )
        message = f"element type {name} is not supported"
        raise ctx.fail(message) if ctx is not None else ModelError(message)
    return ONNX_TO_NUMPY[elem_type]


def numpy_to_onnx(dtype: np.dtype) -> int:
    return NUMPY_TO_ONNX[np.dtype(dtype)]
