"""Options the lab commands share: photos, engine and threads."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..args import POSITIVE, THREADS

SAMPLE_PHOTO = Path(__file__).resolve().parents[2] / "samples" / "bunny.jpg"


def add_engine(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", default=None, help="engine preference (default: best available)")
    p.add_argument("--threads", type=THREADS, default=None, help="default: every core")


def add_photos(p: argparse.ArgumentParser, count: int = 8) -> None:
    p.add_argument("--photos", nargs="+", type=Path, metavar="DIR|FILE|VIDEO",
                   help="photos the models never saw: files, folders (searched recursively), "
                        "videos (3 frames each); default: the bundled sample "
                        f"{SAMPLE_PHOTO.name}")  # fmt: skip
    p.add_argument("--count", type=POSITIVE, default=count,
                   help=f"at most this many, evenly spaced (default {count})")  # fmt: skip


def read_photos(args: argparse.Namespace, max_side: int | None = None):
    """(name, picture) for --photos, --count of them, at most max_side on the long side."""
    from palmbrush.lab.clips import gather

    return gather(args.photos or [SAMPLE_PHOTO], args.count, max_side)
