"""The default engines (runtime/measured.py): each node on the engine measured fastest for it,
measured once per machine and read back by every later Predictor; start-up costs charged."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import types

import numpy as np
import pytest
from conftest import SAMPLE, make_model
from onnx import TensorProto, helper

from palmbrush.runtime import autotune, load, measured

HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_NUMBA = importlib.util.find_spec("numba") is not None


def _model():
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Sigmoid", ["r"], ["y"], name="sigmoid"),
    ]
    io = [("x", TensorProto.FLOAT, [1, 2, "H", 4])], [("y", TensorProto.FLOAT, [1, 2, "H", 4])]
    return make_model(nodes, *io).SerializeToString()


class Engines:
    """Two engines that both run Relu: "slow" takes 20 ms of autotune's clock, "fast" 5 ms.
    "fast" may have a start-up cost (started()/start(), as the torch engine)."""

    def __init__(self, monkeypatch, startup_s=None):
        self.clock = [0.0]
        monkeypatch.setattr(autotune, "clock", lambda: self.clock[0])
        self.calls = {"slow": 0, "fast": 0, "start": 0}
        self.slow = self._engine("slow", 0.020)
        self.fast = self._engine("fast", 0.005)
        if startup_s is not None:
            self.fast.started = lambda: self.calls["start"] > 0
            self.fast.start = self._start
            self.fast.STARTUP_S = startup_s

    def _start(self):
        self.calls["start"] += 1

    def _engine(self, name, seconds):
        def relu(x):
            self.calls[name] += 1
            self.clock[0] += seconds
            return np.maximum(x, 0)

        return types.SimpleNamespace(NAME=name, KERNELS={"Relu": relu}, available=lambda: True)

    def load(self):
        return load(_model(), engines=[self.slow, self.fast], measure=True)


X = np.linspace(-1, 1, 24, dtype=np.float32).reshape(1, 2, 3, 4)


def test_the_first_run_at_a_size_measures_and_every_later_predictor_reads_the_times(
    monkeypatch, choices_file
):
    engines = Engines(monkeypatch)
    first = engines.load()
    assert {c.node: c.engine for c in first.plan}["relu"] == "slow"  # load time: preference order
    y = first.run({"x": X})["y"]
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-np.maximum(X, 0))), rtol=1e-6)
    relu = {c.node: c for c in first.plan_at({"x": X})}["relu"]
    assert relu.engine == "fast"
    assert relu.declined["slow"] == "measured: 20.000 ms vs 5.000 ms on fast"
    assert engines.calls == {"slow": 4, "fast": 4, "start": 0}  # one warm-up call, three trials
    saved = json.loads(choices_file.read_text())
    (entry,) = saved.values()
    assert list(entry["nodes"].values()) == [{"fast": 5.0, "slow": 20.0}]

    second = engines.load()  # another predictor (another process reads the same file)
    assert {c.node: c.engine for c in second.plan_at({"x": X})}["relu"] == "fast"  # before a run
    second.run({"x": X})
    assert engines.calls == {"slow": 4, "fast": 5, "start": 0}  # no timing: one run on fast

    second.run({"x": np.ones((1, 2, 5, 4), np.float32)})  # a new size is measured once
    assert engines.calls["slow"] == 8


def test_an_engine_that_costs_start_up_gets_nodes_only_when_it_saves_more_than_it_costs(
    monkeypatch, choices_file
):
    engines = Engines(monkeypatch, startup_s=10.0)
    engines.load().run({"x": X})  # measuring starts every candidate: "fast" wins
    assert engines.calls["start"] == 1
    (entry,) = json.loads(choices_file.read_text()).values()
    assert set(entry["startup"]) == {"fast"}  # the start-up time this process paid

    key = next(iter(json.loads(choices_file.read_text())))

    def startup(seconds):  # as a new process finds the file: "fast" not started there
        entry["startup"]["fast"] = seconds
        choices_file.write_text(json.dumps({key: entry}))
        engines.calls["start"] = 0

    startup(10.0)  # it saves 15 ms a run: x 100 runs = 1.5 s < 10 s
    later = engines.load()
    relu = {c.node: c for c in later.plan_at({"x": X})}["relu"]
    assert relu.engine == "slow"
    assert "less than its 10.0 s start-up over 100 runs" in relu.declined["fast"]
    later.run({"x": X})
    assert engines.calls["start"] == 0  # never started for a node it was not given

    startup(1.0)  # 1.5 s > 1 s: worth starting
    assert {c.node: c.engine for c in engines.load().plan_at({"x": X})}["relu"] == "fast"


def test_a_cache_that_cannot_be_written_is_a_warning_and_the_run_still_completes(
    monkeypatch, tmp_path, caplog
):
    blocked = tmp_path / "file"
    blocked.write_text("")  # a file where the cache folder should be
    monkeypatch.setattr(measured, "cache_dir", lambda: blocked / "palmbrush")
    engines = Engines(monkeypatch)
    with caplog.at_level("WARNING", logger="palmbrush.runtime"):
        y = engines.load().run({"x": X})["y"]
    assert y.shape == X.shape and "could not save measured engine choices" in caplog.text


def test_a_corrupt_cache_file_is_measured_again(monkeypatch, choices_file):
    choices_file.write_text("{not json")
    engines = Engines(monkeypatch)
    predictor = engines.load()
    predictor.run({"x": X})
    assert {c.node: c.engine for c in predictor.plan_at({"x": X})}["relu"] == "fast"
    assert json.loads(choices_file.read_text())  # rewritten whole


def test_the_machine_key_names_the_threads_engines_and_their_code(monkeypatch):
    from palmbrush.runtime import registry

    engines = registry.resolve("cpu")
    assert measured.machine_key(engines, 1) != measured.machine_key(engines, 2)
    assert measured.machine_key(engines, 2) != measured.machine_key(registry.resolve(None), 2)
    assert measured.machine_key(engines, 2) == measured.machine_key(engines, 2)
    before = measured.machine_key(engines, 2)
    monkeypatch.setattr(measured, "_CODE", [])
    assert measured.machine_key(engines, 2) == before  # the same source hashes the same
    monkeypatch.setattr(measured, "_CODE", ["edited-kernels"])  # another engines/ source
    assert measured.machine_key(engines, 2) != before


@pytest.mark.skipif(not (HAS_TORCH and HAS_NUMBA), reason="needs the cpu and torch engines")
def test_real_engines_by_default_measure_once_and_stay_within_a_level_of_the_reference(
    monkeypatch, choices_file
):
    monkeypatch.setenv("PALMBRUSH_MEASURE", "1")
    frame = np.random.default_rng(5).integers(0, 256, (1, 40, 48, 3), dtype=np.uint8)
    predictor = load(SAMPLE)
    ours = predictor.run({"frame": frame})["stylized"]
    reference = load(SAMPLE, engines="reference").run({"frame": frame})["stylized"]
    assert np.abs(ours.astype(int) - reference).max() <= 1
    plan = predictor.plan_at({"frame": frame})
    timed = [c for c in plan if any(v.startswith("measured:") for v in c.declined.values())]
    assert timed and all(c.engine in ("cpu", "torch") for c in timed)
    records = next(iter(json.loads(choices_file.read_text()).values()))["nodes"]
    assert records

    def never(*args, **kwargs):
        raise AssertionError("a later predictor timed a node the cache has")

    monkeypatch.setattr(autotune, "pick", never)
    again = load(SAMPLE)
    np.testing.assert_array_equal(again.run({"frame": frame})["stylized"], ours)
    assert [c.engine for c in again.plan_at({"frame": frame})] == [c.engine for c in plan]


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed")
def test_the_torch_engine_applies_threads_asked_for_before_pytorch_is_imported():
    code = (
        "import sys\n"
        "from palmbrush.runtime.engines import torch as engine\n"
        "engine.set_threads(1)\n"
        "assert not engine.started() and 'torch' not in sys.modules\n"
        "engine.start()\n"
        "import torch\n"
        "print(engine.started(), torch.get_num_threads())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "1"]


@pytest.fixture
def choices_file(monkeypatch, tmp_path):
    monkeypatch.setattr(measured, "cache_dir", lambda: tmp_path)
    return tmp_path / measured.FILE


def test_a_preference_decides_a_node_without_measuring_it(monkeypatch, choices_file):
    from palmbrush.runtime import registry

    engines = Engines(monkeypatch)
    rule = registry.Preference(("Relu",), "slow", lambda ctx: True, "a test's preference")
    monkeypatch.setattr(registry, "PREFERENCES", [rule])
    predictor = engines.load()  # "slow" is first in the order already: the rule still decides
    predictor.run({"x": X})
    assert engines.calls == {"slow": 1, "fast": 0, "start": 0}
    assert {c.node: c.engine for c in predictor.plan_at({"x": X})}["relu"] == "slow"


def test_a_cache_file_of_another_shape_is_measured_again(monkeypatch, choices_file):
    engines = Engines(monkeypatch)
    key = measured.machine_key([engines.slow, engines.fast, load(_model()).engines[-1]], None)
    choices_file.write_text(json.dumps({key: {"nodes": [1, 2], "startup": "x"}}))
    predictor = engines.load()
    predictor.run({"x": X})
    assert {c.node: c.engine for c in predictor.plan_at({"x": X})}["relu"] == "fast"
    saved = json.loads(choices_file.read_text())[key]
    assert len(saved["nodes"]) == 1 and isinstance(saved["startup"], dict)  # repaired, saved


_SAVE_ONE = """
import sys
from pathlib import Path
from palmbrush.runtime import measured
choices = measured.Choices("k", Path(sys.argv[1]))
choices.records["from-the-other-process"] = measured.Record({"cpu": 1.0})
print("saving", flush=True)
choices.save()
"""


@pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")
def test_a_save_waits_for_another_process_and_keeps_its_records(tmp_path):
    import fcntl

    path = tmp_path / measured.FILE
    mine = measured.Choices("k", path)
    with open(path.with_name(path.name + ".lock"), "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another process mid-save
        other = subprocess.Popen([sys.executable, "-c", _SAVE_ONE, str(path)],
                                 stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert other.stdout.readline().strip() == "saving"  # imported: the save has begun
        with pytest.raises(subprocess.TimeoutExpired):
            other.wait(timeout=1.0)  # it waits for the lock
        assert not path.exists()
        fcntl.flock(held, fcntl.LOCK_UN)
    assert other.wait(timeout=60) == 0
    other.stdout.close()
    mine.records["from-this-process"] = measured.Record({"torch": 2.0})
    mine.save()  # read before the other saved: merges, does not overwrite
    nodes = json.loads(path.read_text())["k"]["nodes"]
    assert nodes == {"from-the-other-process": {"cpu": 1.0}, "from-this-process": {"torch": 2.0}}


def test_the_file_keeps_the_keys_saved_last_and_each_keys_newest_records(monkeypatch, tmp_path):
    monkeypatch.setattr(measured, "MAX_KEYS", 3)
    monkeypatch.setattr(measured, "MAX_RECORDS", 4)
    path = tmp_path / measured.FILE
    for key in "abcde":
        choices = measured.Choices(key, path)
        choices.records = {f"{key}{i}": measured.Record({"cpu": float(i)}) for i in range(3)}
        choices.save()
    assert list(json.loads(path.read_text())) == ["c", "d", "e"]
    again = measured.Choices("c", path)  # saved again: the newest now; its old records stay
    again.records = {f"new{i}": measured.Record({"cpu": 0.5}) for i in range(2)}
    again.save()
    data = json.loads(path.read_text())
    assert list(data) == ["d", "e", "c"]
    assert list(data["c"]["nodes"]) == ["c1", "c2", "new0", "new1"]  # the oldest went first
