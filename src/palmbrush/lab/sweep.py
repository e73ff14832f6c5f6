"""Sweeps on Optuna: the study and its storage, the trial function, the worker loop.

A trial is a pure function: settings in (lab.space), a trained and exported model in
OUT/trial-NNNN/ and a metrics record out (the trial's "record" user attribute, set in one call
at the end, so a trial is COMPLETE with its whole record or not at all). Storages: a journal
file on one machine, an RDB (PostgreSQL) for many. A worker killed mid-trial leaves a RUNNING
trial that is failed and re-queued with the same choices: on an RDB when its heartbeat stops
(Optuna's own heartbeat), on a journal when a worker on the same host finds its process gone
(a journal has no heartbeat; each trial records its host and pid). A re-queued trial resumes
from the checkpoint its predecessor left.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from palmbrush.errors import PalmbrushError

from . import space
from .space import OBJECTIVES, Fixed
from .storage import recover, requeue, worker_id

MAX_FAILS = 5  # a worker stops after this many of its trials failed in a row
POLL = 2.0  # seconds between looks at a study whose last trials other workers run


class TrialFailed(PalmbrushError):
    """A trial's own failure (diverged, unmeasurable): the trial is FAIL, the study goes on."""


def sampler() -> optuna.samplers.BaseSampler:
    """Multi-objective TPE: sample-efficient from ~10 trials on (NSGA-II needs generations),
    conditional choices grouped, and a constant liar so parallel workers spread out."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(multivariate=True, group=True, constant_liar=True)


def start_study(name: str, storage, fixed: Fixed, target: int, first: Sequence[dict] = ()
                ) -> optuna.Study:  # fmt: skip
    """Create the study, or continue it (its fixed settings must be these); aim for `target`
    complete trials. A new study runs the baseline first; the `first` choices
    (space.planned) are queued next, but for those some trial already has, then its sampler
    proposes the rest."""
    directions = list(OBJECTIVES.values())
    study = optuna.create_study(storage=storage, study_name=name, directions=directions,
                                sampler=sampler(), load_if_exists=True)  # fmt: skip
    stored = study.user_attrs.get("sweep")
    if stored is None and any(Path(fixed.out).glob("trial-*")):
        raise PalmbrushError(f"{fixed.out}: holds another study's trials; give another --out")
    if stored is None:
        study.set_user_attr("sweep", fixed.to_dict())
        study.enqueue_trial(space.BASELINE, user_attrs={"baseline": True})
    else:
        _check_same(name, Fixed.from_dict(stored).difference(fixed))
    known = [_choices(t) for t in study.get_trials(deepcopy=False)]
    for params in first:  # the same command run again queues nothing twice
        if not any(_same_choices(params, k) for k in known):
            study.enqueue_trial(params, user_attrs={"planned": True})
            known.append(params)
    study.set_user_attr("trials", target)
    return study


def _choices(trial: optuna.trial.FrozenTrial) -> dict:
    """A trial's choices: its parameters, or for a queued trial the ones it was given."""
    return trial.system_attrs.get("fixed_params") or trial.params


def _same_choices(planned: dict, choices: dict) -> bool:
    """The choices a trial has are the planned ones (a choice the trial could not have, like
    last_up without a stride-2 first conv, does not count)."""
    return bool(choices) and all(planned.get(k) == v for k, v in choices.items())


def join_study(name: str, storage, out: Path | None = None) -> tuple[optuna.Study, Fixed]:
    """An existing sweep's study and fixed settings (`out`: its models' folder on this machine)."""
    try:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler())
    except KeyError:
        raise PalmbrushError(f"no study '{name}' in this storage (lab sweep makes it)") from None
    if "sweep" not in study.user_attrs:
        raise PalmbrushError(f"study '{name}' was not made by palmbrush lab sweep")
    fixed = Fixed.from_dict(study.user_attrs["sweep"])
    _check_same(name, None if fixed.space == space.VERSION else "the space changed")
    return study, replace(fixed, out=str(out.absolute())) if out else fixed


def _check_same(name: str, difference: str | None) -> None:
    if difference:
        raise PalmbrushError(f"study '{name}' was made with other settings: {difference} "
                             "(give another --study name)")  # fmt: skip


def held_aside(content: Path) -> list[str]:
    """The photos training keeps out of its batches (train.data.hold_aside), absolute."""
    from palmbrush.train.data import decodable, find_images, hold_aside

    paths, _ = decodable(find_images(content))
    training, aside = hold_aside(paths)
    if set(training) & set(aside):
        raise PalmbrushError(f"{content}: {len(paths)} photos; a sweep needs more than "
                             f"{2 * len(aside)}, so that its metrics' photos are never trained "
                             "on")  # fmt: skip
    return [str(p.absolute()) for p in aside]


def counts(study: optuna.Study) -> dict[TrialState, int]:
    out = dict.fromkeys(TrialState, 0)
    for trial in study.get_trials(deepcopy=False):
        out[trial.state] += 1
    return out


class Interrupts:
    """SIGTERM and Ctrl-C stop a worker only where that is safe: while a trial trains or is
    measured, never inside a storage write (an exception there breaks a journal's file lock).
    A signal that comes elsewhere takes effect at the next safe point."""

    def __init__(self):
        self.safe, self.pending = False, False

    def handler(self, signum, frame) -> None:
        self.pending = True
        if self.safe:
            raise KeyboardInterrupt

    def check(self) -> None:
        if self.pending:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def allowed(self):
        self.check()
        self.safe = True
        try:
            yield
        finally:
            self.safe = False


class Worker:
    """Runs a study's trials in this process; owns its photos, painting and progress lines."""

    def __init__(self, study: optuna.Study, storage, fixed: Fixed, inputs, log=print):
        self.study, self.storage, self.fixed, self.inputs = study, storage, fixed, inputs
        self.out, self.log = Path(fixed.out), log
        self.fails, self.current = 0, None
        self.interrupts = Interrupts()  # its handler is the process's (cli.lab.worker.work)
        self.reference = reference_model(self.out)

    def run(self, trials: int | None = None) -> None:
        """Trials until the study has its target of complete trials (or `trials` of ours)."""
        done = 0
        while self._more() if trials is None else done < trials:
            recover(self.study, self.storage)  # a dead worker's trial goes back to the queue
            try:
                self.study.optimize(self.objective, n_trials=1, catch=(PalmbrushError,),
                                    callbacks=[self.finished])  # fmt: skip
            except UpdateFinishedTrialError:
                self.log(f"trial {self.current}: failed by another worker meanwhile (heartbeat "
                         "missed?); its retry runs elsewhere")  # fmt: skip
            except KeyboardInterrupt:
                self._requeue_current()
                raise
            self.interrupts.check()  # a signal during the trial's last writes: stop now
            done += 1
            if self.fails >= MAX_FAILS:
                raise PalmbrushError(f"{self.fails} trials in a row failed; stopping this worker")

    def _more(self) -> bool:
        """Whether to start a trial: not when the study is complete; waits while the trials
        other workers run would complete it (or turn out dead and come back to the queue)."""
        waiting = False
        while True:
            recover(self.study, self.storage)
            n, target = counts(self.study), self.study.user_attrs.get("trials", 0)
            if n[TrialState.COMPLETE] >= target:
                return False
            if n[TrialState.WAITING] or n[TrialState.COMPLETE] + n[TrialState.RUNNING] < target:
                return True
            if not waiting:
                self.log(f"waiting for the {n[TrialState.RUNNING]} trials running elsewhere")
                waiting = True
            self.interrupts.check()
            time.sleep(POLL)

    def objective(self, trial: optuna.Trial) -> tuple[float, ...]:
        """Settings in; model, record (user attribute) and objectives out. An interruption
        anywhere in it (even while the settings are drawn) marks the trial for re-queueing."""
        self.current = trial.number
        try:
            trial.set_user_attr("worker", {**worker_id(), "trial": trial.number})
            return self._run_trial(trial)
        except PalmbrushError as exc:
            trial.set_user_attr("error", str(exc))
            raise
        except RuntimeError as exc:  # PyTorch's own failures (out of memory, a bad shape)
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}".splitlines()[0])
            raise TrialFailed(str(exc).splitlines()[0]) from None
        except KeyboardInterrupt:
            trial.set_user_attr("error", "interrupted")
            raise

    def _run_trial(self, trial: optuna.Trial) -> tuple[float, ...]:
        folder = self.out / f"trial-{trial.number:04d}"
        settings = space.train_settings(trial, self.fixed, folder)
        history = trial.user_attrs.get("retry_history", [])
        resume = self._resume(history)
        again = f" (again for trial {history[-1]})" if history else ""
        self.log(f"trial {trial.number} started{again}: {space.summary(settings)}")
        with self.interrupts.allowed():
            record = self._train(settings, resume, trial.number)
            record["metrics"] = self._measure(settings.out)
        record["model"] = str(settings.out.relative_to(self.out))
        trial.set_user_attr("record", record)
        return tuple(record["metrics"][k] for k in OBJECTIVES)

    def _resume(self, history: list[int]) -> Path | None:
        """The newest checkpoint this trial's dead predecessors left, if any."""
        for number in reversed(history):
            ckpt = self.out / f"trial-{number:04d}" / "model.ckpt"
            if ckpt.is_file():
                return ckpt
        return None

    def _train(self, settings, resume: Path | None, number: int) -> dict:
        """Train (resuming `resume`), check it did not diverge, export; the record so far."""
        import json

        from palmbrush.train.export import export_net, metadata
        from palmbrush.train.loop import train

        start = time.perf_counter()
        net, history = train(settings, resume=resume, log=lambda line: None, overwrite=True)
        _check_finite(net, history)
        resolved = settings.resolved()
        lab = json.dumps({"study": self.study.study_name, "trial": number})
        extra = {"architecture": json.dumps(net.cfg.to_dict()), "lab": lab}
        export_net(net, settings.out, metadata(resolved.preset, resolved.to_dict(), extra))
        last = history[-20:]
        return {
            "settings": space.chosen(settings),
            "train": {"seconds": round(time.perf_counter() - start, 2),
                      "final_loss": sum(last) / len(last) if last else None,
                      "resumed_from": str(resume.relative_to(self.out)) if resume else None},
        }  # fmt: skip

    def _measure(self, model: Path) -> dict:
        from palmbrush.lab.metrics import record

        photos, painting = self.inputs
        f = self.fixed
        metrics = record(model, photos=photos, painting=painting, loss_net=f.loss_net,
                         threads=f.threads, repeat=f.repeat, reference=self.reference)  # fmt: skip
        bad = sorted(k for k, v in metrics.items() if not math.isfinite(v))
        if bad:
            raise TrialFailed(f"the model's {', '.join(bad)} is not a finite number")
        return {k: float(v) for k, v in metrics.items()}

    def finished(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """The progress line of a trial that ended (Optuna's callback)."""
        took = _clock(trial.duration.total_seconds() if trial.duration else 0)
        if trial.state == TrialState.COMPLETE:
            self.fails = 0
            self.log(f"trial {trial.number} done in {took}: {objectives_text(trial.values)}")
        else:
            self.fails += 1
            why = trial.user_attrs.get("error", "no reason recorded")
            self.log(f"trial {trial.number} failed in {took}: {why}")

    def _requeue_current(self) -> None:
        if self.current is None:
            return
        trial = self.study.get_trials(deepcopy=False)[self.current]
        if trial.state == TrialState.FAIL and trial.user_attrs.get("error") == "interrupted":
            requeue(self.study, trial)
            self.log(f"trial {trial.number} interrupted; queued again")


def reference_model(out: Path) -> Path:
    """OUT/reference.onnx: the preset trials are timed against (seeded weights; speed does
    not depend on them), exported once per folder."""
    from palmbrush.train.export import export_preset

    path = out / "reference.onnx"
    if not path.is_file():
        out.mkdir(parents=True, exist_ok=True)
        export_preset(space.REFERENCE, path)
    return path


def _check_finite(net, history: list[float]) -> None:
    import torch

    bad = next((i for i, loss in enumerate(history, 1) if not math.isfinite(loss)), None)
    if bad is not None:
        raise TrialFailed(f"training diverged (loss {history[bad - 1]} at step {bad})")
    if not all(torch.isfinite(p).all() for p in net.parameters()):
        raise TrialFailed("training diverged (weights not finite)")


def read_inputs(fixed: Fixed):
    """The held-aside photos as the metrics measure them, and the painting; and a check that
    the loss network loads (a mistake fails here, before any trial)."""
    from palmbrush.lab.metrics import prepare_photos
    from palmbrush.models.weights import load_loss_net
    from palmbrush.train.data import read_rgb

    load_loss_net(fixed.loss_net)
    painting = read_rgb(Path(fixed.painting))
    return prepare_photos([read_rgb(Path(p)) for p in fixed.photos]), painting


def objectives_text(values) -> str:
    speed, content, style = values
    return f"{speed:.2f}x {space.REFERENCE}'s speed, content {content:.4g}, style {style:.4g}"


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"
