"""Train the built-in styles (src/palmbrush/styles/) from the paintings in ../shared/data.

python scripts/train_styles.py --data ../shared/data --work styles-work/ [--only great-wave]
    [--preset femto] [--steps 600] [--size 256] [--init styles-work/starry-night.ckpt]

Each catalogue entry is trained with the same settings (docs/styles.md says which and why),
exported with its catalogue metadata into the package, and given a thumbnail of its painting.
Styles whose model exists are skipped (--force retrains); checkpoints live in --work, so a
killed run resumes. --init warm-starts every style from another style's checkpoint.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from PIL import Image

from palmbrush.styles import catalogue
from palmbrush.train.export import export_net, metadata
from palmbrush.train.loop import train
from palmbrush.train.settings import TrainSettings

WEIGHTS = {"content_weight": 1.0, "style_weight": 1.5, "tv_weight": 1.0}


def thumbnail(painting: Path, out: Path, side: int = 128) -> None:
    with Image.open(painting) as image:
        image = image.convert("RGB")
        image.thumbnail((side, side), Image.Resampling.LANCZOS)
        out.parent.mkdir(parents=True, exist_ok=True)
        image.save(out, quality=82, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--work", type=Path, default=Path("styles-work"))
    parser.add_argument("--only", help="comma-separated style names (default: all)")
    parser.add_argument("--preset", default="femto")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--style-weight", type=float, default=WEIGHTS["style_weight"])
    parser.add_argument("--init", type=Path, help="warm-start from this checkpoint")
    parser.add_argument("--force", action="store_true", help="retrain styles that exist")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    styles = catalogue()
    for name in args.only.split(",") if args.only else styles:
        style = styles[name]
        thumbnail(args.data / "styles" / style.image, style.thumbnail)
        if style.model.exists() and not args.force:
            continue
        ckpt = args.work / f"{name}.ckpt"
        settings = TrainSettings(
            style=args.data / "styles" / style.image, content=args.data / "content/bsds500/train",
            out=args.work / f"{name}.onnx", preset=args.preset, size=args.size, steps=args.steps,
            loss_net=f"squeezenet:{args.data}/weights/squeezenet_v1.1_notop_keras_tf.h5",
            checkpoint=ckpt, preview_every=0, init=args.init,
            **{**WEIGHTS, "style_weight": args.style_weight},
        )  # fmt: skip
        start = time.perf_counter()
        net, history = train(
            settings, resume=ckpt if ckpt.exists() else None, log=lambda _: None, overwrite=True
        )  # this script decides what to retrain
        minutes = (time.perf_counter() - start) / 60
        record = settings.resolved().to_dict()
        for key in ("style", "content", "loss_net", "checkpoint", "init"):  # no local paths
            record[key] = Path(record[key]).name if record[key] else None
        extra = {
            "style": name,
            "painting": style.painting,
            "painter": style.painter,
            "year": style.year,
            "licence": style.licence,
            "train_minutes": f"{minutes:.1f}",
        }
        export_net(net, style.model, metadata(args.preset, record, extra))
        log = {"name": name, "minutes": minutes, "loss": sum(history[-20:]) / 20}
        with open(args.work / "log.jsonl", "a") as f:
            f.write(json.dumps(log) + "\n")
        print(f"{name}: {minutes:.1f} min, final loss {log['loss']:.3f}", flush=True)


if __name__ == "__main__":
    main()
