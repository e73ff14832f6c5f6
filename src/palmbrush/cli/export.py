"""`palmbrush export CKPT -o MODEL.onnx`: a checkpoint as a portable style model file."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a training checkpoint to ONNX")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("-o", "--out", type=Path, required=True, help="the .onnx file to write")
    p.add_argument("--style-name", help="style name stored in the model's metadata")
    p.add_argument("--painter", help="painter stored in the model's metadata")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from palmbrush.train.export import export_checkpoint

    extra = {k: v for k, v in (("style", args.style_name), ("painter", args.painter)) if v}
    export_checkpoint(args.checkpoint, args.out, extra, args.overwrite)
    print(f"wrote {args.out}")
    return 0
