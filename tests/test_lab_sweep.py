"""palmbrush lab sweep / worker / report: the space, journal and PostgreSQL studies, workers
killed mid-trial, CLI mistakes, the report. Tiny trials: 32-px crops, batch 1, a few steps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
optuna = pytest.importorskip("optuna")
pytest.importorskip("onnxruntime")  # the metrics time it beside palmbrush
pytest.importorskip("matplotlib")
from conftest import REPO, run_cli  # noqa: E402
from optuna.trial import FixedTrial, TrialState  # noqa: E402
from PIL import Image  # noqa: E402

from palmbrush.lab import report, space, sweep  # noqa: E402
from palmbrush.lab.storage import open_storage  # noqa: E402
from palmbrush.models import PRESETS, StyleNet  # noqa: E402
from palmbrush.models.loss_nets import squeezenet  # noqa: E402
from palmbrush.runtime import load  # noqa: E402
from palmbrush.train.export import export_net, metadata  # noqa: E402

POSTGRES = os.environ.get("PALMBRUSH_TEST_POSTGRES")
needs_postgres = pytest.mark.skipif(
    not POSTGRES, reason="set PALMBRUSH_TEST_POSTGRES to a PostgreSQL URL (scripts/pg-local)"
)
SAMPLES = REPO / "src/palmbrush/samples"
HEARTBEAT = 5  # seconds; a trial is stale after 3 missed: long enough for a loaded machine
TINY = ["--size", "32", "--batch", "1", "--workers", "0", "--repeat", "1", "--threads", "1"]


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """Workers started here train on one thread: two of them on two cores, not four threads."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, str]:
    """Ten synthetic photos, a striped painting, seeded random SqueezeNet weights."""
    root = tmp_path_factory.mktemp("lab")
    rng = np.random.default_rng(0)
    (root / "content").mkdir()
    for i in range(10):
        yy, xx = np.mgrid[0:80, 0:96] / 96
        photo = np.stack([yy, xx, 1 - yy], -1) * rng.uniform(0.3, 1, 3)
        Image.fromarray((photo * 255).astype(np.uint8)).save(root / "content" / f"p{i}.png")
    stripes = np.zeros((64, 64, 3), np.uint8)
    stripes[:, ::8], stripes[::8] = (250, 200, 40), (30, 60, 200)
    Image.fromarray(stripes).save(root / "painting.png")
    torch.manual_seed(0)
    state = {f"features.{k}": torch.randn_like(v) * 0.1
             for k, v in squeezenet().features.state_dict().items()}  # fmt: skip
    torch.save(state, root / "squeezenet.pth")
    return root, f"squeezenet:{root / 'squeezenet.pth'}"


def _fixed(data, out: Path, steps: int = 2) -> space.Fixed:
    root, loss_net = data
    photos = tuple(sweep.held_aside(root / "content"))
    return space.Fixed(painting=str(root / "painting.png"), content=str(root / "content"),
                       photos=photos, out=str(out), size=32, batch=1, steps=steps,
                       loss_net=loss_net, workers=0, threads=1, repeat=1)  # fmt: skip


def _study(data, out: Path, url: str, target: int, steps: int = 2, extra: int = 0):
    """A study made as lab sweep makes it (the baseline queued first), plus `extra` queued
    fast trials; returns (study, storage, name)."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    storage = open_storage(url, heartbeat=HEARTBEAT)
    study = sweep.start_study(name, storage, _fixed(data, out, steps), target)
    for i in range(extra):
        study.enqueue_trial({**space.BASELINE, "style_weight": 1.0 + i, "steps": 0.25})
    return study, storage, name


def _worker(url: str, name: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "palmbrush.cli.main", "lab", "worker", "--study", name,
         "--storage", url, "--heartbeat", str(HEARTBEAT), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _wait(predicate, timeout: float = 120, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _running(study, pid: int | None = None):
    """A RUNNING trial that has named its worker (that worker, when pid is given)."""
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = t.user_attrs.get("worker", {})
        if owner.get("trial") == t.number and pid in (None, owner["pid"]):
            return t
    return None


def _training(study, out: Path, worker: subprocess.Popen):
    """The worker's trial once it has written a checkpoint (True if the worker ended)."""
    trial = _running(study, worker.pid)
    if trial and (out / f"trial-{trial.number:04d}" / "model.ckpt").is_file():
        return trial
    return worker.poll() is not None


def _one_line_error(result, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert all(w in lines[0] for w in words), lines[0]


# --- the space ------------------------------------------------------------------------------


def test_every_sampled_choice_builds_and_exports(tmp_path, data):
    """Random points and the corners of the space: each builds, runs at the contract's odd
    sizes and exports to a model palmbrush's runtime runs."""
    fixed = _fixed(data, tmp_path)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trials = [study.ask() for _ in range(10)]
    low = {"levels": 2, "width": 6, "growth": 1.0, "blocks": 1, "first_stride": 1}
    high = {"levels": 3, "width": 16, "growth": 2.0, "blocks": 4, "first_stride": 2}
    corners = [FixedTrial({**space.BASELINE, **low, "first_kernel": 3, "last_kernel": 3}),
               FixedTrial({**space.BASELINE, **high, "up": "shuffle", "down": "pool",
                           "last_up": "layer", "first_kernel": 9, "last_kernel": 9})]  # fmt: skip
    for i, trial in enumerate([*trials, *corners]):
        s = space.train_settings(trial, fixed, tmp_path / f"t{i}")
        torch.manual_seed(i)
        net = StyleNet(s.network_config()).eval()
        assert net(torch.rand(1, 3, 32, 32)).shape == (1, 3, 32, 32), space.summary(s)
        if i % 3 == 0 or i >= len(trials):  # a few random points, and both corners
            export_net(net, s.out, metadata(s.preset, s.resolved().to_dict()))
            frame = np.zeros((1, 33, 41, 3), np.uint8)
            assert load(s.out).run({"frame": frame})["stylized"].shape == frame.shape


def test_baseline_is_the_shipped_default(tmp_path, data):
    fixed = space.Fixed(painting="p", content="c", photos=(), out=str(tmp_path))
    s = space.train_settings(FixedTrial(space.BASELINE), fixed, tmp_path)
    assert s.network_config() == PRESETS[space.TRAINING.preset]
    for name in ("content_weight", "style_weight", "tv_weight", "temporal_weight", "style_size",
                 "steps", "size", "batch"):  # fmt: skip
        assert getattr(s, name) == getattr(space.TRAINING, name), name


def test_planned_trials_change_the_baseline_and_typos_are_refused():
    assert space.planned([{"skip": True}]) == [{**space.BASELINE, "skip": True}]
    for entries, words in [({"skip": True}, "JSON list"), ([{"skpi": True}], "'skpi'"),
                           ([{"width": [8]}], "numbers, strings"),
                           ([{"temporal_weight": 500.0}], "500"), ([{"up": "nerest"}], "nerest")
                           ]:  # fmt: skip
        with pytest.raises(sweep.PalmbrushError, match=words):
            space.planned(entries)


def test_fixed_settings_name_their_difference(tmp_path, data):
    a = _fixed(data, tmp_path)
    assert a.difference(space.Fixed.from_dict(a.to_dict())) is None
    assert a.difference(_fixed(data, tmp_path, steps=3)) == "steps: 2 there, 3 here"


def test_pareto_ranks():
    points = [(10, 1.0, 1.0), (5, 0.5, 1.0), (5, 1.0, 1.0), (1, 2.0, 2.0), (10, 1.0, 1.0)]
    ranks = report.pareto_ranks(points, ["maximize", "minimize", "minimize"])
    assert ranks == [0, 0, 1, 2, 0]


# --- journal sweeps -------------------------------------------------------------------------


def test_sweep_continues_refuses_other_settings_and_reports(data, tmp_path):
    """`lab sweep` for one trial (the baseline), again for two (it continues the study with a
    trial its sampler chose), once more with other settings (refused); then `lab report`.
    One test, so that xdist's two processes do not each run the sweep."""
    root, loss_net = data
    out = tmp_path / "out"
    args = ["lab", "sweep", "--style", str(root / "painting.png"), "--content",
            str(root / "content"), "--study", "s", "--out", str(out), "--loss-net", loss_net,
            *TINY]  # fmt: skip
    plan = tmp_path / "plan.json"
    plan.write_text('[{"skip": true, "tv_weight": 3.0}]')
    first = run_cli(*args, "--steps", "2", "--trials", "1", "--enqueue", str(plan), timeout=300)
    assert first.returncode == 0, first.stderr
    assert "trial 0 started: w8-16 b2 /4 conv nearest head k5/3" in first.stdout  # baseline
    assert "trial 0 done in" in first.stdout and "Pareto front" in first.stdout
    second = run_cli(*args, "--steps", "2", "--trials", "2", "--enqueue", str(plan), timeout=300)
    assert second.returncode == 0, second.stderr
    assert "1 of 2 trials complete" in second.stdout and "trial 1 done in" in second.stdout
    assert "trial 1 started: w8-16 b2 /4 conv nearest head k5/3 skip | c1 s1.5 tv3" in second.stdout
    assert (
        len(
            optuna.load_study(
                study_name="s", storage=open_storage(f"journal:{out}/study.log")
            ).get_trials()
        )
        == 2
    )  # the plan, given twice, queued once
    _check_records(out, open_storage(f"journal:{out}/study.log"))
    changed = run_cli(*args, "--steps", "3", "--trials", "3")
    _one_line_error(changed, "study 's'", "steps: 2 there, 3 here")
    _check_report(f"journal:{out}/study.log", tmp_path / "report")


def _check_records(out: Path, storage) -> None:
    study = optuna.load_study(study_name="s", storage=storage)
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert [t.number for t in done] == [0, 1]
    for t in done:
        record = t.user_attrs["record"]
        assert record["model"] == f"trial-000{t.number}/model.onnx"
        assert (out / record["model"]).is_file()
        assert t.values == [record["metrics"][k] for k in space.OBJECTIVES]
        assert {"stability", "fps_640x480", "bytes", "parameters"} <= set(record["metrics"])
    assert study.user_attrs["trials"] == 2 and study.user_attrs["sweep"]["steps"] == 2


def _check_report(url: str, folder: Path) -> None:
    command = ["lab", "report", "--study", "s", "--storage", url, "-o", str(folder)]
    result = run_cli(*command, "--threads", "1", timeout=300)
    assert result.returncode == 0, result.stderr
    page = (folder / "index.html").read_text()
    for name in ("content_error.png", "style_error.png", "trial-0000.jpg", "trial-0001.jpg"):
        assert (folder / name).stat().st_size > 1000, name
        assert f'src="{name}"' in page
    assert page.count('<tr class="') == 2
    _one_line_error(run_cli(*command), "exists", "--overwrite")
    samples = [str(SAMPLES / "bunny.jpg"), str(SAMPLES / "bunny.mp4")]
    again = run_cli(*command, "--overwrite", "--threads", "1", "--photos", *samples, timeout=300)
    assert again.returncode == 0, again.stderr
    photos = Image.open(folder / "photos.jpg")
    assert photos.width > 3 * report.TILE  # the photo and three frames in a row


def test_journal_worker_killed_mid_trial_is_requeued_and_resumed(data, tmp_path):
    """SIGKILL mid-training: the trial stays RUNNING with no model; the next worker on this
    host fails it (its pid is gone), queues it again and the retry resumes its checkpoint."""
    out = tmp_path / "out"
    url = f"journal:{tmp_path / 'study.log'}"
    study, _, name = _study(data, out, url, target=1, steps=200)
    worker = _worker(url, name)
    ckpt = out / "trial-0000" / "model.ckpt"
    _wait(lambda: ckpt.is_file() or worker.poll() is not None, what="a checkpoint")
    worker.send_signal(signal.SIGKILL)
    worker.communicate()
    assert study.get_trials()[0].state == TrialState.RUNNING
    assert not (out / "trial-0000" / "model.onnx").exists()
    result = run_cli("lab", "worker", "--study", name, "--storage", url, timeout=300)
    assert result.returncode == 0, result.stderr
    killed, retry = study.get_trials()
    assert killed.state == TrialState.FAIL and f"pid {worker.pid}" in killed.user_attrs["error"]
    assert retry.state == TrialState.COMPLETE and retry.params == killed.params
    assert retry.user_attrs["retry_history"] == [0]
    assert retry.user_attrs["record"]["train"]["resumed_from"] == "trial-0000/model.ckpt"
    assert (out / "trial-0001" / "model.onnx").is_file()


def test_sigterm_fails_the_trial_and_queues_it_again(data, tmp_path):
    url = f"journal:{tmp_path / 'study.log'}"
    study, _, name = _study(data, tmp_path / "out", url, target=1, steps=200)
    worker = _worker(url, name)
    _wait(lambda: _running(study) or worker.poll() is not None, what="a running trial")
    worker.send_signal(signal.SIGTERM)
    output, _ = worker.communicate(timeout=60)
    # 130, or death by SIGINT, which a shell reports as 130 too: in about 1 full run of 3 the
    # worker prints "interrupted" (main returned 130) and CPython still exits by SIGINT
    assert worker.returncode in (130, -signal.SIGINT), output
    assert "interrupted; queued again" in output, output
    trials = study.get_trials()
    assert trials[0].state == TrialState.FAIL and trials[0].user_attrs["error"] == "interrupted"
    assert trials[1].state == TrialState.WAITING
    assert trials[1].system_attrs["fixed_params"] == trials[0].params


# --- CLI mistakes: one line, exit status 2 --------------------------------------------------


def test_cli_mistakes(data, tmp_path):
    root, loss_net = data
    base = ["lab", "sweep", "--style", str(root / "painting.png"), "--content",
            str(root / "content"), "--study", "m", "--out", str(tmp_path / "o"),
            "--loss-net", loss_net]  # fmt: skip
    _one_line_error(run_cli(*base, "--storage", "redis://x"), "expected journal:PATH")
    _one_line_error(run_cli(*base, "--storage", "postgresql://u:secret@127.0.0.1:1/db"),
                    "cannot open", "u:***@127.0.0.1:1")  # fmt: skip
    _one_line_error(run_cli(*base, "--size", "36"), "multiple of 8")
    _one_line_error(run_cli(*base, "--storage", "postgresql://u@h:port/db"), "not a database URL")
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\nnot a journal\n")
    _one_line_error(run_cli(*base, "--storage", f"journal:{notes}"), "not an Optuna journal")
    assert notes.read_text() == "my notes\nnot a journal\n"
    few = tmp_path / "few"
    few.mkdir()
    for i in range(5):
        Image.fromarray(np.full((40, 40, 3), 40 * i, np.uint8)).save(few / f"{i}.png")
    _one_line_error(run_cli(*base[:5], str(few), *base[6:]), "5 photos", "more than")
    _one_line_error(run_cli(*base, "--trials", "many"), "--trials", "not a whole number")
    _one_line_error(run_cli(*base, "--enqueue", str(notes)), "notes.txt", "not JSON")
    _one_line_error(run_cli(*base, "--enqueue", str(tmp_path / "none.json")), "none.json")
    _one_line_error(run_cli(*base[:2], *base[4:], "--style", str(tmp_path / "no.png")), "no.png")
    _one_line_error(run_cli(*base, "--loss-net", "squeezenet:/no/such.pth"), "/no/such.pth")
    assert not (tmp_path / "o").exists()  # nothing made: inputs are checked first
    journal = f"journal:{tmp_path / 'none.log'}"
    _one_line_error(run_cli("lab", "worker", "--study", "x", "--storage", journal), "none.log")
    (tmp_path / "empty.log").touch()
    empty = f"journal:{tmp_path / 'empty.log'}"
    _one_line_error(run_cli("lab", "worker", "--study", "x", "--storage", empty), "no study 'x'")
    _one_line_error(run_cli("lab", "report", "--study", "x", "--storage", empty, "-o",
                            str(tmp_path / "r")), "no study 'x'")  # fmt: skip


# --- PostgreSQL: many workers ---------------------------------------------------------------


@needs_postgres
def test_two_postgres_workers_share_a_study(data, tmp_path):
    study, _, name = _study(data, tmp_path / "out", POSTGRES, target=4, extra=3)
    workers = [_worker(POSTGRES, name, "--trials", "2") for _ in range(2)]  # two trials each
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 4, outputs
    owners = sorted(t.user_attrs["worker"]["pid"] for t in done)
    assert owners == sorted(2 * [w.pid for w in workers]), outputs
    for t in study.get_trials(states=(TrialState.FAIL,)):  # failed as stale (a loaded machine):
        assert any(r.user_attrs.get("retry_history", [])[-1:] == [t.number] for r in done)


@needs_postgres
def test_postgres_worker_killed_mid_trial_is_finished_by_the_other(data, tmp_path):
    """Two workers at once; one SIGKILLed mid-trial: its heartbeat stops, the other fails
    the trial after the grace period, runs it again and completes the study."""
    study, _, name = _study(data, tmp_path / "out", POSTGRES, target=2, steps=200)
    study.enqueue_trial({**space.BASELINE, "style_weight": 1.0})
    first = _worker(POSTGRES, name)
    victim = _wait(lambda: _training(study, tmp_path / "out", first), what="a checkpoint")
    assert first.poll() is None, first.communicate()[0]
    second = _worker(POSTGRES, name)  # started now, so the first surely holds a trial
    _wait(lambda: _running(study, second.pid) or second.poll() is not None, what="the second")
    first.send_signal(signal.SIGKILL)
    first.communicate()
    output, _ = second.communicate(timeout=600)
    assert second.returncode == 0, output
    trials = study.get_trials()
    killed = trials[victim.number]
    assert killed.state == TrialState.FAIL
    retry = next(t for t in trials if t.user_attrs.get("retry_history") == [killed.number])
    assert retry.state == TrialState.COMPLETE and retry.params == killed.params
    assert retry.user_attrs["worker"]["pid"] == second.pid
    resumed = f"trial-{killed.number:04d}/model.ckpt"
    assert retry.user_attrs["record"]["train"]["resumed_from"] == resumed
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 2


def test_a_dead_or_reused_pid_is_not_a_live_worker():
    from palmbrush.lab.storage import _alive, worker_id

    me = worker_id()
    assert _alive(me)
    assert not _alive({**me, "started": str(int(me["started"]) - 1)})  # the pid, reused
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its pid names no process now
    assert not _alive({"host": me["host"], "pid": child.pid, "started": None})
