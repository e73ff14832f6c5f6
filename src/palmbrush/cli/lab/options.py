"""Options the lab commands share: models, photos, engine and threads, the loss network."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..args import POSITIVE, THREADS

SAMPLE_PHOTO = Path(__file__).resolve().parents[2] / "samples" / "bunny.jpg"


def add_engine(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", default=None, help="engine preference (default: best available)")
    p.add_argument("--threads", type=THREADS, default=None, help="default: every core")


def add_photos(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument("--photos", nargs="+", type=Path, required=required, metavar="DIR|FILE",
                   help="photos the models never saw: folders (searched recursively) or files "
                        f"(default: {SAMPLE_PHOTO.name}, the bundled sample)")  # fmt: skip
    p.add_argument("--count", type=POSITIVE, default=8,
                   help="at most this many photos, evenly spaced by name (default 8)")  # fmt: skip


def photo_paths(args: argparse.Namespace) -> list[Path]:
    """The photo files named by --photos, --count of them evenly spaced; a clear error if none."""
    from palmbrush.errors import PalmbrushError
    from palmbrush.train.data import find_images

    paths: list[Path] = []
    for given in args.photos or [SAMPLE_PHOTO]:
        if given.is_dir():
            paths += find_images(given)
        elif given.is_file():
            paths.append(given)
        else:
            raise PalmbrushError(f"{given}: no such file or folder")
    step = max(1, len(paths) // args.count)
    return paths[::step][: args.count]


def read_photos(args: argparse.Namespace):
    from palmbrush.train.data import read_rgb

    return [read_rgb(p) for p in photo_paths(args)]
