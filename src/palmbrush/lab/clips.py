"""Pictures for measurement: a clip's frames (a video file or a folder of numbered images), and
photos gathered from files, folders and videos.

Frames come upright, as RGB uint8, scaled down as they are decoded so the long side is at most
`max_side` (bicubic); the input frames of a metric and the ones a model is shown are the same
arrays.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from palmbrush.errors import PalmbrushError
from palmbrush.media.images import at_most, read_image
from palmbrush.media.video import READS

IMAGES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
SPAN = 150  # frames of a video looked at when a few of them stand for photos


def read_frames(clip: Path, limit: int, max_side: int | None = None) -> list[np.ndarray]:
    """The first `limit` frames of `clip`, at least two (a clip of one frame has no motion)."""
    if not clip.exists():
        raise PalmbrushError(f"{clip}: no such file or folder")
    if clip.is_dir():
        frames = [at_most(read_image(p), max_side) for p in _numbered(clip)[:limit]]
    elif clip.suffix.lower() in READS:
        frames = _decoded(clip, limit, max_side)
    else:
        raise PalmbrushError(f"{clip}: not a video ({', '.join(sorted(READS))}) or a folder")
    if len(frames) < 2:
        raise PalmbrushError(f"{clip}: {len(frames)} frame(s); flicker needs at least 2")
    if len({f.shape for f in frames}) > 1:
        raise PalmbrushError(f"{clip}: frames differ in size")
    return frames


def evenly(items: Sequence, count: int) -> list:
    """At most `count` of `items`, evenly spaced from the first."""
    return list(items[:: max(1, len(items) // count)][:count])


def gather(sources: Sequence[Path], count: int, max_side: int | None = None,
           video_frames: int = 3) -> list[tuple[str, np.ndarray]]:  # fmt: skip
    """(name, picture) from image files ("stem"), folders (searched recursively) and videos
    (`video_frames` frames evenly spaced over the first SPAN: "stem-00042"), then `count` of
    them evenly spaced; each at most `max_side` on its long side."""
    from palmbrush.train.data import find_images

    found: list[tuple[str, Path | np.ndarray]] = []
    for given in sources:
        if given.is_dir():
            found += [(p.stem, p) for p in find_images(given)]
        elif given.suffix.lower() in READS and given.is_file():
            frames = _decoded(given, SPAN, max_side)
            picks = sorted({round(i * (len(frames) - 1) / max(1, video_frames - 1))
                            for i in range(video_frames)})  # fmt: skip
            found += [(f"{given.stem}-{i:05d}", frames[i]) for i in picks]
        elif given.is_file():
            found.append((given.stem, given))
        else:
            raise PalmbrushError(f"{given}: no such file or folder")
    names = [name for name, _ in found]
    if len(set(names)) < len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise PalmbrushError(f"two pictures are both named '{twice}'; rename one")
    return [(name, at_most(read_image(p), max_side) if isinstance(p, Path) else p)
            for name, p in evenly(found, count)]  # fmt: skip


def _numbered(folder: Path) -> list[Path]:
    """Image files in frame order: names compared number by number (2 before 10)."""
    paths = [p for p in folder.iterdir() if p.suffix.lower() in IMAGES and p.is_file()]
    if not paths:
        raise PalmbrushError(f"{folder}: no image frames in the folder")
    digits = re.compile(r"(\d+)")
    return sorted(paths, key=lambda p: [int(t) if t.isdigit() else t for t in digits.split(p.name)])


def _decoded(path: Path, limit: int, max_side: int | None) -> list[np.ndarray]:
    from palmbrush.media import require
    from palmbrush.media.video import open_video, upright_rgb

    av = require("av", "av")
    frames = []
    with open_video(path) as container:
        try:
            for frame in container.decode(video=0):
                frames.append(at_most(upright_rgb(frame), max_side))
                if len(frames) == limit:
                    break
        except av.FFmpegError as exc:  # a damaged stream: measure the frames before the damage
            if not frames:
                raise PalmbrushError(f"{path}: cannot decode ({exc})") from None
    return frames
