"""Images, video files and cameras in and out of style models; the filters appended to them."""

from __future__ import annotations

import importlib

from ..errors import PalmbrushError


def require(module: str, package: str, extra: str = "media"):
    """Import an optional dependency, or fail with one line saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise PalmbrushError(
            f"this needs {package}: pip install 'palmbrush[{extra}]' (or pip install {package})"
        ) from None
