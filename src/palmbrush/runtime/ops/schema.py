"""The Schema record and the checks every node goes through before it can run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ModelError

REQUIRED = object()  # marks an attribute that has no default
POSITIVE = ("strides", "dilations", "kernel_shape", "blocksize", "group")
NON_NEGATIVE = ("pads", "output_padding")


@dataclass(frozen=True)
class Schema:
    """What every engine may assume about an op: arity, attributes, and inference."""

    op: str
    inputs: tuple[int, int]  # (min, max); max -1 means variadic
    outputs: tuple[int, int]
    attrs: dict[str, Any]
    infer: Callable  # (ctx: InferCtx) -> list[(dtype, shape)] or (dtype, shape, const) entries
    validate: Callable | None = None  # (attrs, node) -> None; raises ModelError
    bind: Callable | None = None  # (attrs, node) -> attrs: structure a kernel needs to know

    def check(self, node, opset: int) -> None:
        n_in = len(node.inputs)
        while n_in and not node.inputs[n_in - 1]:
            n_in -= 1
        lo, hi = self.inputs
        if n_in < lo or (hi >= 0 and n_in > hi):
            raise ModelError(f"{node.label()} has {n_in} inputs; {self.op} takes {_span(lo, hi)}")
        lo, hi = self.outputs
        if not lo <= len(node.outputs) <= hi:
            raise ModelError(
                f"{node.label()} has {len(node.outputs)} outputs; {self.op} gives {_span(lo, hi)}"
            )
        for name in node.attrs:
            if name not in self.attrs:
                raise ModelError(f"{node.label()}: unknown attribute '{name}'")
        for name, default in self.attrs.items():
            if default is REQUIRED and name not in node.attrs:
                raise ModelError(f"{node.label()}: missing required attribute '{name}'")
        _check_ranges(node)
        if self.validate is not None:
            self.validate(attrs_with_defaults(self, node.attrs), node)


def attrs_with_defaults(schema: Schema, given: dict[str, Any]) -> dict[str, Any]:
    """The node's attributes with ONNX defaults filled in, as kernels receive them."""
    out = {k: v for k, v in schema.attrs.items() if v is not REQUIRED}
    out.update(given)
    return out


def _check_ranges(node) -> None:
    """Window attributes must be positive (strides, kernels) or non-negative (pads)."""
    for name, low in [(n, 1) for n in POSITIVE] + [(n, 0) for n in NON_NEGATIVE]:
        value = node.attrs.get(name)
        items = value if isinstance(value, list | tuple) else [] if value is None else [value]
        if any(not isinstance(v, int) or v < low for v in items):
            raise ModelError(f"{node.label()}: attribute {name}={value} must be >= {low}")


def _span(lo: int, hi: int) -> str:
    if hi < 0:
        return f"at least {lo}"
    return f"{lo}" if lo == hi else f"{lo} to {hi}"


def kernel_attrs(schema: Schema, node) -> dict[str, Any]:
    """The keyword attributes a kernel is called with for this node."""
    attrs = attrs_with_defaults(schema, node.attrs)
    return schema.bind(attrs, node) if schema.bind is not None else attrs
