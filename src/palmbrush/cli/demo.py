"""`palmbrush demo`: stylize the bundled sample photo and clip with a built-in style."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
PHOTO, CLIP = SAMPLES / "bunny.jpg", SAMPLES / "bunny.mp4"  # Big Buck Bunny, CC-BY 3.0


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="stylize the bundled sample photo and clip (no set-up)")
    p.add_argument("-o", "--output", type=Path, default=Path("palmbrush-demo"),
                   help="folder for the results (default: ./palmbrush-demo)")  # fmt: skip
    p.add_argument("--style", default="starry-night", help="a built-in style or a model file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from palmbrush.errors import PalmbrushError

    from . import main

    if args.output.exists() and not args.output.is_dir():
        raise PalmbrushError(f"{args.output} exists and is not a folder")
    args.output.mkdir(parents=True, exist_ok=True)
    print(f"stylizing the sample photo and clip (Big Buck Bunny, (c) Blender Foundation, "
          f"CC-BY 3.0) with '{args.style}'", flush=True)  # fmt: skip
    argv = ["stylize", str(PHOTO), str(CLIP), "--style", args.style, "-o", str(args.output),
            "--overwrite"]  # fmt: skip
    status = main.main(argv)
    if status != 0:
        return status
    fps = _model_fps(args.style)
    results = sorted(args.output.glob(f"bunny.*{Path(CLIP).suffix}")) + sorted(
        args.output.glob("bunny.*.jpg")
    )
    print("\nresults:")
    for path in results:
        print(f"  {path.resolve()}")
    print(f"\nthe '{args.style}' model alone: {fps:.0f} fps at 1280x720 on this machine "
          f"(palmbrush bench for details); more styles: palmbrush styles")  # fmt: skip
    return 0


def _model_fps(style: str, runs: int = 10) -> float:
    import numpy as np

    from palmbrush.runtime import load
    from palmbrush.styles import resolve

    predictor = load(resolve(style))
    frame = np.random.default_rng(0).integers(0, 256, (1, 720, 1280, 3), dtype=np.uint8)
    predictor.run({"frame": frame})
    predictor.ready()  # a fresh machine: the model's speed once its kernels are compiled
    predictor.run({"frame": frame})  # and once the engines are measured at this size
    start = time.perf_counter()
    for _ in range(runs):
        predictor.run({"frame": frame})
    return runs / (time.perf_counter() - start)
