"""Reference kernels for elementwise ops: the definitions other engines are tested against."""

from __future__ import annotations

import math
from functools import reduce

import numpy as np

from ...ops.dtypes import onnx_to_numpy


def _like(x: np.ndarray, y) -> np.ndarray:
    return np.asarray(y).astype(x.dtype, copy=False)


def _float(x: np.ndarray) -> np.ndarray:
    """Compute half precision in float32, as every runtime does, and cast back after."""
    return x.astype(np.float32) if x.dtype == np.float16 else x


def relu(x):
    return np.maximum(x, _like(x, 0))


def leaky_relu(x, *, alpha):
    return _like(x, np.where(x >= 0, x, _float(x) * alpha))


def prelu(x, slope):
    return _like(x, np.where(x >= 0, x, x * slope))


def elu(x, *, alpha):
    f = _float(x)
    return _like(x, np.where(f > 0, f, alpha * np.expm1(np.minimum(f, 0))))


def celu(x, *, alpha):
    f = _float(x)
    return _like(x, np.maximum(f, 0) + np.minimum(0, alpha * np.expm1(np.minimum(f, 0) / alpha)))


def selu(x, *, alpha, gamma):
    f = _float(x)
    return _like(x, gamma * np.where(f > 0, f, alpha * np.expm1(np.minimum(f, 0))))


def sigmoid(x):
    f = _float(x)
    with np.errstate(over="ignore"):
        return _like(x, 1 / (1 + np.exp(-f)))


def hard_sigmoid(x, *, alpha, beta):
    return _like(x, np.clip(_float(x) * alpha + beta, 0, 1))


def hard_swish(x):
    f = _float(x)
    return _like(x, f * np.clip(f / 6 + 0.5, 0, 1))


def softplus(x):
    return _like(x, np.logaddexp(0, _float(x)))


def softsign(x):
    return _like(x, x / (1 + np.abs(x)))


def erf(x):
    f = np.asarray(x, dtype=np.float64)
    return _like(x, np.vectorize(math.erf, otypes=[np.float64])(f))


def gelu(x, *, approximate):
    f = np.asarray(x, dtype=np.float64)
    if approximate == "tanh":
        y = 0.5 * f * (1 + np.tanh(math.sqrt(2 / math.pi) * (f + 0.044715 * f**3)))
    else:
        y = 0.5 * f * (1 + erf(f / math.sqrt(2)))
    return _like(x, y)


def clip(x, lo=None, hi=None):
    y = x
    if lo is not None and lo.size:
        y = np.maximum(y, lo)
    if hi is not None and hi.size:
        y = np.minimum(y, hi)
    return _like(x, y)


def div(a, b):
    if np.issubdtype(a.dtype, np.integer):
        with np.errstate(divide="ignore", invalid="ignore"):
            return _like(a, np.trunc(a.astype(np.float64) / b))
    return _like(a, a / b)


def power(a, b):
    with np.errstate(invalid="ignore", divide="ignore"):
        return _like(a, np.power(a.astype(np.float64) if a.dtype.kind in "iu" else a, b))


def mod(a, b, *, fmod):
    with np.errstate(divide="ignore", invalid="ignore"):
        return _like(a, np.fmod(a, b) if fmod else np.mod(a, b))


def variadic(fn):
    def kernel(*xs):
        return _like(xs[0], reduce(fn, xs))

    return kernel


def mean(*xs):
    return _like(xs[0], reduce(np.add, xs) / len(xs))


def where(cond, x, y):
    return np.where(cond, x, y)


def cast(x, *, to, saturate):
    dtype = onnx_to_numpy(to)
    if x.dtype.kind == "f" and dtype.kind in "iub" and dtype.kind != "b":
        with np.errstate(invalid="ignore"):
            return np.trunc(x).astype(dtype)
    return x.astype(dtype)


def cast_like(x, like, *, saturate):
    return x.astype(like.dtype)


def identity(x):
    return x


def dropout(x, ratio=None, training_mode=None, *, seed):
    return x, np.ones(x.shape, dtype=bool)


def _unary(fn):
    def kernel(x):
        with np.errstate(invalid="ignore", divide="ignore"):
            return _like(x, fn(_float(x)))

    return kernel


def _binary(fn):
    def kernel(a, b):
        return fn(a, b)

    return kernel


KERNELS = {
    "Relu": relu,
    "LeakyRelu": leaky_relu,
    "PRelu": prelu,
    "Elu": elu,
    "Celu": celu,
    "Selu": selu,
    "Sigmoid": sigmoid,
    "HardSigmoid": hard_sigmoid,
    "HardSwish": hard_swish,
    "Tanh": _unary(np.tanh),
    "Softplus": softplus,
    "Softsign": softsign,
    "Erf": erf,
    "Gelu": gelu,
    "Clip": clip,
    "Sqrt": _unary(np.sqrt),
    "Reciprocal": _unary(np.reciprocal),
    "Neg": np.negative,
    "Abs": np.abs,
    "Exp": _unary(np.exp),
    "Log": _unary(np.log),
    "Floor": np.floor,
    "Ceil": np.ceil,
    "Round": np.round,
    "Sign": np.sign,
    "Sin": _unary(np.sin),
    "Cos": _unary(np.cos),
    "Add": _binary(np.add),
    "Sub": _binary(np.subtract),
    "Mul": _binary(np.multiply),
    "Div": div,
    "Pow": power,
    "Mod": mod,
    "Equal": _binary(np.equal),
    "Less": _binary(np.less),
    "Greater": _binary(np.greater),
    "LessOrEqual": _binary(np.less_equal),
    "GreaterOrEqual": _binary(np.greater_equal),
    "And": _binary(np.logical_and),
    "Or": _binary(np.logical_or),
    "Xor": _binary(np.logical_xor),
    "Not": np.logical_not,
    "Min": variadic(np.minimum),
    "Max": variadic(np.maximum),
    "Sum": variadic(np.add),
    "Mean": mean,
    "Where": where,
    "Cast": cast,
    "CastLike": cast_like,
    "Identity": identity,
    "Dropout": dropout,
}
