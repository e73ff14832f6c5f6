"""A small progress line: step, losses, steps/s and ETA (one line per update on a terminal)."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, start: int, total: int, log, every_s: float = 2.0):
        self.start, self.total, self.log = start, total, log
        self.t0 = time.perf_counter()
        self.last = 0.0
        self.every_s = every_s
        self.tty = sys.stderr.isatty()

    def update(self, step: int, **losses: float) -> None:
        now = time.perf_counter()
        if now - self.last < self.every_s and step != self.total:
            return
        self.last = now
        rate = (step - self.start) / max(now - self.t0, 1e-9)
        eta = (self.total - step) / rate if rate else 0
        parts = " ".join(f"{k} {v:.4g}" for k, v in losses.items())
        line = f"step {step}/{self.total} | {parts} | {rate:.2f} steps/s | ETA {_clock(eta)}"
        if self.tty:
            print("\r" + line, end="", file=sys.stderr, flush=True)
        else:
            self.log(line)

    def done(self) -> None:
        if self.tty:
            print(file=sys.stderr)
        elapsed = time.perf_counter() - self.t0
        self.log(f"{self.total - self.start} steps in {_clock(elapsed)}")


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
