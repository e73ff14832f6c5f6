"""Video files through a style model: decode, stylize and encode as a pipeline.

Three stages run at once, joined by bounded queues (so memory stays flat and all cores stay
busy): a decoder thread that demuxes every stream, a stylizing stage on the caller's thread,
and an encoder thread that muxes. Video frames keep their timestamps (same count, rate and
duration as the input); audio and subtitle packets pass through untouched, in demux order.
The output is written under a temporary name and renamed only when complete.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..contract import check_frame_size
from ..errors import PalmbrushError
from . import require

EXTENSIONS = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".y4m", ".m4v", ".ts", ".mts"}
READS = EXTENSIONS | {".gif"}  # FFmpeg reads animated GIFs; we write only real video files
QUEUE = 4  # frames in flight between two stages
END = object()


@dataclass
class VideoResult:
    frames: int = 0
    seconds: float = 0.0
    width: int = 0
    height: int = 0
    fps: float = 0.0  # the clip's frame rate
    copied: list[str] = field(default_factory=list)  # streams passed through, e.g. "audio aac"
    dropped: list[str] = field(default_factory=list)  # streams the output format cannot hold
    stage_seconds: dict[str, float] = field(default_factory=dict)  # decode / stylize / encode
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
        raise PalmbrushError(f"{path}: not a readable video ({_reason(exc)})") from None
    if not container.streams.video:
        container.close()
        raise PalmbrushError(f"{path}: no video stream")
    return container


def _reason(exc) -> str:
    return getattr(exc, "strerror", None) or str(exc).splitlines()[0]


CODECS = {".webm": "libvpx-vp9", ".y4m": "rawvideo"}  # default video codec by output type


def _holds(suffix: str, stream) -> bool:
    """Whether an output file of this type can carry a copy of `stream`."""
    name = stream.codec_context.name
    if suffix == ".webm":
        return name in {"opus", "vorbis", "webvtt"}
    if suffix == ".y4m":
        return False
    if stream.type == "subtitle":
        return suffix == ".mkv" or (suffix in {".mp4", ".mov", ".m4v"} and name == "mov_text")
    return stream.type in ("audio", "subtitle")


def _expected_frames(container, video) -> int:
    """How many frames the container says the stream has (0 when it does not say)."""
    if video.frames:
        return video.frames
    rate = float(video.average_rate or 0)
    if video.duration and video.time_base:
        return round(float(video.duration * video.time_base) * rate)
    return round(container.duration / 1e6 * rate) if container.duration else 0


def upright_rgb(frame) -> np.ndarray:
    """A decoded frame as upright RGB (H, W, 3) uint8."""
    return _upright(frame.to_ndarray(format="rgb24"), getattr(frame, "rotation", 0) or 0)


def _upright(array: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a display rotation (degrees counter-clockwise, FFmpeg's convention)."""
    turns = (round(rotation / 90) % 4) if rotation else 0
    return np.ascontiguousarray(np.rot90(array, turns)) if turns else array


Progress = Callable[[int, int, float], None]


def stylize_video(src: Path, dst: Path, stylize: Callable[[np.ndarray], np.ndarray], *,
                  codec: str | None = None, crf: int = 18,
                  progress: Progress | None = None) -> VideoResult:  # fmt: skip
    """Stylize every frame of `src` into `dst`. `stylize` maps an RGB uint8 [H, W, 3] frame to
    one of the same shape; `progress(done, total, seconds)` is called after each frame."""
    av = require("av", "av")

    result = VideoResult()
    container = open_video(src)
    video = container.streams.video[0]
    total = video.frames or 0
    decoded: queue.Queue = queue.Queue(QUEUE)
    styled: queue.Queue = queue.Queue(QUEUE)
    stop = threading.Event()
    failure: list[BaseException] = []
    times = {"decode": 0.0, "stylize": 0.0, "encode": 0.0}

    def put(q: queue.Queue, item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    size: list[tuple[int, int]] = []  # the first frame's (width, height): every frame's

    def rgb(frame) -> np.ndarray:
        """The frame upright as RGB, at the first frame's size (a stream may change size; the
        first frame is held to the contract, before anything is encoded)."""
        rotation = getattr(frame, "rotation", 0) or 0
        if not size:
            check_frame_size(str(src), frame.width, frame.height, "video")
            size.append((frame.width, frame.height))
        if (frame.width, frame.height) != size[0]:
            result.rescaled += 1
            frame = frame.reformat(width=size[0][0], height=size[0][1])
        return _upright(frame.to_ndarray(format="rgb24"), rotation)

    def decode() -> None:
        try:
            start = time.perf_counter()
            for packet in container.demux():
                if stop.is_set():
                    return
                if packet.stream.index != video.index:
                    if packet.dts is not None and not put(decoded, ("packet", packet)):
                        return
                    continue
                for frame in packet.decode():
                    array = rgb(frame)
                    times["decode"] += time.perf_counter() - start
                    if not put(decoded, ("frame", frame.pts, frame.time_base, array)):
                        return
                    start = time.perf_counter()
        except av.FFmpegError as exc:
            failure.append(PalmbrushError(f"{src}: the video stream breaks ({_reason(exc)})"))
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)
        finally:
            put(decoded, END)

    with atomic_path(dst, keep_suffix=True) as tmp:
        try:
            output = av.open(tmp, "w")
        except av.FFmpegError as exc:
            container.close()
            raise PalmbrushError(
                f"{dst}: cannot write this kind of file ({_reason(exc)})"
            ) from None
        encoder_thread = decoder_thread = None
        try:
            streams = {}
            codec = codec or CODECS.get(dst.suffix.lower(), "libx264")
            for stream in container.streams:
                if stream.index == video.index:
                    continue
                label = f"{stream.type} {stream.codec_context.name}"
                try:
                    if not _holds(dst.suffix.lower(), stream):
                        raise ValueError(label)
                    streams[stream.index] = output.add_stream_from_template(stream)
                    result.copied.append(label)
                except (av.FFmpegError, ValueError, TypeError):
                    result.dropped.append(f"{label} (a {dst.suffix} file cannot hold it)")
            out_video = None

            def open_encoder(width: int, height: int):
                try:
                    stream = output.add_stream(codec, rate=video.average_rate or Fraction(30))
                except (av.FFmpegError, ValueError) as exc:
                    raise PalmbrushError(f"unknown or unusable codec '{codec}' ({exc})") from None
                stream.width, stream.height = width, height
                even = width % 2 == 0 and height % 2 == 0
                stream.pix_fmt = "yuv420p" if even else "yuv444p"
                stream.time_base = video.time_base
                if codec in ("libx264", "h264", "libx265"):
                    stream.options = {"crf": str(crf)}
                elif codec == "libvpx-vp9":
                    stream.options = {"crf": str(crf + 13), "b": "0", "row-mt": "1"}
                return stream

            def encode() -> None:
                nonlocal out_video
                waiting = []  # packets before the first frame: the header needs every stream
                try:
                    while True:
                        try:
                            item = styled.get(timeout=0.1)
                        except queue.Empty:
                            if stop.is_set():
                                return  # stopped (interrupt, or a failure elsewhere)
                            continue
                        if item is END:
                            break
                        start = time.perf_counter()
                        if item[0] == "packet":
                            packet, target = item[1], streams.get(item[1].stream.index)
                            if target is None:
                                continue  # a stream this output cannot carry
                            packet.stream = target
                            if out_video is None:
                                waiting.append(packet)
                            else:
                                output.mux(packet)
                        else:
                            _, pts, time_base, array = item
                            if out_video is None:
                                out_video = open_encoder(array.shape[1], array.shape[0])
                                for packet in waiting:
                                    output.mux(packet)
                            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
                            frame.pts, frame.time_base = pts, time_base
                            output.mux(out_video.encode(frame))
                        times["encode"] += time.perf_counter() - start
                    if out_video is not None:
                        output.mux(out_video.encode(None))
                except av.FFmpegError as exc:  # e.g. timestamps that go backwards
                    failure.append(PalmbrushError(f"{src}: cannot be re-encoded after frame "
                                                  f"{result.frames} ({_reason(exc)})"))  # fmt: skip
                    stop.set()
                except BaseException as exc:  # handed to the caller's thread
                    failure.append(exc)
                    stop.set()

            decoder_thread = threading.Thread(target=decode, name="decode", daemon=True)
            encoder_thread = threading.Thread(target=encode, name="encode", daemon=True)
            clock = time.perf_counter()
            decoder_thread.start()
            encoder_thread.start()
            while not failure:
                try:
                    item = decoded.get(timeout=0.1)
                except queue.Empty:
                    continue  # and look at `failure` again: a stage may have stopped
                if item is END:
                    break
                if item[0] == "frame":
                    start = time.perf_counter()
                    array = stylize(item[3])
                    times["stylize"] += time.perf_counter() - start
                    item = (*item[:3], array)
                    result.frames += 1
                    result.height, result.width = array.shape[:2]
                    if progress is not None:
                        progress(result.frames, total, time.perf_counter() - clock)
                if not put(styled, item):
                    break
            put(styled, END)
            encoder_thread.join()
            result.seconds = time.perf_counter() - clock
            if failure:
                raise failure[0]
            if result.frames == 0:
                raise PalmbrushError(f"{src}: no video frames could be decoded")
            expected = _expected_frames(container, video)
            if expected and result.frames < expected * 0.98 - 1:
                raise PalmbrushError(f"{src}: the video stream breaks after frame "
                                     f"{result.frames} of about {expected}")  # fmt: skip
        finally:
            stop.set()  # both threads see it within 0.1 s, or after the frame they are on:
            for thread in (encoder_thread, decoder_thread):  # the files close after they stop
                if thread is not None:
                    thread.join(timeout=30)
            container.close()
            output.close()
    result.fps = float(video.average_rate or 0)
    result.stage_seconds = dict(times)
    return result
