"""Video files through a style model: decode, stylize and encode as a bounded pipeline.

The stages (pipeline.py) run at once: the demuxer decodes, several workers stylize frames side
by side (each with its own model on one thread: on a few cores that keeps every core busy
while the encoder and decoder take their share, where one model on every core would wait at
each layer for a thread the encoder has taken), and the muxer encodes in order. Video frames
keep their timestamps (same count, rate and duration as the input); audio and subtitle packets
pass through untouched, in demux order. yuv420p clips take the YUV path: the model reads and
writes the codec's planes (yuv.py), so no frame is converted to RGB and back outside it. The
output is written under a temporary name and renamed only when complete.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import atomic_path
from ..errors import PalmbrushError
from . import require
from .pipeline import Pipeline, Stage, StageTimes
from .streams import Demuxer, Encoding, Muxer, reason, upright

EXTENSIONS = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".y4m", ".m4v", ".ts", ".mts"}
READS = EXTENSIONS | {".gif"}  # FFmpeg reads animated GIFs; we write only real video files
QUEUE = 4  # items in flight between two stages


@dataclass
class VideoResult:
    frames: int = 0
    seconds: float = 0.0
    width: int = 0
    height: int = 0
    fps: float = 0.0  # the clip's frame rate
    copied: list[str] = field(default_factory=list)  # streams passed through, e.g. "audio aac"
    dropped: list[str] = field(default_factory=list)  # streams the output format cannot hold
    stages: dict[str, StageTimes] = field(default_factory=dict)  # decode / stylize / encode
    workers: int = 1  # models stylizing frames side by side
    colour: str = ""  # 'yuv420p', or 'rgb (why not)'
    rescaled: int = 0  # frames whose size differed from the first frame's, scaled to it

    @property
    def sustained_fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def open_video(path: Path):
    """The container of a readable video with a video stream, or a clear error."""
    av = require("av", "av")

    if not path.exists():
        raise PalmbrushError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise PalmbrushError(f"{path}: empty file")
    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise PalmbrushError(f"{path}: not a readable video ({reason(exc)})") from None
    if not container.streams.video:
        container.close()
        raise PalmbrushError(f"{path}: no video stream")
    return container


def _expected_frames(container, video) -> int:
    """How many frames the container says the stream has (0 when it does not say)."""
    if video.frames:
        return video.frames
    rate = float(video.average_rate or 0)
    if video.duration and video.time_base:
        return round(float(video.duration * video.time_base) * rate)
    return round(container.duration / 1e6 * rate) if container.duration else 0


def upright_rgb(frame):
    """A decoded frame as upright RGB (H, W, 3) uint8."""
    return upright(frame.to_ndarray(format="rgb24"), getattr(frame, "rotation", 0) or 0)


def default_workers() -> int:
    """Models stylizing side by side, one thread each: one per core (bench/video.py)."""
    return max(1, os.cpu_count() or 1)


Progress = Callable[[int, int, float], None]
Loader = Callable[[str], Callable]  # 'rgb' or 'yuv420p' -> a model for that kind of picture


def stylize_video(src: Path, dst: Path, load: Loader, *, encoding: Encoding | None = None,
                  workers: int | None = None, yuv: bool = True,
                  progress: Progress | None = None) -> VideoResult:  # fmt: skip
    """Stylize every frame of `src` into `dst`. `load(kind)` gives a model for one worker:
    for 'rgb' a function RGB uint8 (H, W, 3) -> the same shape, for 'yuv420p' one of (Y, U, V)
    planes -> planes (yuv.py); `yuv=False` keeps every frame on the RGB path.
    `progress(done, total, seconds)` is called after each frame is encoded."""
    av = require("av", "av")
    result = VideoResult(workers=workers or default_workers())
    container = open_video(src)
    demuxer = Demuxer(container, str(src), yuv)
    video = demuxer.video
    total = video.frames or 0
    clock = time.perf_counter()

    def encoded(picture) -> None:
        result.frames += 1
        if progress is not None:
            progress(result.frames, total, time.perf_counter() - clock)

    with atomic_path(dst, keep_suffix=True) as tmp:
        try:
            output = av.open(tmp, "w")
        except av.FFmpegError as exc:
            container.close()
            raise PalmbrushError(f"{dst}: cannot write this kind of file ({reason(exc)})") from None
        try:
            muxer = Muxer(container, output, dst.suffix.lower(), encoding or Encoding(), str(src),
                          encoded)  # fmt: skip
            result.copied, result.dropped = muxer.copied, muxer.dropped
            stages = [Stage("decode", demuxer.items), Stage("stylize", _Painter(load),
                      result.workers), Stage("encode", muxer.write)]  # fmt: skip
            result.stages = Pipeline(stages, QUEUE).run()
            muxer.finish()
            result.seconds = time.perf_counter() - clock
            _check_complete(src, container, video, result.frames)
        finally:
            container.close()
            output.close()
    result.fps = float(video.average_rate or 0)
    result.width, result.height = demuxer.size or (0, 0)
    result.colour, result.rescaled = demuxer.colour, demuxer.rescaled
    return result


def _check_complete(src: Path, container, video, frames: int) -> None:
    if frames == 0:
        raise PalmbrushError(f"{src}: no video frames could be decoded")
    expected = _expected_frames(container, video)
    if expected and frames < expected * 0.98 - 1:
        raise PalmbrushError(f"{src}: the video stream breaks after frame {frames} of about "
                             f"{expected}")  # fmt: skip


class _Painter:
    """The stylize stage: each worker thread loads its own model for the picture's kind (so
    workers share no arena) and stylizes video frames; packets pass."""

    def __init__(self, load: Loader):
        self.load, self.local = load, threading.local()

    def __call__(self, item: tuple) -> tuple:
        if item[0] != "frame":
            return item
        kind = "yuv420p" if isinstance(item[3], tuple) else "rgb"
        model = getattr(self.local, kind, None)
        if model is None:
            model = self.load(kind)
            setattr(self.local, kind, model)
        return (*item[:3], model(item[3]))
