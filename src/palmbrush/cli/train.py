"""`palmbrush train`: train a style network on a painting and a folder of photos."""

from __future__ import annotations

import argparse
from pathlib import Path

from palmbrush.cli.args import POSITIVE, float_in, int_in
from palmbrush.contract import MIN_SIDE
from palmbrush.errors import PalmbrushError
from palmbrush.train.settings import TrainSettings

DEFAULTS = TrainSettings(Path(), Path(), Path())  # the shipped styles' settings
STEPS = DEFAULTS.steps  # when neither --steps nor --epochs is given
WEIGHT = float_in(0.0, 1e6)  # a loss weight: finite, not negative


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a style model (needs palmbrush[train])")
    p.add_argument("--style", type=Path, required=True, help="the painting")
    p.add_argument("--content", type=Path, required=True, help="folder of photos")
    p.add_argument("--exclude", help="comma separated sub-folders of --content to hold aside "
                                     "(e.g. the photos you will judge the style on)")  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="the .onnx model to write")
    p.add_argument("--preset", default=DEFAULTS.preset, help="network preset (palmbrush models)")
    p.add_argument(
        "--size", type=int_in(MIN_SIDE, 2048), default=DEFAULTS.size, help="training crop size"
    )
    p.add_argument("--batch", type=int_in(1, 1024), default=DEFAULTS.batch)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--steps", type=POSITIVE, default=STEPS,
                       help=f"optimizer steps (default {STEPS})")  # fmt: skip
    group.add_argument("--epochs", type=float_in(0.0, 1e6, open_low=True),
                       help="passes over the content folder")  # fmt: skip
    p.add_argument("--lr", type=float_in(0.0, 10.0, open_low=True), default=DEFAULTS.lr,
                   help="Adam's learning rate at the first step")  # fmt: skip
    p.add_argument("--lr-floor", type=float_in(0.0, 1.0), default=DEFAULTS.lr_floor,
                   help="the rate falls on a cosine to lr x this at the last step "
                        f"(1: constant; default {DEFAULTS.lr_floor:g})")  # fmt: skip
    p.add_argument("--content-weight", type=WEIGHT, default=DEFAULTS.content_weight)
    p.add_argument("--style-weight", type=WEIGHT, default=DEFAULTS.style_weight)
    p.add_argument("--tv-weight", type=WEIGHT, default=DEFAULTS.tv_weight)
    p.add_argument(
        "--temporal-weight",
        type=WEIGHT,
        default=DEFAULTS.temporal_weight,
        help="weight of the stability term: the output under a small random warp "
        "and noise of the input vs the warped output, a mean square on the "
        "0-1 scale, so useful weights are ~30-1000 (300 about halves flicker; "
        f"default {DEFAULTS.temporal_weight:g}; 0: off; docs/lab.md)",
    )
    p.add_argument("--style-size", type=int_in(MIN_SIDE, 8192), default=DEFAULTS.style_size,
                   help="long side of the painting")  # fmt: skip
    p.add_argument(
        "--loss-net",
        default=DEFAULTS.loss_net,
        help="squeezenet[:PATH] | vgg16[:PATH] | vgg19[:PATH]; without a PATH, torchvision's "
        f"weights are downloaded once (default {DEFAULTS.loss_net})",
    )
    p.add_argument("--content-layers", help="comma separated taps (default per loss net)")
    p.add_argument("--style-layers", help="comma separated taps (default per loss net)")
    p.add_argument("--seed", type=int_in(0, 2**63 - 1), default=DEFAULTS.seed)
    p.add_argument("--device", choices=["cpu", "cuda"], default=DEFAULTS.device)
    p.add_argument(
        "--workers", type=int_in(0, 64), default=DEFAULTS.workers, help="data-loading processes"
    )
    p.add_argument("--checkpoint-every", type=POSITIVE, default=DEFAULTS.checkpoint_every)
    p.add_argument(
        "--preview-every", type=int_in(0), default=DEFAULTS.preview_every, help="0: no previews"
    )
    p.add_argument("--resume", type=Path, help="continue from this checkpoint")
    p.add_argument(
        "--init",
        type=_weights,
        help="start from these weights (same preset): a checkpoint, a style model (.onnx) or "
        "a built-in style's name; --init starry-night --steps 500 trains a new painting "
        "the way the built-in styles were",
    )
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing model, checkpoint and previews")  # fmt: skip
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.init and args.resume:
        raise PalmbrushError("--init and --resume exclude each other: a resumed run has weights")

    from palmbrush.train.export import export_net, metadata
    from palmbrush.train.loop import train

    settings = TrainSettings(
        style=args.style, content=args.content, out=args.out, preset=args.preset,
        size=args.size, batch=args.batch, steps=args.steps, lr=args.lr, lr_floor=args.lr_floor,
        exclude=_names(args.exclude),
        content_weight=args.content_weight, style_weight=args.style_weight,
        tv_weight=args.tv_weight, temporal_weight=args.temporal_weight,
        style_size=args.style_size, loss_net=args.loss_net,
        content_layers=_names(args.content_layers), style_layers=_names(args.style_layers),
        seed=args.seed, init=args.init, device=args.device, workers=args.workers,
        checkpoint_every=args.checkpoint_every, preview_every=args.preview_every,
    )  # fmt: skip
    if args.epochs:
        from palmbrush.train.data import find_images

        photos = len(find_images(args.content, settings.exclude))
        settings.steps = max(1, round(args.epochs * photos / args.batch))
    net, _ = train(settings, resume=args.resume, overwrite=args.overwrite)
    resolved = settings.resolved()
    export_net(net, args.out, metadata(args.preset, resolved.to_dict()))
    print(f"wrote {args.out} (checkpoint {resolved.checkpoint})")
    return 0


def _weights(spec: str) -> Path:
    """--init: a built-in style's name stands for its model file."""
    from palmbrush.styles import catalogue, model_path

    path = Path(model_path(spec))
    if not path.is_file():
        names = ", ".join(catalogue())
        raise argparse.ArgumentTypeError(
            f"{spec}: no such checkpoint or style model file (built-in styles: {names})"
        )
    return path


def _names(text: str | None) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()] if text else []
