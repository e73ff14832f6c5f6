"""`palmbrush lab metrics MODEL... [--photos DIR|FILE...] [--painting FILE | --paintings DIR]`:
content and style error, stability, speed and size of style model files, as a table or JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..args import POSITIVE
from .options import add_engine, add_photos, read_photos

COLUMNS = [("content_error", "content", "{:.3f}"), ("style_error", "style", "{:.3f}"),
           ("colourfulness", "colour", "{:.1f}"),
           ("stability_ratio", "stability x floor", "{:.2f}"),
           ("fps_640x480", "fps 640x480", "{:.1f}"), ("ort_ratio_640x480", "x ORT", "{:.2f}"),
           ("fps_1280x720", "fps 1280x720", "{:.1f}"), ("ort_ratio_1280x720", "x ORT", "{:.2f}"),
           ("bytes", "KB", "{:.0f}"), ("parameters", "params", "{:,}")]  # fmt: skip


def add_parser(sub) -> None:
    p = sub.add_parser("metrics", help="quality, stability, speed and size of style models")
    p.add_argument("models", nargs="+", metavar="MODEL", help="built-in style names or .onnx files")
    add_photos(p)
    p.add_argument("--painting", type=Path, help="the painting every model is measured against")
    p.add_argument("--paintings", type=Path, metavar="DIR",
                   help="a folder of paintings: each model finds its own (built-in styles by "
                        "the catalogue, trained models by their metadata)")  # fmt: skip
    p.add_argument("--loss-net", default=None, metavar="SPEC",
                   help="'squeezenet:PATH', 'vgg16[:PATH]' or 'vgg19[:PATH]' (default: "
                        "training's default)")  # fmt: skip
    p.add_argument("--repeat", type=POSITIVE, default=5, help="timed runs per size (default 5)")
    add_engine(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from palmbrush.errors import PalmbrushError
    from palmbrush.lab.metrics import prepare_photos, record
    from palmbrush.styles import resolve, style_name
    from palmbrush.train.settings import TrainSettings

    if args.painting and args.paintings:
        raise PalmbrushError("--painting and --paintings: give one of them")
    photos = prepare_photos([picture for _, picture in read_photos(args)])
    loss_net = args.loss_net or TrainSettings.loss_net
    rows = {}
    for spec in args.models:
        painting = _painting(resolve(spec), spec, args)
        rows[style_name(spec)] = record(spec, photos=photos, painting=painting, loss_net=loss_net,
                                        engines=args.engine, threads=args.threads,
                                        repeat=args.repeat)  # fmt: skip
    if args.json:
        print(json.dumps({"photos": len(photos), "loss_net": loss_net, "models": rows}))
    else:
        _table(rows)
    return 0


def _painting(model: Path, spec: str, args: argparse.Namespace):
    from palmbrush.errors import PalmbrushError
    from palmbrush.train.data import read_rgb

    if args.painting:
        return read_rgb(args.painting)
    if not args.paintings:
        return None  # no style error
    name = painting_name(model, spec)
    if name is None or not (args.paintings / name).is_file():
        raise PalmbrushError(f"{spec}: its painting ({name or 'not recorded'}) is not in "
                             f"{args.paintings}")  # fmt: skip
    return read_rgb(args.paintings / name)


def painting_name(model: Path, spec: str) -> str | None:
    """The painting's file name: from the catalogue, or the model's training metadata."""
    from palmbrush.media.filters import read_style_model
    from palmbrush.styles import catalogue

    if spec in catalogue():
        return catalogue()[spec].image
    props = {p.key: p.value for p in read_style_model(model).metadata_props}
    try:
        return Path(json.loads(props.get("training", "{}")).get("style", "")).name or None
    except (ValueError, AttributeError):
        return None


def _table(rows: dict[str, dict]) -> None:
    shown = [c for c in COLUMNS if any(c[0] in r for r in rows.values())]
    print("| model | " + " | ".join(title for _, title, _ in shown) + " |")
    print("|---" * (len(shown) + 1) + "|")
    for name, r in rows.items():
        cells = [fmt.format(r[k] / 1024 if k == "bytes" else r[k]) if k in r else "-"
                 for k, _, fmt in shown]  # fmt: skip
        print(f"| {name} | " + " | ".join(cells) + " |")
