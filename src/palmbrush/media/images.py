"""Still images in and out: EXIF orientation honoured, 16-bit and alpha kept, atomic writes."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..contract import check_frame_size
from ..errors import PalmbrushError
from . import require

EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP",
           ".tif": "TIFF", ".tiff": "TIFF"}  # fmt: skip
ALPHA_FORMATS = {"PNG", "WEBP", "TIFF"}  # the formats that can carry transparency
WIDE_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N"}  # Pillow's 16/32-bit integer grey


@dataclass
class Picture:
    rgb: np.ndarray  # (H, W, 3) uint8
    alpha: np.ndarray | None = None  # (H, W) uint8; None when every pixel is opaque


def read_image(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """An RGB uint8 [H, W, 3] array, turned upright by its EXIF orientation."""
    return read_picture(source, name).rgb


def read_picture(source: str | Path | bytes, name: str | None = None) -> Picture:
    """The image's colours as 8-bit RGB and its transparency, if any, turned upright."""
    require("PIL", "pillow")
    from PIL import Image, ImageOps, UnidentifiedImageError

    label = name or str(source if not isinstance(source, bytes) else "<stdin>")
    try:
        handle = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
    except FileNotFoundError:
        raise PalmbrushError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise PalmbrushError(f"{label}: is a directory") from None
    Image.MAX_IMAGE_PIXELS = None  # our own limit (the contract's) is checked before decoding
    with handle:
        try:
            image = Image.open(handle)
            check_frame_size(label, *image.size)
            _refuse_animation(image, label)
            return _picture(ImageOps.exif_transpose(image), label)
        except UnidentifiedImageError:
            raise PalmbrushError(f"{label}: not an image, or a corrupt one") from None
        except (OSError, SyntaxError, ValueError) as exc:  # truncated or broken data
            raise PalmbrushError(f"{label}: corrupt image ({exc})") from None


def frame_count(path: Path) -> int:
    """How many frames an image file holds (1 for a still; 0 if it cannot be read)."""
    require("PIL", "pillow")
    from PIL import Image

    try:
        with Image.open(path) as image:
            return getattr(image, "n_frames", 1)
    except (OSError, SyntaxError, ValueError):
        return 0


def _refuse_animation(image, label: str) -> None:
    """A picture with several frames is a video: GIFs are read as one (a video output), other
    animated formats are refused."""
    frames = getattr(image, "n_frames", 1)
    if frames <= 1:
        return
    if image.format == "GIF":
        raise PalmbrushError(f"{label}: an animated GIF ({frames} frames); stylize it as a "
                             "video by naming a video output, e.g. -o out.mp4")  # fmt: skip
    raise PalmbrushError(f"{label}: an animated {image.format} ({frames} frames); convert it "
                         "to a video (e.g. mp4) and stylize that")  # fmt: skip


def _picture(image, label: str) -> Picture:
    """Pillow image -> Picture: 16-bit grey scaled (not clipped) to 8 bits, alpha split off."""
    if image.mode in WIDE_MODES:
        wide = np.asarray(image).astype(np.int64)
        grey = ((np.clip(wide, 0, 65535) * 255 + 32767) // 65535).astype(np.uint8)
        return Picture(np.repeat(grey[:, :, None], 3, axis=2))
    if image.mode == "F":
        raise PalmbrushError(f"{label}: a floating-point image; save it as 8- or 16-bit")
    transparent = "A" in image.getbands() or "transparency" in image.info
    if not transparent:
        return Picture(np.asarray(image.convert("RGB")))
    rgba = np.asarray(image.convert("RGBA"))
    alpha = rgba[:, :, 3]
    return Picture(np.ascontiguousarray(rgba[:, :, :3]), None if alpha.min() == 255 else alpha)


def encode_image(array: np.ndarray, suffix: str = ".png", alpha: np.ndarray | None = None
                 ) -> bytes:  # fmt: skip
    """The image as bytes in the format its file suffix names; `alpha` where it can hold one."""
    Image = require("PIL.Image", "pillow")

    fmt = image_format(suffix)
    if alpha is not None and fmt in ALPHA_FORMATS:
        array = np.concatenate([array, alpha[:, :, None]], axis=2)
    buffer = io.BytesIO()
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def image_format(suffix: str, label: str = "output") -> str:
    """Pillow's format name for a file suffix, or one line listing the ones we write."""
    fmt = FORMATS.get(suffix.lower())
    if fmt is None:
        kind = f"unknown image type '{suffix}'" if suffix else "no image type in the name"
        raise PalmbrushError(f"{label}: {kind} (use {', '.join(sorted(FORMATS))})")
    return fmt


def write_image(path: Path, array: np.ndarray, alpha: np.ndarray | None = None) -> None:
    """Write atomically: the file appears complete or not at all."""
    data = encode_image(array, path.suffix, alpha)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def fit(rgb: np.ndarray, size: int, factor: int = 1) -> np.ndarray:
    """Resize so the long side is `size`, both sides multiples of `factor`."""
    from PIL import Image

    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    nh = max(factor, round(h * scale / factor) * factor)
    nw = max(factor, round(w * scale / factor) * factor)
    return np.asarray(Image.fromarray(rgb).resize((nw, nh), Image.Resampling.BICUBIC))


def at_most(rgb: np.ndarray, side: int | None) -> np.ndarray:
    """The picture scaled down so its long side is at most `side` (as it is if already so)."""
    return fit(rgb, side) if side and max(rgb.shape[:2]) > side else rgb
