"""Schemas of elementwise ops: activations, arithmetic, comparisons, logic, casts."""

from __future__ import annotations

import numpy as np

from .dtypes import onnx_to_numpy
from .rules import broadcast_rule, same
from .schema import REQUIRED, Schema

BOOL = np.dtype(bool)


def _unary(op: str, **attrs) -> Schema:
    return Schema(op, (1, 1), (1, 1), attrs, same())


def _binary(op: str, dtype=None) -> Schema:
    return Schema(op, (2, 2), (1, 1), {}, broadcast_rule(dtype))


def _variadic(op: str) -> Schema:
    return Schema(op, (1, -1), (1, 1), {}, broadcast_rule())


def _cast(ctx):
    return [(onnx_to_numpy(ctx.attrs["to"], ctx), ctx.shape(0))]


def _cast_like(ctx):
    return [(ctx.dtype(1), ctx.shape(0))]


def _where(ctx):
    return broadcast_rule(dtype_from=1)(ctx)


def _dropout(ctx):
    return [(ctx.dtype(0), ctx.shape(0)), (BOOL, ctx.shape(0))]


def _check_dropout(attrs, node):
    from ..errors import ModelError

    if len(node.inputs) > 2 and node.inputs[2]:
        # training_mode is an input; only a constant false keeps inference deterministic.
        raise ModelError(f"{node.label()}: Dropout with a training_mode input is not inference")


_UNARY = [
    "Relu",
    "Sigmoid",
    "HardSwish",
    "Tanh",
    "Softplus",
    "Softsign",
    "Erf",
    "Sqrt",
    "Reciprocal",
    "Neg",
    "Abs",
    "Exp",
    "Log",
    "Floor",
    "Ceil",
    "Round",
    "Sign",
    "Sin",
    "Cos",
    "Identity",
]

SCHEMAS = [
    *(_unary(op) for op in _UNARY),
    _unary("LeakyRelu", alpha=0.01),
    _unary("Elu", alpha=1.0),
    _unary("Celu", alpha=1.0),
    _unary("Selu", alpha=1.67326319217681884765625, gamma=1.05070102214813232421875),
    _unary("HardSigmoid", alpha=0.2, beta=0.5),
    _unary("Gelu", approximate="none"),
    _unary("Not"),
    Schema("PRelu", (2, 2), (1, 1), {}, broadcast_rule()),
    Schema("Clip", (1, 3), (1, 1), {}, same()),
    *(_binary(op) for op in ("Add", "Sub", "Mul", "Div", "Pow")),
    Schema("Mod", (2, 2), (1, 1), {"fmod": 0}, broadcast_rule()),
    *(_binary(op, BOOL) for op in ("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual")),
    *(_binary(op, BOOL) for op in ("And", "Or", "Xor")),
    *(_variadic(op) for op in ("Min", "Max", "Mean", "Sum")),
    Schema("Where", (3, 3), (1, 1), {}, _where),
    Schema("Cast", (1, 1), (1, 1), {"to": REQUIRED, "saturate": 1}, _cast),
    Schema("CastLike", (2, 2), (1, 1), {"saturate": 1}, _cast_like),
    Schema("Dropout", (1, 3), (1, 2), {"seed": 0}, _dropout, _check_dropout),
]
