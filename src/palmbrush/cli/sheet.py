"""`palmbrush sheet PHOTO -o sheet.png`: every built-in style on one photo, labelled."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("sheet", help="render every built-in style on one photo, with labels")
    p.add_argument("photo", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True, help="the sheet (.png, .jpg)")
    p.add_argument(
        "--style",
        action="append",
        help="a built-in style or model file; repeat (default: every built-in)",
    )
    p.add_argument("--width", type=int, default=320, help="width of each picture (px)")
    p.add_argument("--per-row", type=int, default=3, help="pictures per row")
    p.add_argument("--engine", help="engine preference (default: best available)")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--overwrite", action="store_true", help="replace an existing sheet")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from palmbrush.media import images, require
    from palmbrush.media.filters import load_style
    from palmbrush.media.sheet import labelled_grid
    from palmbrush.runtime.errors import PalmbrushError
    from palmbrush.styles import catalogue, style_name

    Image = require("PIL.Image", "pillow")
    if not 32 <= args.width <= 4096 or args.per_row < 1:
        raise PalmbrushError("--width must be 32..4096 and --per-row at least 1")
    if args.output.exists() and not args.overwrite:
        raise PalmbrushError(f"{args.output} exists (--overwrite to replace it)")
    if args.output.suffix.lower() not in images.FORMATS:
        raise PalmbrushError(
            f"{args.output}: unknown image type (use {', '.join(sorted(images.FORMATS))})"
        )
    photo = images.read_image(args.photo)
    height = max(32, round(photo.shape[0] * args.width / photo.shape[1]))
    photo = np.asarray(
        Image.fromarray(photo).resize((args.width, height), Image.Resampling.LANCZOS)
    )
    specs = args.style or list(catalogue())
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
