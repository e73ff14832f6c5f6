"""A bounded pipeline: stages on their own threads, joined by small queues.

A source yields items; each later stage maps an item to the next one, on one or more worker
threads (order is kept: several workers stylize frames side by side and hand them on in
sequence); the last stage's results are dropped. Memory stays flat (each queue holds `depth`
items). The first failure anywhere stops every stage and is re-raised by `run()`, on the
caller's thread. Each stage times itself, busy apart from blocked: seconds in its own work,
waiting for input, waiting for room downstream (or for its turn, when workers keep order), and
the CPU seconds its threads used, so a slow stage is told apart from a starved one.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

POLL_S = 0.1  # how often a blocked stage looks at the stop event
END = object()  # after the last item


@dataclass
class StageTimes:
    busy: float = 0.0  # seconds in the stage's own work, all its workers together
    waiting_in: float = 0.0  # blocked: nothing to do yet
    waiting_out: float = 0.0  # blocked: no room downstream, or another worker's turn
    cpu: float = 0.0  # CPU seconds of its threads (time.thread_time)
    items: int = 0

    def add(self, other: StageTimes) -> None:
        for name in ("busy", "waiting_in", "waiting_out", "cpu", "items"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Stage:
    name: str
    work: Callable  # a source: () -> iterable of items; a later stage: item -> item
    workers: int = 1  # threads running `work` side by side (a source has one)
    times: StageTimes = field(default_factory=StageTimes)


class Stopped(Exception):
    """Raised inside a stage when the pipeline is stopping: the stage just ends."""


class Pipeline:
    """Stages run at once by `run()`; `stop()` (from any thread) ends them early."""

    def __init__(self, stages: list[Stage], depth: int = 4):
        if not stages or any(s.workers < 1 for s in stages) or stages[0].workers != 1:
            raise ValueError("a pipeline needs a source (one worker) and workers >= 1")
        self.stages, self.depth = stages, depth
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._lock = threading.Lock()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self, failure: BaseException | None = None) -> None:
        with self._lock:
            if failure is not None and self._failure is None:
                self._failure = failure
        self._stop.set()

    def run(self) -> dict[str, StageTimes]:
        """Run every stage to the end (or the first failure, re-raised here); the times by
        stage name."""
        queues = [queue.Queue(self.depth) for _ in self.stages[1:]]
        threads = [threading.Thread(target=self._guard, args=(self._source, queues[0] if queues
                                                              else None), name=self.stages[0].name,
                                    daemon=True)]  # fmt: skip
        for i, stage in enumerate(self.stages[1:]):
            out = queues[i + 1] if i + 1 < len(queues) else None
            threads += _Map(self, stage, queues[i], out).threads()
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                while thread.is_alive():
                    thread.join(POLL_S)
        except BaseException as exc:  # KeyboardInterrupt on the caller's thread
            self.stop(exc)
            _join_started(threads)
        if self._failure is not None:
            raise self._failure
        return {s.name: s.times for s in self.stages}

    def _guard(self, target: Callable, *args) -> None:
        try:
            target(*args)
        except Stopped:
            pass
        except BaseException as exc:  # handed to run(), on the caller's thread
            self.stop(exc)

    def _source(self, out: queue.Queue | None) -> None:
        stage = self.stages[0]
        times = stage.times
        items = iter(stage.work())
        while True:
            start, cpu = time.perf_counter(), time.thread_time()
            item = next(items, END)
            times.busy += time.perf_counter() - start
            times.cpu += time.thread_time() - cpu
            if item is END or self.stopping:
                break
            times.items += 1
            if out is not None:
                self.put(out, item, times)
        if out is not None:
            self.put(out, END, times)

    def put(self, q: queue.Queue, item, times: StageTimes) -> None:
        self._until(lambda: q.put(item, timeout=POLL_S), queue.Full, times, "waiting_out")

    def get(self, q: queue.Queue, times: StageTimes):
        return self._until(lambda: q.get(timeout=POLL_S), queue.Empty, times, "waiting_in")

    def _until(self, attempt: Callable, again: type, times: StageTimes, waiting: str):
        """attempt()'s result once it stops raising `again` (the queue is full, or empty), or
        Stopped when the pipeline stops first; the time it took is added to times.<waiting>."""
        start = time.perf_counter()
        try:
            while True:
                if self.stopping:
                    raise Stopped
                try:
                    return attempt()
                except again:
                    continue
        finally:
            setattr(times, waiting, getattr(times, waiting) + time.perf_counter() - start)


class _Map:
    """One later stage: its workers take items in turn; results wait in a reorder buffer and
    are handed on in the order taken. A worker never waits for a slower one to hand on (an
    item passed through at once does not hold a worker), and never runs more than `window`
    items ahead of the oldest one in progress, so memory stays bounded."""

    def __init__(self, pipeline: Pipeline, stage: Stage, inp: queue.Queue, out):
        self.pipeline, self.stage, self.inp, self.out = pipeline, stage, inp, out
        self.window = pipeline.depth + stage.workers
        self.taking = threading.Lock()  # a worker takes an item and its number together
        self.turn = threading.Condition()  # guards finished, next_out and flushing
        self.numbers = itertools.count()
        self.finished: dict[int, object] = {}  # number -> result, until handed on
        self.next_out = 0  # the number of the next item to hand on
        self.flushing = False  # a worker is handing results on
        self.done = False  # END was taken: the other workers stop taking

    def threads(self) -> list[threading.Thread]:
        return [threading.Thread(target=self.pipeline._guard, args=(self._work,),
                                 name=f"{self.stage.name}-{i}", daemon=True)
                for i in range(self.stage.workers)]  # fmt: skip

    def _work(self) -> None:
        more = True
        while more:
            times = StageTimes()  # this item's, added to the stage's as it ends: live totals
            try:
                more = self._step(times)
            finally:
                with self.pipeline._lock:
                    self.stage.times.add(times)

    def _step(self, times: StageTimes) -> bool:
        start = time.perf_counter()
        with self.taking:
            times.waiting_in += time.perf_counter() - start  # another worker is taking
            if self.done:
                return False
            number = next(self.numbers)
            self._wait_for_room(number, times)
            item = self.pipeline.get(self.inp, times)
            self.done = item is END
        if item is not END:
            start, cpu = time.perf_counter(), time.thread_time()
            item = self.stage.work(item)
            times.busy += time.perf_counter() - start
            times.cpu += time.thread_time() - cpu
            times.items += 1
        self._finish(number, item, times)
        return item is not END

    def _wait_for_room(self, number: int, times: StageTimes) -> None:
        start = time.perf_counter()
        with self.turn:
            while number - self.next_out >= self.window:
                if self.pipeline.stopping:
                    raise Stopped
                self.turn.wait(POLL_S)
        times.waiting_out += time.perf_counter() - start

    def _finish(self, number: int, item, times: StageTimes) -> None:
        """Put the result in the buffer; hand on every result that is next, unless another
        worker is doing so (it will take this one too)."""
        with self.turn:
            self.finished[number] = item
            if self.flushing:
                return
            self.flushing = True
        try:
            while True:
                with self.turn:
                    if self.next_out not in self.finished:
                        self.flushing = False
                        return
                    ready = self.finished.pop(self.next_out)
                if self.out is not None:
                    self.pipeline.put(self.out, ready, times)
                with self.turn:
                    self.next_out += 1
                    self.turn.notify_all()
        except BaseException:
            with self.turn:
                self.flushing = False
            raise


def _join_started(threads: list[threading.Thread], seconds: float = 10.0) -> None:
    """After run() itself was interrupted: wait (bounded) for the stages that started to see
    the stop and end; a second Ctrl-C does not cut the wait short, so the caller does not close
    files under stages still using them."""
    deadline = time.monotonic() + seconds
    for thread in threads:
        while thread.ident is not None and thread.is_alive() and time.monotonic() < deadline:
            try:
                thread.join(POLL_S)
            except KeyboardInterrupt:
                continue
