"""Before/after sheet: photos and what a style model file makes of them, on the palmbrush runtime.

python scripts/before_after.py MODEL.onnx PHOTO_DIR -o docs/sheet.png [--count 4] [--width 240]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from palmbrush.runtime import load
from palmbrush.train.data import find_images, read_rgb
from palmbrush.train.preview import contact_sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("photos", type=Path)
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--count", type=int, default=4)
    parser.add_argument("--width", type=int, default=240, help="width of each tile")
    parser.add_argument("--style", type=Path, help="the painting, shown beside the first row")
    parser.add_argument("--colors", type=int, default=0, help="quantize to a palette (smaller PNG)")
    args = parser.parse_args()
    predictor = load(args.model)
    paths = find_images(args.photos)
    rows = []
    for path in paths[:: max(1, len(paths) // args.count)][: args.count]:
        photo = read_rgb(path)
        h = round(photo.shape[0] * args.width / photo.shape[1])
        photo = np.asarray(Image.fromarray(photo).resize((args.width, h), Image.Resampling.LANCZOS))
        painted = predictor.run({"frame": photo[None]})["stylized"][0]
        rows.append([photo, painted])
    if args.style:
        style = read_rgb(args.style)
        h = round(style.shape[0] * args.width / style.shape[1])
        rows[0].append(np.asarray(Image.fromarray(style).resize((args.width, h))))
    sheet = contact_sheet(rows, ["photo", "palmbrush", "painting"][: len(rows[0])])
    if args.colors:
        sheet = sheet.quantize(
            args.colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
