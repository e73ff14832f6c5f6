"""The bounded pipeline (media/pipeline.py) with fake stages: order, failures, bounds, timers."""

from __future__ import annotations

import itertools
import random
import threading
import time

import pytest

from palmbrush.media.pipeline import Pipeline, Stage


def _collect(into: list):
    def sink(item):
        into.append(item)

    return sink


def test_workers_side_by_side_hand_items_on_in_order():
    """Three workers with random delays: every item arrives once, in the source's order, and
    the workers did run at once (a barrier of three would time out otherwise)."""
    rng = random.Random(0)
    delays = [rng.uniform(0, 0.01) for _ in range(60)]
    barrier = threading.Barrier(3, timeout=5)
    out = []

    def work(i):
        if i < 3:
            barrier.wait()  # all three workers hold an item at the same time
        time.sleep(delays[i])
        return i * 10

    stages = [Stage("source", lambda: range(60)), Stage("work", work, 3),
              Stage("sink", _collect(out))]  # fmt: skip
    times = Pipeline(stages, depth=2).run()
    assert out == [i * 10 for i in range(60)]
    assert times["work"].items == 60 and times["source"].items == 60
    assert times["sink"].items == 60


def test_a_pass_through_item_does_not_hold_a_worker_behind_a_slow_one():
    """Item 0 is slow; items 1.. are instant. Another worker keeps taking items meanwhile
    (up to the window), instead of waiting to hand item 1 on."""
    started = []
    release = threading.Event()

    def work(i):
        started.append(i)
        if i == 0:
            assert release.wait(5)
        return i

    out = []
    pipeline = Pipeline([Stage("source", lambda: range(20)), Stage("work", work, 2),
                         Stage("sink", _collect(out))], depth=2)  # fmt: skip
    thread = threading.Thread(target=pipeline.run)
    thread.start()
    deadline = time.time() + 5
    while len(started) < 4 and time.time() < deadline:
        time.sleep(0.01)
    assert len(started) == 4 and out == []  # window: depth 2 + 2 workers; nothing handed on
    release.set()
    thread.join(5)
    assert out == list(range(20))


def test_the_first_failure_stops_every_stage_and_is_raised():
    """An endless source, a stage that fails at item 5: run() raises that error, soon."""

    def work(i):
        if i == 5:
            raise ValueError("item 5 is bad")
        return i

    stages = [Stage("source", itertools.count), Stage("work", work, 2), Stage("sink", id)]
    start = time.perf_counter()
    with pytest.raises(ValueError, match="item 5 is bad"):
        Pipeline(stages).run()
    assert time.perf_counter() - start < 5


def test_a_failing_source_and_a_failing_sink_are_raised_too():
    def broken():
        yield 1
        raise OSError("the disk went away")

    with pytest.raises(OSError, match="disk went away"):
        Pipeline([Stage("source", broken), Stage("sink", id)]).run()

    def full(item):
        raise RuntimeError("no room")

    with pytest.raises(RuntimeError, match="no room"):
        Pipeline([Stage("source", itertools.count), Stage("sink", full)]).run()


def test_memory_stays_bounded_when_the_sink_is_slow():
    """The source never runs more than the queues and the window ahead of the sink, even when
    the first item is slow, so every later one waits in the reorder buffer behind it."""
    made, out = [], []

    def source():
        for i in range(40):
            made.append(i)
            yield i

    def work(i):
        if i == 0:
            time.sleep(0.2)  # the others finish meanwhile and are held back for order
        return i

    def sink(item):
        out.append(item)
        ahead.append(len(made) - len(out))
        time.sleep(0.002)

    ahead = []
    Pipeline([Stage("source", source), Stage("work", work, 2), Stage("sink", sink)],
             depth=2).run()  # fmt: skip
    # two queues of 2, a window of 2 + 2 in the workers, one item in each thread's hands
    assert out == list(range(40)) and max(ahead) <= 2 + 2 + 4 + 3
    assert max(ahead) >= 4  # the slow first item really did hold the others back


def test_busy_and_blocked_times_tell_the_slow_stage_from_the_starved_one():
    def slow(i):
        time.sleep(0.01)
        return i

    times = Pipeline([Stage("source", lambda: range(20)), Stage("slow", slow),
                      Stage("sink", lambda i: None)], depth=1).run()  # fmt: skip
    slow_t, sink_t, source_t = times["slow"], times["sink"], times["source"]
    assert slow_t.busy >= 0.19 and slow_t.busy > slow_t.waiting_in  # it sets the pace
    assert sink_t.waiting_in > 10 * sink_t.busy  # starved: waits for the slow stage
    assert source_t.waiting_out > 10 * source_t.busy  # held back by the bound
    assert slow_t.cpu < slow_t.busy / 2  # sleeping is busy wall time, not CPU time


def test_stop_from_another_thread_ends_an_endless_pipeline():
    pipeline = Pipeline([Stage("source", itertools.count), Stage("sink", lambda i: None)])
    timer = threading.Timer(0.2, pipeline.stop)
    timer.start()
    start = time.perf_counter()
    times = pipeline.run()
    assert time.perf_counter() - start < 5 and times["sink"].items > 0


def test_a_pipeline_needs_a_source_of_one_worker():
    with pytest.raises(ValueError):
        Pipeline([])
    with pytest.raises(ValueError):
        Pipeline([Stage("source", lambda: [], workers=2)])
