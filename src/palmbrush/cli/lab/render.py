"""`palmbrush lab render MODEL... -o DIR (--photos DIR|FILE... | --clip CLIP)`: folders for a
blind A/B: DIR/<model>/<picture>.png, the same picture names in every model's folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..args import int_in
from .options import add_engine, add_photos


def add_parser(sub) -> None:
    p = sub.add_parser("render", help="stylize photos or a clip's frames into one folder a model")
    p.add_argument("models", nargs="+", metavar="MODEL", help="built-in style names or .onnx files")
    p.add_argument("-o", "--out", type=Path, required=True, help="the folder to fill")
    add_photos(p)
    p.add_argument("--clip", type=Path, help="frames of this video or folder instead of photos")
    p.add_argument("--frames", type=int_in(1, 10_000), default=8,
                   help="with --clip: this many frames, evenly spaced (default 8)")  # fmt: skip
    p.add_argument("--span", type=int_in(2, 100_000), default=300,
                   help="with --clip: frames read from the start (default 300)")  # fmt: skip
    p.add_argument("--max-side", type=int_in(32, 16384), default=640, metavar="PX",
                   help="pictures are scaled down to this long side (default 640)")  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="replace pictures already there")
    add_engine(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from palmbrush.atomic import check_target
    from palmbrush.errors import PalmbrushError
    from palmbrush.lab.metrics import stylizer
    from palmbrush.media.images import write_image
    from palmbrush.styles import style_name

    names = [style_name(m) for m in args.models]
    if len(set(names)) < len(names):
        raise PalmbrushError(f"two models would share a folder name ({', '.join(names)})")
    pictures, inputs = _pictures(args)
    targets = {n: [args.out / n / f"{stem}.png" for stem in pictures] for n in names}
    for path in (p for paths in targets.values() for p in paths):
        check_target(path, inputs, args.overwrite)
    for spec, name in zip(args.models, names):
        stylize = stylizer(spec, args.engine, args.threads)
        for path, picture in zip(targets[name], pictures.values()):
            write_image(path, stylize(picture))
        print(f"wrote {len(pictures)} picture{'s' * (len(pictures) != 1)} to {args.out / name}")
    return 0


def _pictures(args: argparse.Namespace):
    """{name: (H, W, 3) uint8} at most --max-side on the long side, and the files read."""
    from palmbrush.atomic import Inputs
    from palmbrush.lab.clips import evenly, read_frames

    from .options import read_photos

    if args.clip:
        frames = read_frames(args.clip, args.span, args.max_side)
        picks = evenly(range(len(frames)), args.frames)
        return {f"{args.clip.stem}-{i:05d}": frames[i] for i in picks}, Inputs([args.clip])
    return dict(read_photos(args, args.max_side)), Inputs(args.photos or [])
