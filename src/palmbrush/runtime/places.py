"""Where values live: host memory (NumPy arrays: the cpu, torch and reference engines) or an
engine's device memory (its PLACE, e.g. "torch:cuda" for the cuda engine); and, on the host,
in which layout (layout.py: the Mover converts a channels-last array for a planar kernel).

A value stays where the engine that computed it put it. Where a node of another place reads
it, the executor moves it first (a transfer: download to the host, upload to a device), once
per run and place however many nodes read it there; `profile` shows each transfer as its own
row and `plan` names the transfers a node's inputs need. Constants (weights, folded shape
arithmetic) are not transferred: device kernels upload them once and keep them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from . import layout

HOST = None  # the place of NumPy arrays


def place_of(engine: Any) -> str | None:
    return getattr(engine, "PLACE", HOST)


def label(place: str | None) -> str:
    return "host" if place is HOST else place


class Mover:
    """Transfers between places for one run: each value moved at most once per place."""

    def __init__(self, movers: dict[str, Any], buffer: Callable[[str], Any] | None = None):
        self.movers = movers  # device place -> engine with upload() and download()
        self.buffer = buffer  # value name -> the planned buffer of its planar copy, or None
        self.held: dict[str, str] = {}  # value name -> device place holding it (absent: host)
        self.copies: dict[tuple[str, str | None], Any] = {}  # (name, place) -> moved value
        self.log: list[tuple[str, str, str, float]] = []  # per move: value, op, route, ms

    def get(self, name: str, value, place: str | None, movable: bool, planar: bool = False):
        """`value` (named `name`) where a node of `place` reads it; with `planar`, a
        channels-last host array converted to planar first (layout.py)."""
        value = self._moved(name, value, place, movable)
        if planar and place is HOST and movable and layout.is_channels_last(value):
            key = (name, layout.PLANAR)
            if key not in self.copies:
                start = time.perf_counter()
                out = self.buffer(name) if self.buffer else None
                self.copies[key] = layout.to_planar(value, out)
                ms = (time.perf_counter() - start) * 1e3
                self.log.append((name, "Convert", f"{layout.CHANNELS_LAST} -> {layout.PLANAR}", ms))
            return self.copies[key]
        return value

    def _moved(self, name: str, value, place: str | None, movable: bool):
        have = self.held.get(name, HOST)
        if have == place or (place is not HOST and not movable):
            return value  # a constant: the device kernel uploads and keeps it
        key = (name, place)
        if key not in self.copies:
            if have is not HOST:  # its producer may still be computing: not the bus's time
                self.movers[have].synchronize()
            start = time.perf_counter()
            moved = value if have is HOST else self.movers[have].download(value)
            if place is not HOST:
                moved = self.movers[place].upload(moved)
                self.movers[place].synchronize()
            self.copies[key] = moved
            ms = (time.perf_counter() - start) * 1e3
            self.log.append((name, "Transfer", f"{label(have)} -> {label(place)}", ms))
        return self.copies[key]

    def stored(self, name: str, value, place: str | None) -> None:
        """The result `name` of a node of `place` is now held there (if it is not a NumPy array)."""
        if place is not HOST and not isinstance(value, np.ndarray):
            self.held[name] = place
        else:
            self.held.pop(name, None)

    def freed(self, name: str) -> None:
        self.held.pop(name, None)
        for key in [k for k in self.copies if k[0] == name]:
            del self.copies[key]

    def host(self, name: str, value):
        """`value` as a NumPy array, for the caller."""
        return self._moved(name, value, HOST, True)


def transfers(steps, places: dict[str, str | None], movable, folded=(), aliases=()):
    """Per step: the transfers its inputs need ("name: host -> torch:cuda") and the layout
    conversions ("name: channels-last -> planar", layout.py), as the executor will do them;
    `movable(name)` says whether a value is computed (constants never move). At an input
    size, the steps `folded` there run nothing, and `aliases` pass their input on where it is."""
    converted, _ = layout.conversions(steps, movable, folded, aliases)
    route = f"{layout.CHANNELS_LAST} -> {layout.PLANAR}"
    return [
        moves + [f"{name}: {route}" for name in names]
        for moves, names in zip(_transfers(steps, places, movable, folded, aliases), converted)
    ]


def _transfers(steps, places, movable, folded, aliases):
    held: dict[str, str | None] = {}
    done: set[tuple[str, str | None]] = set()
    found = []
    for index, step in enumerate(steps):
        place = places[step.engine]
        moves = []
        if index in folded or index in aliases:
            found.append(moves)
            if index in aliases:
                held[step.node.outputs[0]] = held.get(step.node.inputs[0], HOST)
            continue
        host = getattr(step.kernel, "host_inputs", ())
        for i, name in enumerate(step.node.inputs):
            where = HOST if i in host else place
            have = held.get(name, HOST)
            if not name or have == where or not movable(name) or (name, where) in done:
                continue
            if where is not HOST or have is not HOST:
                done.add((name, where))
                moves.append(f"{name}: {label(have)} -> {label(where)}")
        found.append(moves)
        for name in step.node.outputs:
            if name:
                held[name] = place
    return found
