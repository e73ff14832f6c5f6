"""`palmbrush lab flicker CLIP --style NAME|MODEL [--frames N] [--json]`: the warping error of a
style on a clip (a video or a folder of frames), with the input's own as its floor."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..args import int_in
from .options import add_engine


def add_parser(sub) -> None:
    p = sub.add_parser("flicker", help="how much a style flickers on a clip (warping error)")
    p.add_argument("clip", type=Path, help="a video file or a folder of numbered frames")
    p.add_argument("--style", action="append", required=True,
                   help="a built-in style or a style model file; repeat to compare several on "
                        "one flow computation")  # fmt: skip
    p.add_argument("--frames", type=int_in(2, 10_000), default=30,
                   help="the first N frames (default 30)")  # fmt: skip
    p.add_argument("--max-side", type=int_in(32, 16384), default=640, metavar="PX",
                   help="frames are scaled down to this long side first (default 640)")  # fmt: skip
    add_engine(p)
    p.add_argument("--json", action="store_true",
                   help="one JSON object per style (one line each)")  # fmt: skip
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from palmbrush.lab.clips import read_frames
    from palmbrush.lab.flicker import flicker, pairs
    from palmbrush.lab.metrics import stylizer
    from palmbrush.styles import style_name

    models = {style_name(s): stylizer(s, args.engine, args.threads) for s in args.style}
    frames = read_frames(args.clip, args.frames, args.max_side)
    flows = pairs(frames)
    if not args.json:
        h, w = frames[0].shape[:2]
        print(f"{args.clip.name}: {len(frames)} frames at {w}x{h}")
        print("| style | warping error | floor | x floor |\n|---|---|---|---|")
    for name, stylize in models.items():
        result = {"style": name, "clip": str(args.clip), **flicker(frames, stylize, flows)}
        if args.json:
            print(json.dumps(result), flush=True)
        else:
            ratio = "-" if result["ratio"] is None else f"{result['ratio']:.2f}"
            print(f"| {name} | {result['warping_error']:.4f} | {result['floor']:.4f} | "
                  f"{ratio} |", flush=True)  # fmt: skip
    return 0
