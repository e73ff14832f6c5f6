"""Frames of a clip for measurement: a video file, or a folder of numbered images.

Frames come upright, as RGB uint8, scaled down (area) so the long side is at most `max_side`;
the input frames of a metric and the ones a model is shown are the same arrays.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from palmbrush.errors import PalmbrushError
from palmbrush.media.images import at_most, read_image
from palmbrush.media.video import READS

IMAGES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def read_frames(clip: Path, limit: int, max_side: int | None = None) -> list[np.ndarray]:
    """The first `limit` frames of `clip`, at least two (a clip of one frame has no motion)."""
    if clip.is_dir():
        frames = [read_image(p) for p in _numbered(clip)[:limit]]
    elif clip.suffix.lower() in READS:
        frames = _decoded(clip, limit)
    else:
        raise PalmbrushError(f"{clip}: not a video ({', '.join(sorted(READS))}) or a folder")
    if len(frames) < 2:
        raise PalmbrushError(f"{clip}: {len(frames)} frame(s); flicker needs at least 2")
    if len({f.shape for f in frames}) > 1:
        raise PalmbrushError(f"{clip}: frames differ in size")
    return [at_most(f, max_side) for f in frames]


def _numbered(folder: Path) -> list[Path]:
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGES and p.is_file())
    if not paths:
        raise PalmbrushError(f"{folder}: no image frames in the folder")
    return paths


def _decoded(path: Path, limit: int) -> list[np.ndarray]:
    from palmbrush.media import require
    from palmbrush.media.video import open_video, upright_rgb

    av = require("av", "av")
    frames = []
    with open_video(path) as container:
        try:
            for frame in container.decode(video=0):
                frames.append(upright_rgb(frame))
                if len(frames) == limit:
                    break
        except av.FFmpegError as exc:  # a damaged stream: measure the frames before the damage
            if not frames:
                raise PalmbrushError(f"{path}: cannot decode ({exc})") from None
    return frames
