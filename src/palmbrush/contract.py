"""The style-model contract (../shared/ARCHITECTURE.md), defined once for every layer.

A style model maps input `frame`, uint8 RGB [1, H, W, 3], to output `stylized`, uint8 RGB of
the same shape, for any H, W >= MIN_SIDE. Photos, video frames and sheets are held to the
limits here, so a picture refused in one place is refused in all; camera frames and training
crops share the minimum (and have tighter maxima of their own).
"""

from __future__ import annotations

from .errors import PalmbrushError

INPUT, OUTPUT = "frame", "stylized"
MIN_SIDE = 32  # pixels: the smallest frame every style model must accept
MAX_SIDE = 16384  # pixels on either side
MAX_PIXELS = 64_000_000  # 8K is 33 MP; beyond this a frame's float intermediates do not fit
MAX_THREADS = 1024  # a thread count beyond this is a typo, not a machine


def check_frame_size(label: str, width: int, height: int, what: str = "image") -> None:
    """Refuse a frame the contract does not cover, in one line naming it and the limits."""
    if width < MIN_SIDE or height < MIN_SIDE:
        raise PalmbrushError(
            f"{label}: {what} is {width}x{height}; style models need at least {MIN_SIDE}x{MIN_SIDE}"
        )
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise PalmbrushError(
            f"{label}: {what} is {width}x{height} ({width * height / 1e6:.0f} MP); the limit is "
            f"{MAX_PIXELS / 1e6:.0f} MP and {MAX_SIDE} px a side"
        )
