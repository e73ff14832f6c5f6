"""The two ends of the video pipeline: a demuxer that decodes, a muxer that encodes.

Items between them are ("packet", packet) for the streams copied as they are (audio,
subtitles), in demux order, and ("frame", pts, time_base, picture) for video frames, where the
picture is an upright RGB array (H, W, 3) or, on the YUV path, the codec's planes (Y, U, V) as
2-D arrays, so no frame is converted to RGB and back outside the model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..contract import check_frame_size
from ..errors import PalmbrushError
from . import X264_PRESET, require

CODECS = {".webm": "libvpx-vp9", ".y4m": "rawvideo"}  # default video codec by output type
X264 = ("libx264", "h264", "libx265")  # codecs that take crf and preset
PLANAR_IN = ("yuv420p",)  # decoded formats the YUV path reads as they are


@dataclass
class Encoding:
    codec: str | None = None  # None: by the output's type (CODECS), else H.264
    crf: int = 18
    preset: str = X264_PRESET  # x264/x265 only
    threads: int | None = None  # the encoder's threads; None: the codec's own choice


def reason(exc) -> str:
    return getattr(exc, "strerror", None) or str(exc).splitlines()[0]


def upright(array: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a display rotation (degrees counter-clockwise, FFmpeg's convention)."""
    turns = (round(rotation / 90) % 4) if rotation else 0
    return np.ascontiguousarray(np.rot90(array, turns)) if turns else array


def planes(frame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A yuv420p frame's Y, U and V planes, each 2-D, copied out of FFmpeg's buffers."""
    height, width = frame.height, frame.width
    data = frame.to_ndarray()  # (H * 3 / 2, W): Y, then U, then V
    quarter = (height // 2, width // 2)
    chroma = data[height:].reshape(2, -1)
    return data[:height], chroma[0].reshape(quarter), chroma[1].reshape(quarter)


class Demuxer:
    """Every packet of `container` in demux order, the video stream's decoded. Every frame is
    made the first frame's size (a stream may change size; the first frame is held to the
    contract before anything is encoded). `yuv`: read yuv420p frames as planes."""

    def __init__(self, container, label: str, yuv: bool = False):
        self.container, self.label, self.yuv = container, label, yuv
        self.video = container.streams.video[0]
        self.size: tuple[int, int] | None = None  # the first frame's (width, height)
        self.colour = ""  # 'yuv420p' or 'rgb (why)': which path the frames take
        self.rescaled = 0

    def items(self) -> Iterator[tuple]:
        av = require("av", "av")
        try:
            for packet in self.container.demux():
                if packet.stream.index != self.video.index:
                    if packet.dts is not None:
                        yield ("packet", packet)
                    continue
                for frame in packet.decode():
                    yield ("frame", frame.pts, frame.time_base, self.picture(frame))
        except av.FFmpegError as exc:
            raise PalmbrushError(f"{self.label}: the video stream breaks ({reason(exc)})") from None

    def picture(self, frame):
        """The frame upright, at the first frame's size: RGB, or planes on the YUV path."""
        if self.size is None:
            check_frame_size(self.label, frame.width, frame.height, "video")
            self.size = (frame.width, frame.height)
            self.colour = self._colour(frame)
        if (frame.width, frame.height) != self.size:
            self.rescaled += 1
            frame = frame.reformat(width=self.size[0], height=self.size[1])
        rotation = getattr(frame, "rotation", 0) or 0
        if self.colour == "yuv420p":
            if frame.format.name not in PLANAR_IN:  # a later frame in another format
                frame = frame.reformat(format="yuv420p")
            return tuple(upright(p, rotation) for p in planes(frame))
        return upright(frame.to_ndarray(format="rgb24"), rotation)

    def _colour(self, frame) -> str:
        if not self.yuv:
            return "rgb (asked for)"
        if frame.format.name not in PLANAR_IN:
            return f"rgb (the clip is {frame.format.name})"
        if frame.width % 2 or frame.height % 2:
            return "rgb (odd frame size)"
        if str(getattr(frame, "color_range", "")).endswith(("JPEG", "2")):
            return "rgb (full-range YUV)"
        return "yuv420p"


class Muxer:
    """Writes items to `output`: copied streams' packets as they come, video frames encoded.
    The encoder opens at the first frame (its size); packets before it wait for it (the
    header needs every stream)."""

    def __init__(self, container, output, suffix: str, encoding: Encoding, label: str,
                 on_frame: Callable[[np.ndarray | tuple], None] | None = None):  # fmt: skip
        self.av = require("av", "av")
        self.output, self.encoding, self.label, self.on_frame = output, encoding, label, on_frame
        self.video = container.streams.video[0]
        self.codec = encoding.codec or CODECS.get(suffix, "libx264")
        self.copied, self.dropped, self.streams = [], [], {}
        for stream in container.streams:
            if stream.index != self.video.index:
                self._copy(stream, suffix)
        self.out_video = None
        self.waiting: list = []
        self.frames = 0

    def _copy(self, stream, suffix: str) -> None:
        label = f"{stream.type} {stream.codec_context.name}"
        try:
            if not _holds(suffix, stream):
                raise ValueError(label)
            self.streams[stream.index] = self.output.add_stream_from_template(stream)
            self.copied.append(label)
        except (self.av.FFmpegError, ValueError, TypeError):
            self.dropped.append(f"{label} (a {suffix} file cannot hold it)")

    def write(self, item: tuple) -> None:
        try:
            if item[0] == "packet":
                self._packet(item[1])
            else:
                self._frame(*item[1:])
        except self.av.FFmpegError as exc:  # e.g. timestamps that go backwards
            raise PalmbrushError(f"{self.label}: cannot be re-encoded after frame {self.frames} "
                                 f"({reason(exc)})") from None  # fmt: skip

    def finish(self) -> None:
        """Flush the encoder (its delayed frames)."""
        if self.out_video is not None:
            try:
                self.output.mux(self.out_video.encode(None))
            except self.av.FFmpegError as exc:
                raise PalmbrushError(
                    f"{self.label}: cannot be re-encoded ({reason(exc)})"
                ) from None

    def _packet(self, packet) -> None:
        target = self.streams.get(packet.stream.index)
        if target is None:
            return  # a stream this output cannot carry
        packet.stream = target
        if self.out_video is None:
            self.waiting.append(packet)
        else:
            self.output.mux(packet)

    def _frame(self, pts, time_base, picture) -> None:
        yuv = isinstance(picture, tuple)
        height, width = (picture[0] if yuv else picture).shape[:2]
        if self.out_video is None:
            self.out_video = self._open(width, height)
            for packet in self.waiting:
                self.output.mux(packet)
            self.waiting = []
        if yuv:
            stacked = np.concatenate([p.reshape(-1) for p in picture]).reshape(-1, width)
            frame = self.av.VideoFrame.from_ndarray(stacked, format="yuv420p")
        else:
            frame = self.av.VideoFrame.from_ndarray(picture, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        self.output.mux(self.out_video.encode(frame))
        self.frames += 1
        if self.on_frame is not None:
            self.on_frame(picture)

    def _open(self, width: int, height: int):
        try:
            stream = self.output.add_stream(
                self.codec, rate=self.video.average_rate or Fraction(30)
            )
        except (self.av.FFmpegError, ValueError) as exc:
            raise PalmbrushError(f"unknown or unusable codec '{self.codec}' ({exc})") from None
        stream.width, stream.height = width, height
        even = width % 2 == 0 and height % 2 == 0
        stream.pix_fmt = "yuv420p" if even else "yuv444p"
        stream.time_base = self.video.time_base
        stream.options = self._options()
        return stream

    def _options(self) -> dict[str, str]:
        e = self.encoding
        threads = {} if e.threads is None else {"threads": str(e.threads)}
        if self.codec in X264:
            return {"crf": str(e.crf), "preset": e.preset, **threads}
        if self.codec == "libvpx-vp9":
            return {"crf": str(e.crf + 13), "b": "0", "row-mt": "1", **threads}
        return threads


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
