"""Feeds checked against a model's inputs before anything runs: one FeedError line each."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import FeedError
from .ir import Value


def check_feeds(feeds: dict[str, Any], inputs: list[Value]) -> dict[str, np.ndarray]:
    """The feeds as arrays, each checked for its input's dtype, rank and shape (a symbolic
    dimension must be the same size everywhere it appears)."""
    if not isinstance(feeds, dict):
        raise FeedError("feeds must be a dict of input name -> array")
    names = {v.name for v in inputs}
    for name in feeds:
        if name not in names:
            raise FeedError(
                f"unknown input '{name}' (model inputs: {', '.join(v.name for v in inputs)})"
            )
    symbols: dict[str, int] = {}
    checked = {}
    for value in inputs:
        if value.name not in feeds:
            raise FeedError(f"missing input '{value.name}'")
        checked[value.name] = _check_one(value, np.asarray(feeds[value.name]), symbols)
    return checked


def _check_one(value: Value, array: np.ndarray, symbols: dict[str, int]) -> np.ndarray:
    if value.dtype is not None and array.dtype != value.dtype:
        raise FeedError(f"input '{value.name}' must be {value.dtype}, got {array.dtype}")
    if value.shape is None:
        return array
    if array.ndim != len(value.shape):
        raise FeedError(
            f"input '{value.name}' must have rank {len(value.shape)} "
            f"{_fmt(value.shape)}, got shape {list(array.shape)}"
        )
    for want, got in zip(value.shape, array.shape):
        if isinstance(want, str):
            want = symbols.setdefault(want, got)
        if isinstance(want, int) and want != got:
            raise FeedError(
                f"input '{value.name}' must have shape {_fmt(value.shape)}, got {list(array.shape)}"
            )
    return array


def _fmt(shape) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
