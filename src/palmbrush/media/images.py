"""Still images in and out: EXIF orientation honoured, size limits, atomic writes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..runtime.errors import PalmbrushError
from . import require

EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP",
           ".tif": "TIFF", ".tiff": "TIFF"}  # fmt: skip
MIN_SIDE = 32  # the style-model contract
MAX_PIXELS = 64_000_000  # 8K is 33 MP; beyond this the float intermediates do not fit


def read_image(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """An RGB uint8 [H, W, 3] array, turned upright by its EXIF orientation."""
    require("PIL", "pillow")
    from PIL import Image, ImageOps, UnidentifiedImageError

    label = name or str(source if not isinstance(source, bytes) else "<stdin>")
    try:
        handle = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
    except FileNotFoundError:
        raise PalmbrushError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise PalmbrushError(f"{label}: is a directory") from None
    Image.MAX_IMAGE_PIXELS = None  # our own limit (MAX_PIXELS) is checked before decoding
    with handle:
        try:
            image = Image.open(handle)
            _check_size(label, *image.size)
            image = ImageOps.exif_transpose(image).convert("RGB")
            return np.asarray(image)
        except UnidentifiedImageError:
            raise PalmbrushError(f"{label}: not an image, or a corrupt one") from None
        except (OSError, SyntaxError, ValueError) as exc:  # truncated or broken data
            raise PalmbrushError(f"{label}: corrupt image ({exc})") from None


def _check_size(label: str, width: int, height: int) -> None:
    if width < MIN_SIDE or height < MIN_SIDE:
        raise PalmbrushError(
            f"{label}: image is {width}x{height}; style models need at least {MIN_SIDE}x{MIN_SIDE}"
        )
    if width * height > MAX_PIXELS:
        raise PalmbrushError(
            f"{label}: image is {width}x{height} ({width * height / 1e6:.0f} MP); the limit is "
            f"{MAX_PIXELS / 1e6:.0f} MP"
        )


def encode_image(array: np.ndarray, suffix: str = ".png") -> bytes:
    """The image as bytes in the format its file suffix names."""
    Image = require("PIL.Image", "pillow")

    fmt = FORMATS.get(suffix.lower())
    if fmt is None:
        raise PalmbrushError(f"unknown image format '{suffix}' (use {', '.join(sorted(FORMATS))})")
    buffer = io.BytesIO()
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def write_image(path: Path, array: np.ndarray) -> None:
    """Write atomically: the file appears complete or not at all."""
    data = encode_image(array, path.suffix)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
