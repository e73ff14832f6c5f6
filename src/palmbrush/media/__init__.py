"""Images, video files and cameras in and out of style models; the filters appended to them."""

from __future__ import annotations

import importlib

from ..errors import PalmbrushError

# x264's (and x265's) presets, fastest first; the default keeps up in real time with the model
# beside it on 2 cores (bench/video.py, docs/video-bench.md)
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                "slower", "veryslow")  # fmt: skip
X264_PRESET = "superfast"


def require(module: str, package: str, extra: str = "media"):
    """Import an optional dependency, or fail with one line saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise PalmbrushError(
            f"this needs {package}: pip install 'palmbrush[{extra}]' (or pip install {package})"
        ) from None
