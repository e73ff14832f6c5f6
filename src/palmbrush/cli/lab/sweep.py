"""`palmbrush lab sweep`: search architectures and loss weights with Optuna, speed vs quality.

Creates the study (or continues it: the same name continues where it stopped) and runs trials in
this process; more machines join with `palmbrush lab worker --study NAME --storage URL`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from palmbrush.cli.args import POSITIVE, THREADS, int_in
from palmbrush.cli.lab.worker import add_heartbeat
from palmbrush.contract import MIN_SIDE
from palmbrush.errors import PalmbrushError
from palmbrush.lab.space import TRAINING as DEFAULTS
from palmbrush.lab.space import Fixed


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="search architectures and loss weights (Optuna)")
    p.add_argument("--style", type=Path, required=True, help="the painting")
    p.add_argument("--content", type=Path, required=True,
                   help="folder of photos (a few are held aside: the metrics' photos)")  # fmt: skip
    p.add_argument("--trials", type=int_in(0), default=20, help="complete trials to aim for")
    p.add_argument("--steps", type=POSITIVE, default=DEFAULTS.steps,
                   help="most steps a trial trains (the space picks 1/4, 1/2 or all)")  # fmt: skip
    p.add_argument("--size", type=int_in(MIN_SIDE, 2048), default=DEFAULTS.size,
                   help="training crop size (a multiple of 8)")  # fmt: skip
    p.add_argument("--batch", type=int_in(1, 1024), default=DEFAULTS.batch)
    p.add_argument("--study", required=True, help="the study's name")
    p.add_argument("--storage", help="journal:FILE (default journal:OUT/study.log), "
                   "sqlite:///FILE or postgresql://USER@HOST:PORT/DB")  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="folder for the trials' models")
    p.add_argument("--loss-net", default=DEFAULTS.loss_net,
                   help="squeezenet:PATH | vgg16[:PATH] | vgg19[:PATH]")  # fmt: skip
    p.add_argument("--seed", type=int_in(0, 2**63 - 1), default=DEFAULTS.seed)
    p.add_argument("--workers", type=int_in(0, 64), default=DEFAULTS.workers,
                   help="data-loading processes per trial")  # fmt: skip
    p.add_argument("--threads", type=THREADS, help="threads of the speed figures (default: all)")
    p.add_argument("--repeat", type=POSITIVE, default=Fixed.repeat,
                   help="timed runs per speed figure")  # fmt: skip
    p.add_argument("--enqueue", type=Path, metavar="FILE",
                   help="trials to run next: a JSON list of objects, each the choices that "
                        'differ from the baseline (e.g. [{"skip": true}]); one the study already '
                        "has is not queued again")  # fmt: skip
    add_heartbeat(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from palmbrush.cli.lab.worker import quiet, work
    from palmbrush.lab import space, sweep
    from palmbrush.lab.space import check_size
    from palmbrush.lab.storage import HEARTBEAT, open_storage

    check_size(args.size)
    first = space.planned(read_json(args.enqueue)) if args.enqueue else []
    out = args.out.absolute()
    fixed = Fixed(
        painting=str(args.style.absolute()), content=str(args.content.absolute()),
        photos=tuple(sweep.held_aside(args.content)), out=str(out), size=args.size,
        batch=args.batch, steps=args.steps, loss_net=_absolute(args.loss_net), seed=args.seed,
        workers=args.workers, threads=args.threads, repeat=args.repeat,
    )  # fmt: skip
    quiet()
    inputs = sweep.read_inputs(fixed)  # a mistake fails before the study is made with it
    storage = open_storage(args.storage or f"journal:{out / 'study.log'}",
                                 args.heartbeat or HEARTBEAT)  # fmt: skip
    study = sweep.start_study(args.study, storage, fixed, args.trials, first)
    return work(study, storage, fixed, inputs)


def read_json(path: Path):
    import json

    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise PalmbrushError(f"{path}: cannot read: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise PalmbrushError(f"{path}: not JSON: {exc}") from None


def _absolute(loss_net: str) -> str:
    """'squeezenet:PATH' with PATH absolute, so workers started elsewhere find it."""
    name, _, path = loss_net.partition(":")
    return f"{name}:{Path(path).absolute()}" if path else name
