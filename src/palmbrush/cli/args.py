"""Argument types that check numbers at parse time: a bad value is one line and exit status 2.

Each factory returns a callable for argparse's `type=`; argparse turns its ArgumentTypeError
into `palmbrush CMD: error: argument --x: ...` (see main.Parser), before any work starts.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from palmbrush.contract import MAX_THREADS


def int_in(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An int in [low, high] (either bound may be open)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        _check(value, low, high, text)
        return value

    parse.__name__ = "whole number"  # argparse names the type in its messages
    return parse


def float_in(low: float | None = None, high: float | None = None, *,
           open_low: bool = False) -> Callable[[str], float]:  # fmt: skip
    """A finite float in [low, high] ((low, high] with open_low)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"'{text}' is not a finite number")
        if open_low and low is not None and value <= low:
            raise argparse.ArgumentTypeError(f"{text} must be more than {low:g}")
        _check(value, low, high, text)
        return value

    parse.__name__ = "number"
    return parse


def _check(value: float, low: float | None, high: float | None, text: str) -> None:
    if low is not None and value < low:
        raise argparse.ArgumentTypeError(f"{text} is below the minimum {low:g}")
    if high is not None and value > high:
        raise argparse.ArgumentTypeError(f"{text} is above the maximum {high:g}")


POSITIVE = int_in(1)  # counts: steps, batch, threads, repeats
THREADS = int_in(1, MAX_THREADS)
UNIT = float_in(0.0, 1.0)  # blends: strength


def add_listen(p: argparse.ArgumentParser, port: int) -> None:
    """--port, --host and --lan of a server (loopback unless --lan)."""
    p.add_argument("--port", type=int_in(0, 65535), default=port,
                   help=f"default {port}; 0: any free port")  # fmt: skip
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: local only)")
    p.add_argument("--lan", action="store_true",
                   help="allow a --host other computers can reach (and use)")  # fmt: skip
