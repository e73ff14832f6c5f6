"""The default engines: each node on the engine measured fastest for it, once per machine.

With no engine flags a Predictor runs every node that more than one engine accepts on the one
that was fastest for that node's op, attributes and input shapes on this machine. The first
run at a size on a fresh machine times the candidates on the real inputs (autotune.pick) and
writes the times to `<cache>/engine-choices.json`, under a key naming the CPU, the thread
count, the engines' versions and a hash of their source; every later Predictor in any
process reads them when it plans that size, so the measuring is paid once per machine. A
per-op preference of the registry (PREFERENCES) that applies to a node decides it without
measuring.

An engine that costs time to start (torch: importing PyTorch, ~3.5 s on a 2-core machine) is
charged for it: in a process where it has not started, it gets the nodes it wins only if what
it saves per run, over AMORTIZE_RUNS runs, exceeds its measured start-up time; otherwise the
next fastest engine runs them and the plan says why. (A photo is one run; a clip is hundreds.)
PALMBRUSH_MEASURE=0 turns measuring off (the registry's preference order decides).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import threading
import time
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from ..atomic import atomic_path
from ..cache import cache_dir
from ..errors import PalmbrushError
from . import registry
from .plan import Step

AMORTIZE_RUNS = 100  # runs an engine's start-up time is spread over (a few seconds of video)
FILE = "engine-choices.json"
MAX_KEYS = 8  # machine keys kept in the file (thread counts, precisions, versions), last saved
MAX_RECORDS = 4096  # node records per key (a model's nodes at each size), newest kept
VERSION = 2  # of the records' format and meaning; bump to measure everything again
log = logging.getLogger("palmbrush.runtime")
_lock = threading.Lock()


def enabled() -> bool:
    return os.environ.get("PALMBRUSH_MEASURE", "1").strip().lower() not in ("0", "false", "no")


@dataclass(frozen=True)
class Record:
    """One node's measured times: engine -> best of the trials, in milliseconds."""

    ms: dict[str, float]

    @classmethod
    def of(cls, times: dict[str, float]) -> Record:
        return cls({name: round(ms, 4) for name, ms in times.items()})

    def best(self, among: list[str]) -> str | None:
        timed = [name for name in among if name in self.ms]
        return min(timed, key=self.ms.__getitem__) if timed else None


def node_key(step: Step, values: dict, engines: list[str]) -> str:
    """What a node's time depends on: op, attributes, input shapes and dtypes, the candidates."""
    inputs = [
        None if not name else [list(values[name].shape), values[name].dtype.str]
        for name in step.node.inputs
    ]
    attrs = sorted((k, repr(v)) for k, v in step.attrs.items())
    text = json.dumps([step.node.op, attrs, inputs, sorted(engines)])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def machine_key(engines: list[Any], threads: int | None, precision: str = "fp32") -> str:
    """The CPU, the thread count, the precision and every engine's version: times measured
    under another key say nothing about this one."""
    parts = [platform.machine(), _cpu(), str(threads or os.cpu_count()), precision, f"v{VERSION}"]
    for dist in ("palmbrush", "numba", "torch"):
        try:
            parts.append(f"{dist}={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{dist}=none")
    parts.append(f"code={_engines_code()}")
    parts += sorted(registry.engine_name(e) for e in engines)
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


_CODE: list[str] = []


def _engines_code() -> str:
    """A hash of the engines' source (engines/ and its packages): a kernel changed between
    two installs of one version (a development checkout, a patched install) is measured again."""
    if not _CODE:
        folder = Path(__file__).parent / "engines"
        digest = hashlib.sha256()
        for path in sorted(folder.rglob("*.py")):
            digest.update(path.relative_to(folder).as_posix().encode())
            digest.update(path.read_bytes())
        _CODE.append(digest.hexdigest()[:12])
    return _CODE[0]


def _cpu() -> str:
    """The CPU's model and feature flags (the ISA decides which engine is faster)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    first = text.split("\n\n", 1)[0]  # the first processor's block
    fields = dict(
        (k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in first.splitlines())
    )
    return f"{fields.get('model name', '')};{fields.get('flags', '')}"


class Choices:
    """The measured times of one machine key, read from and written to the cache file."""

    def __init__(self, key: str, path: Path | None = None):
        self.key = key
        self.path = path or cache_dir() / FILE
        self.records: dict[str, Record]
        self.startup: dict[str, float]  # engine -> seconds its start() took here
        try:  # a file of another shape is measured again, like a missing one
            entry = self._read().get(key, {})
            self.records = {k: Record({n: float(t) for n, t in v.items()})
                            for k, v in entry.get("nodes", {}).items()}  # fmt: skip
            self.startup = {n: float(t) for n, t in entry.get("startup", {}).items()}
        except (AttributeError, TypeError, ValueError):
            self.records, self.startup = {}, {}
        self._loaded = {k: r.ms for k, r in self.records.items()}  # as the file had them

    def _read(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def save(self) -> None:
        """Merge into the file under a lock shared with other processes (they may have
        written other nodes meanwhile), keeping the MAX_KEYS machine keys saved last and
        each key's MAX_RECORDS newest records (this process's new ones newest); a cache that
        cannot be written only means measuring again next time."""
        with _lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with _file_lock(self.path.with_name(self.path.name + ".lock")):
                    self._merge_into_file()
            except (OSError, PalmbrushError) as exc:
                log.warning("could not save measured engine choices to %s: %s", self.path, exc)

    def _merge_into_file(self) -> None:
        data = self._read()
        entry = data.pop(self.key, None)
        entry = entry if isinstance(entry, dict) else {}
        nodes, startup = (entry.get(part) for part in ("nodes", "startup"))
        nodes = nodes if isinstance(nodes, dict) else {}
        for key, record in self.records.items():  # what this process measured goes last
            if self._loaded.get(key) != record.ms or key not in nodes:
                nodes.pop(key, None)
                nodes[key] = record.ms
        startup = {**(startup if isinstance(startup, dict) else {}), **self.startup}
        data[self.key] = {"nodes": dict(list(nodes.items())[-MAX_RECORDS:]), "startup": startup}
        data = dict(list(data.items())[-MAX_KEYS:])  # this key was saved last
        with atomic_path(self.path) as tmp, open(tmp, "w") as f:
            json.dump(data, f)
        self._loaded = {k: r.ms for k, r in self.records.items()}


LOCK_WAIT_S = 10.0  # then save without the lock (a stopped process may be holding it)


@contextlib.contextmanager
def _file_lock(path: Path):
    """An exclusive advisory lock on `path` across processes (POSIX flock), waited for at
    most LOCK_WAIT_S. Where there is no flock (Windows, a file system without locks) or the
    wait runs out, the save goes ahead unlocked: a concurrent save may then lose records,
    which are measured again."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path, "a") as handle:
        deadline = time.monotonic() + LOCK_WAIT_S
        locked = False
        while not locked:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
            except BlockingIOError:
                if time.monotonic() > deadline:
                    log.warning("%s stayed locked %.0f s: saving without it", path, LOCK_WAIT_S)
                    break
                time.sleep(0.05)
            except OSError as exc:  # ENOLCK, EOPNOTSUPP: no locks on this file system
                log.warning("cannot lock %s (%s): saving without it", path, exc)
                break
        try:
            yield
        finally:
            if locked:
                fcntl.flock(handle, fcntl.LOCK_UN)


def start(engine, choices: Choices) -> None:
    """Start an engine before timing it (so its start-up is not charged to a node), timing
    the start-up where this process pays it."""
    started = getattr(engine, "started", None)
    if started is None or started():
        return
    begin = time.perf_counter()
    engine.start()
    choices.startup[registry.engine_name(engine)] = time.perf_counter() - begin


def decide(
    steps: list[Step], keys: list[str | None], choices: Choices, engines: list[Any],
    candidates: list[list[tuple[str, Any]]],
) -> list[Step] | None:  # fmt: skip
    """The steps the cached times choose, or None if a node that needs measuring has no
    record yet. keys[i] is None for a node with one candidate (nothing to choose)."""
    records = [None if key is None else choices.records.get(key) for key in keys]
    if any(key is not None and record is None for key, record in zip(keys, records)):
        return None
    excluded = _not_worth_starting(records, candidates, choices, engines)
    chosen = []
    for step, record, able in zip(steps, records, candidates):
        if record is None:
            chosen.append(step)
            continue
        names = [name for name, _ in able if name not in excluded] or [n for n, _ in able]
        best = record.best(names) or names[0]
        kernel = dict(able)[best]
        declined = {k: v for k, v in step.declined.items() if k not in dict(able)}
        for name, _ in able:
            if name == best:
                continue
            if name in excluded and record.best([n for n, _ in able]) == name:
                declined[name] = excluded[name]
            elif name in record.ms:
                declined[name] = (
                    f"measured: {record.ms[name]:.3f} ms vs {record.ms[best]:.3f} ms on {best}"
                )
        chosen.append(replace(step, kernel=kernel, engine=best, declined=declined))
    return chosen


def _not_worth_starting(records, candidates, choices: Choices, engines) -> dict[str, str]:
    """Engines not started in this process whose start-up costs more than they save over
    AMORTIZE_RUNS runs: engine -> why."""
    out = {}
    for engine in engines:
        name = registry.engine_name(engine)
        started = getattr(engine, "started", None)
        if started is None or started():
            continue
        saved_ms = 0.0
        for record, able in zip(records, candidates):
            names = [n for n, _ in able]
            if record is None or record.best(names) != name:
                continue
            rest = record.best([n for n in names if n != name])
            if rest is not None:
                saved_ms += record.ms[rest] - record.ms[name]
        cost_s = choices.startup.get(name, getattr(engine, "STARTUP_S", 0.0))
        if saved_ms and saved_ms * AMORTIZE_RUNS < cost_s * 1e3:
            out[name] = (
                f"measured faster, but saves {saved_ms:.2f} ms a run, less than its "
                f"{cost_s:.1f} s start-up over {AMORTIZE_RUNS} runs"
            )
    return out
