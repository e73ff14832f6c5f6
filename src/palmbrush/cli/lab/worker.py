"""`palmbrush lab worker --study NAME --storage URL`: run trials of a sweep started elsewhere.

Any number of workers, on any machines that see the storage (an RDB for many machines) and the
sweep's files, share a study; each runs trials until the study has its target of complete ones.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from palmbrush.cli.args import POSITIVE, int_in


def add_parser(sub) -> None:
    p = sub.add_parser("worker", help="run trials of a sweep's study (many workers may share one)")
    p.add_argument("--study", required=True, help="the study's name (as given to lab sweep)")
    p.add_argument(
        "--storage", required=True, help="journal:FILE, sqlite:///FILE or postgresql://..."
    )
    p.add_argument("--out", type=Path, help="the sweep's --out as this machine sees it")
    p.add_argument("--trials", type=POSITIVE,
                   help="run this many trials, then stop (default: until the study has its "
                        "target of complete trials)")  # fmt: skip
    add_heartbeat(p)
    p.set_defaults(run=run)


def add_heartbeat(p: argparse.ArgumentParser) -> None:
    p.add_argument("--heartbeat", type=int_in(1, 3600), default=None, metavar="SECONDS",
                   help="on an RDB storage: seconds between a trial's heartbeats; a trial "
                        "that misses 3 is failed and queued again (default: a minute)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from palmbrush.lab import sweep
    from palmbrush.lab.storage import HEARTBEAT, open_storage

    quiet()
    storage = open_storage(args.storage, args.heartbeat or HEARTBEAT, create=False)
    study, fixed = sweep.join_study(args.study, storage, args.out)
    return work(study, storage, fixed, sweep.read_inputs(fixed), args.trials)


def quiet() -> None:
    """Our own progress lines instead of Optuna's log and its experimental-feature warnings."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def work(study, storage, fixed, inputs, trials: int | None = None) -> int:
    """Run trials in this process with progress lines, then print the Pareto front. SIGTERM
    stops it as Ctrl-C does: the running trial is failed and queued again."""
    import functools
    import signal

    from palmbrush.lab import sweep

    say = functools.partial(print, flush=True)
    worker = sweep.Worker(study, storage, fixed, inputs, log=say)
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, worker.interrupts.handler)
    say(status(study))
    try:
        worker.run(trials)
    finally:  # stopping: a second signal while the process winds down (DataLoader workers
        for number in (signal.SIGTERM, signal.SIGINT):  # joined, storage closed) must not
            signal.signal(number, signal.SIG_IGN)  # turn exit status 130 into death by SIGINT
    say(status(study))
    best = sorted(study.best_trials, key=lambda t: -t.values[0])
    say("Pareto front (speed up, content and style errors down):" if best else "no trial complete")
    for t in best:
        model = t.user_attrs["record"]["model"]
        say(f"  trial {t.number}: {sweep.objectives_text(t.values)}  {model}")
    return 0


def status(study) -> str:
    from optuna.trial import TrialState

    from palmbrush.lab.sweep import counts

    n, target = counts(study), study.user_attrs.get("trials", 0)
    return (f"study {study.study_name}: {n[TrialState.COMPLETE]} of {target} trials complete, "
            f"{n[TrialState.RUNNING]} running, {n[TrialState.WAITING]} queued, "
            f"{n[TrialState.FAIL]} failed")  # fmt: skip
