"""The sweep's search space: a trial's training settings as a pure function of its choices.

Architecture (StyleNetConfig fields over the femto preset: widths, blocks, downsampling factor
and how, upsampling and head, kernels), loss weights, the painting's size and the steps. The
region is issue 6's sweep's (docs/styles.md): the femto family and its neighbours, up to
medium widths.
What the space does not vary (painting, photos, crop size, step budget, loss net, seed) is the
sweep's `Fixed` settings, stored with the study so every worker trains the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

from palmbrush.errors import PalmbrushError
from palmbrush.train.settings import TrainSettings

VERSION = 7  # bump when a choice changes: a study made with another space is refused
BASE = "femto"  # the preset whose fields the space does not choose (norm, padding, activation)
LARGEST_FACTOR = 8  # first_stride 2 and three widths: crops must be a multiple of it
# The shipped default (femto-skip, TrainSettings' weights, the painting 1.5x the crop, every
# step): every new study's first trial, so the front is read against what ships today.
BASELINE = {"levels": 2, "width": 8, "growth": 2.0, "blocks": 2, "first_stride": 2, "down": "conv",
            "up": "nearest", "first_kernel": 5, "last_kernel": 3, "last_up": "head", "skip": True,
            "detail": False, "content_weight": 1.0, "style_weight": 1.5, "tv_weight": 1.0,
            "temporal_weight": 300.0, "style_scale": 1.5, "steps": 1.0}  # fmt: skip
TRAINING = TrainSettings(Path(), Path(), Path())  # training's defaults, the sweep's too
REFERENCE = "femto"  # speed is measured against this preset, timed in the same run
# Speed as the reference's time over the trial's (both on palmbrush, alternately, in one
# process): unlike fps it compares across trials timed while other workers train, or elsewhere.
SPEED = "reference_ratio_1280x720"
TEMPORAL = [0.0, 30.0, 100.0, 300.0, 1000.0]  # stability-term weights the space tries
OBJECTIVES = {SPEED: "maximize", "content_error": "minimize", "style_error": "minimize"}


@dataclass(frozen=True)
class Fixed:
    """The settings every trial of a study shares (study user attribute "sweep")."""

    painting: str  # the painting, absolute path
    content: str  # folder of training photos, absolute path
    photos: tuple[str, ...]  # the metrics' photos: held aside from training (train.data)
    out: str  # folder of the trials' models, absolute path
    size: int = TRAINING.size  # training crop size
    batch: int = TRAINING.batch  # crops per step
    steps: int = TRAINING.steps  # the budget; a trial trains a fraction of it ("steps" choice)
    lr_floor: float = TRAINING.lr_floor  # every trial's rate falls on a cosine to lr x this
    loss_net: str = TRAINING.loss_net  # for training and for the content and style errors
    seed: int = TRAINING.seed  # seeds weights and crops: trials differ only by their choices
    workers: int = TRAINING.workers  # data-loading processes per trial (0: in its process)
    threads: int | None = None  # speed is measured with this many threads (None: every core)
    repeat: int = 5  # timed runs per speed figure (lab.metrics.record's default)
    space: int = VERSION

    def to_dict(self) -> dict:
        return {**asdict(self), "photos": list(self.photos)}

    @classmethod
    def from_dict(cls, data: dict) -> Fixed:
        known = {f.name for f in fields(cls)}
        return cls(
            **{k: v for k, v in data.items() if k in known} | {"photos": tuple(data["photos"])}
        )

    def difference(self, other: Fixed) -> str | None:
        """The first setting that differs: 'steps: 4 there, 8 here' (None when all match)."""
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if mine != theirs:
                return f"{f.name}: {_short(mine)} there, {_short(theirs)} here"
        return None


def _short(value) -> str:
    text = ", ".join(map(str, value)) if isinstance(value, tuple) else str(value)
    return text if len(text) < 80 else text[:77] + "..."


def architecture(trial) -> dict:
    """StyleNetConfig fields: factor = first_stride * 2 ** (levels - 1), i.e. 2, 4 or 8."""
    levels = trial.suggest_int("levels", 2, 3)  # encoder widths
    width = trial.suggest_categorical("width", [6, 8, 12, 16])  # first encoder width
    growth = trial.suggest_categorical("growth", [1.0, 1.5, 2.0])  # width ratio per level
    arch = {
        "widths": [2 * round(width * growth**i / 2) for i in range(levels)],
        "blocks": trial.suggest_int("blocks", 1, 4),
        "first_stride": trial.suggest_categorical("first_stride", [1, 2]),
        "down": trial.suggest_categorical("down", ["conv", "pool"]),
        "up": trial.suggest_categorical("up", ["nearest", "transpose", "shuffle"]),
        "first_kernel": trial.suggest_categorical("first_kernel", [3, 5, 7, 9]),
        "last_kernel": trial.suggest_categorical("last_kernel", [3, 5, 7, 9]),
        "skip": trial.suggest_categorical("skip", [False, True]),  # encoder -> decoder adds
        "detail": trial.suggest_categorical("detail", [False, True]),  # frame -> output conv
    }
    if arch["first_stride"] == 2:  # only then is there a full-size upsampling to place
        arch["last_up"] = trial.suggest_categorical("last_up", ["layer", "head"])
    return arch


def weights(trial) -> dict:
    """Loss weights (TrainSettings fields); only their ratios matter much under Adam."""
    return {
        "content_weight": trial.suggest_float("content_weight", 0.5, 2.0, log=True),
        "style_weight": trial.suggest_float("style_weight", 0.5, 5.0, log=True),
        "tv_weight": trial.suggest_float("tv_weight", 0.1, 10.0, log=True),
        # the stability term is a mean square on the 0-1 scale (~0.003 untrained): weights
        # below ~30 change nothing, 300 halves flicker (docs/lab.md, "The stability term")
        "temporal_weight": trial.suggest_categorical("temporal_weight", TEMPORAL),
    }


def train_settings(trial, fixed: Fixed, folder: Path) -> TrainSettings:
    """The trial's training run: its model and checkpoint in `folder`."""
    arch, loss = architecture(trial), weights(trial)
    style_scale = trial.suggest_categorical("style_scale", [1.0, 1.5, 2.0])  # painting / crop
    fraction = trial.suggest_categorical("steps", [0.25, 0.5, 1.0])  # of the step budget
    return TrainSettings(
        style=Path(fixed.painting), content=Path(fixed.content), out=folder / "model.onnx",
        preset=BASE, arch=arch, size=fixed.size, batch=fixed.batch,
        steps=max(1, round(fixed.steps * fraction)), style_size=round(fixed.size * style_scale),
        loss_net=fixed.loss_net, seed=fixed.seed, workers=fixed.workers, lr_floor=fixed.lr_floor,
        checkpoint=folder / "model.ckpt", preview_every=0, **loss,
    )  # fmt: skip


def summary(s: TrainSettings) -> str:
    """One line: 'w8-16 b2 /4 conv nearest head k5/3 | c1 s1.5 tv1 t0 | style 384 | 2000 steps'."""
    return f"{describe(s.network_config().to_dict())} | {describe_weights(asdict(s))}"


def describe(arch: dict) -> str:
    """A network config in one short phrase: widths, blocks, factor, down, up (head), kernels."""
    head = f" {arch['last_up']}" if arch["first_stride"] == 2 else ""
    factor = arch["first_stride"] * 2 ** (len(arch["widths"]) - 1)
    return (f"w{'-'.join(map(str, arch['widths']))} b{arch['blocks']} /{factor} {arch['down']} "
            f"{arch['up']}{head} k{arch['first_kernel']}/{arch['last_kernel']}"
            f"{' skip' if arch.get('skip') else ''}"
            f"{' detail' if arch.get('detail') else ''}")  # fmt: skip


def describe_weights(s: dict) -> str:
    """Loss weights, the painting's size, the steps: 'c1 s1.5 tv1 t0 | style 384 | 2000 steps'."""
    loss = f"c{s['content_weight']:.2g} s{s['style_weight']:.2g} tv{s['tv_weight']:.2g}"
    return f"{loss} t{s['temporal_weight']:g} | style {s['style_size']} | {s['steps']} steps"


def planned(entries) -> list[dict]:
    """Trials to run first (`lab sweep --enqueue`): each a JSON object of choices that change
    the baseline's; a clear error for anything else (a typo would silently be sampled)."""
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise PalmbrushError("--enqueue: expected a JSON list of objects of choices")
    known = set(BASELINE)
    for entry in entries:
        unknown = sorted(set(entry) - known)
        if unknown:
            raise PalmbrushError(f"--enqueue: unknown choice {unknown[0]!r} (choices: "
                                 f"{', '.join(sorted(known))})")  # fmt: skip
        if not all(isinstance(v, bool | int | float | str) for v in entry.values()):
            raise PalmbrushError(f"--enqueue: {entry}: choices are numbers, strings or booleans")
    from optuna.trial import FixedTrial  # the lab extra; `palmbrush --help` must not need it

    merged = [{**BASELINE, **entry} for entry in entries]
    for entry, choices in zip(entries, merged):  # a value the space does not offer, now
        try:
            train_settings(FixedTrial(choices), Fixed("p", "c", (), "o"), Path("o"))
        except ValueError as exc:
            raise PalmbrushError(f"--enqueue: {entry}: {exc}") from None
    return merged


def check_size(size: int) -> None:
    if size % LARGEST_FACTOR:
        raise PalmbrushError(
            f"--size {size}: must be a multiple of {LARGEST_FACTOR} (the space's largest "
            "downsampling)"
        )


CHOSEN = ("steps", "style_size", "content_weight", "style_weight", "tv_weight", "temporal_weight")


def chosen(s: TrainSettings) -> dict:
    """What the space decided for a run, for its record: the whole network config too."""
    return {"arch": s.network_config().to_dict(), **{k: getattr(s, k) for k in CHOSEN}}
