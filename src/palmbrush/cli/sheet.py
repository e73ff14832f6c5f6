"""`palmbrush sheet PHOTO -o sheet.png`: every built-in style on one photo, labelled."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from palmbrush.cli.args import THREADS, int_in
from palmbrush.contract import MIN_SIDE


def add_parser(sub) -> None:
    p = sub.add_parser("sheet", help="render every built-in style on one photo, with labels")
    p.add_argument("photo", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True, help="the sheet (.png, .jpg)")
    p.add_argument(
        "--style",
        action="append",
        help="a built-in style or model file; repeat (default: every built-in)",
    )
    p.add_argument("--width", type=int_in(MIN_SIDE, 4096), default=320,
                   help="width of each picture (px)")  # fmt: skip
    p.add_argument("--per-row", type=int_in(1, 64), default=3, help="pictures per row")
    p.add_argument("--engine", help="engine preference (default: best available)")
    p.add_argument("--threads", type=THREADS, default=os.cpu_count())
    p.add_argument("--overwrite", action="store_true", help="replace an existing sheet")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from palmbrush.atomic import check_target
    from palmbrush.contract import check_frame_size
    from palmbrush.media import images, require
    from palmbrush.media.filters import load_style
    from palmbrush.media.sheet import labelled_grid
    from palmbrush.styles import catalogue, resolve, style_name

    Image = require("PIL.Image", "pillow")
    specs = args.style or list(catalogue())
    check_target(args.output, [args.photo, *map(resolve, specs)], args.overwrite)
    images.image_format(args.output.suffix, str(args.output))
    photo = images.read_image(args.photo)
    height = max(MIN_SIDE, round(photo.shape[0] * args.width / photo.shape[1]))
    check_frame_size(f"{args.photo} at --width {args.width}", args.width, height, "a tile")
    count = len(specs) + 1
    rows = -(-count // args.per_row)
    check_frame_size(str(args.output), args.width * min(count, args.per_row), height * rows,
                     "the sheet")  # fmt: skip
    photo = np.asarray(
        Image.fromarray(photo).resize((args.width, height), Image.Resampling.LANCZOS)
    )
    styles = [(spec, load_style(spec, args.engine, args.threads)) for spec in specs]  # all first
    tiles = [("photo", photo)]
    for spec, style in styles:
        builtin = catalogue().get(str(spec))
        label = f"{spec} ({builtin.painter})" if builtin else style_name(spec)
        tiles.append((label, style(photo)))
    sheet = np.asarray(labelled_grid(tiles, args.per_row))
    images.write_image(args.output, sheet)
    print(f"wrote {args.output} ({len(styles)} styles)")
    return 0
