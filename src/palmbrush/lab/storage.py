"""Where a sweep lives and how it survives a dead worker: Optuna storages and stale trials.

Storages: a journal file on one machine, an RDB (PostgreSQL) for many. A worker killed
mid-trial leaves a RUNNING trial that is failed and re-queued with the same choices: on an RDB
when its heartbeat stops (Optuna's own heartbeat), on a journal when a worker on the same host
finds its process gone (a journal has no heartbeat; each trial records its host and pid).
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from pathlib import Path

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from palmbrush.errors import PalmbrushError

HEARTBEAT = 60  # seconds between an RDB trial's heartbeats; stale after GRACE of them
GRACE = 3
MAX_RETRY = 3  # re-queues of one trial whose worker died
ORPHAN_AFTER = 600  # seconds: a RUNNING journal trial that never named its worker is dead
HOST = socket.gethostname()


def open_storage(url: str, heartbeat: int = HEARTBEAT, create: bool = True):
    """journal:PATH, sqlite:///PATH or postgresql://USER@HOST:PORT/DB; one line if it fails."""
    kind = url.split(":", 1)[0]
    if kind == "journal":
        return _journal(url[len("journal:") :], create)
    if kind.split("+")[0] in ("sqlite", "postgresql", "mysql"):
        return _rdb(url, heartbeat)
    raise PalmbrushError(f"--storage {url}: expected journal:PATH, sqlite:///PATH or "
                         "postgresql://USER@HOST:PORT/DB")  # fmt: skip


def _journal(name: str, create: bool):
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    path = Path(name)
    if not name or path.is_dir():
        raise PalmbrushError(f"--storage journal:{name}: give the journal's file name")
    if not create and not path.is_file():
        raise PalmbrushError(f"{path}: no such journal file (start a study with lab sweep)")
    _check_journal(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    except OSError as exc:
        raise PalmbrushError(f"{path}: cannot open the journal ({exc.strerror})") from None
    except (ValueError, KeyError, TypeError):  # a damaged journal that replays wrongly
        raise PalmbrushError(f"{path}: not an Optuna journal (damaged?)") from None


def _check_journal(path: Path) -> None:
    """An existing file is only appended to if it reads as an Optuna journal: every line a
    JSON object with an op_code (Optuna would otherwise write into a file it did not make)."""
    import json

    if not path.is_file() or path.stat().st_size == 0:
        return
    try:
        with open(path, "rb") as f:
            first = json.loads(f.readline())
    except (ValueError, OSError):
        first = None
    if not isinstance(first, dict) or "op_code" not in first:
        raise PalmbrushError(f"{path}: exists and is not an Optuna journal; give another file")


def _rdb(url: str, heartbeat: int):
    import importlib.util

    import sqlalchemy

    try:
        safe = sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except (ValueError, sqlalchemy.exc.ArgumentError):
        raise PalmbrushError(f"--storage: '{url.split('@')[-1]}' is not a database URL like "
                             "postgresql://USER@HOST:PORT/DB") from None  # fmt: skip
    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg2"):
        url = "postgresql+psycopg2://" + url[len("postgresql://") :]  # SQLAlchemy 2.1: psycopg
    connect = {"connect_args": {"connect_timeout": 10}} if url.startswith("postgresql") else {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url, engine_kwargs={"pool_pre_ping": True, **connect},
                heartbeat_interval=heartbeat, grace_period=GRACE * heartbeat,
                heartbeat_stale_trial_callback=requeue,
            )  # fmt: skip
    except (ImportError, ValueError, sqlalchemy.exc.SQLAlchemyError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise PalmbrushError(f"--storage {safe}: cannot open ({reason})") from None


def requeue(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Queue a dead worker's trial again with the same choices (its retry resumes there)."""
    history = [*trial.user_attrs.get("retry_history", []), trial.number]
    params = {**trial.system_attrs.get("fixed_params", {}), **trial.params}  # killed mid-suggest
    if len(history) <= MAX_RETRY:
        study.enqueue_trial(params, user_attrs={"retry_history": history})


def recover(study: optuna.Study, storage) -> None:
    """Fail and re-queue the RUNNING trials whose worker is dead (heartbeat or process gone)."""
    if isinstance(storage, optuna.storages.RDBStorage):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        return
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        reason = _orphaned(trial)
        if reason and _fail(storage, trial, reason):
            requeue(study, storage.get_trial(trial._trial_id))


def _orphaned(trial: optuna.trial.FrozenTrial) -> str | None:
    owner = trial.user_attrs.get("worker", {})
    if owner.get("trial") != trial.number:  # not yet named (or a predecessor's, copied)
        age = time.time() - trial.datetime_start.timestamp()
        return f"its worker never started it ({age:.0f} s)" if age > ORPHAN_AFTER else None
    if owner["host"] == HOST and not _alive(owner):
        return f"its worker (pid {owner['pid']} on {HOST}) died"
    return None


def worker_id() -> dict:
    """Who runs a trial: host, pid and the process's start time (a reused pid is not it)."""
    return {"host": HOST, "pid": os.getpid(), "started": process_start(os.getpid())}


def process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22); None
    if there is no such process, or no /proc to ask."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else fields[19]  # a zombie (killed, not reaped) is dead


def _alive(owner: dict) -> bool:
    pid = owner["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if not Path("/proc").is_dir():
        return True  # no way to tell a reused pid: assume the worker lives
    return process_start(pid) == owner.get("started", process_start(pid))


def _fail(storage, trial: optuna.trial.FrozenTrial, reason: str) -> bool:
    """Mark it FAIL with the reason; False if another worker finished it first."""
    try:
        storage.set_trial_user_attr(trial._trial_id, "error", reason)
        return storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    except UpdateFinishedTrialError:
        return False
