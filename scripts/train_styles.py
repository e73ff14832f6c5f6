"""Train the built-in styles (src/palmbrush/styles/) from the paintings in ../shared/data.

python scripts/train_styles.py --data ../shared/data --work styles-work/ [--only great-wave]
    [--base starry-night] [--base-steps 800] [--steps 500] [--device cuda] [--force]
    [--preset johnson --out johnson-styles/]   # the same recipe on another network, elsewhere

The recipe (docs/styles.md says how the lab chose it): one base network is trained from scratch
on the --base painting, then every style, the base's own included, starts from its weights and
trains --steps more on its painting (a warm start: the base has already learnt to keep a photo
and to hold still under motion; each style then learns its painting). All the content photos
train but bsds500/test, which is held aside for the A/B and the metrics
(scripts/measure_styles.py). Each model is exported with its catalogue metadata into the
package (or --out), with a thumbnail of its painting. Styles whose model was trained with this
recipe are skipped (--force retrains); checkpoints live in --work, so a killed run resumes where
it stopped.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import onnx
from PIL import Image

from palmbrush.styles import catalogue
from palmbrush.train.export import export_net, metadata
from palmbrush.train.loop import train
from palmbrush.train.settings import TrainSettings

RECIPE = 3  # bump when the recipe (RECIPE_SETTINGS) changes: models made with another retrain
HELD_ASIDE = ["bsds500/test"]  # the A/B's and the metrics' photos: never trained on
# The shipped recipe is training's default (TrainSettings): one place for both.
RECIPE_KEYS = ("size", "batch", "lr", "lr_floor", "content_weight", "style_weight", "tv_weight",
               "temporal_weight", "style_size")  # fmt: skip
DEFAULTS = TrainSettings(Path(), Path(), Path())
RECIPE_SETTINGS = {k: getattr(DEFAULTS, k) for k in RECIPE_KEYS}


def thumbnail(painting: Path, out: Path, side: int = 128) -> None:
    with Image.open(painting) as image:
        image = image.convert("RGB")
        image.thumbnail((side, side), Image.Resampling.LANCZOS)
        out.parent.mkdir(parents=True, exist_ok=True)
        image.save(out, quality=82, optimize=True)


def trained_with_recipe(model: Path) -> bool:
    if not model.exists():
        return False
    props = {p.key: p.value for p in onnx.load(model, load_external_data=False).metadata_props}
    return props.get("recipe") == str(RECIPE)


def settings(args, painting: Path, out: Path, steps: int, init: Path | None) -> TrainSettings:
    return TrainSettings(
        style=painting, content=args.data / "content", exclude=HELD_ASIDE, out=out, steps=steps,
        loss_net=f"squeezenet:{args.data}/weights/squeezenet_v1.1_notop_keras_tf.h5",
        checkpoint=out.with_suffix(".ckpt"), preview_every=0, init=init, device=args.device,
        preset=args.preset,
        workers=args.workers, **RECIPE_SETTINGS,
    )  # fmt: skip


def run(s: TrainSettings, log_name: str, work: Path):
    """Train (resuming a checkpoint left by a killed run); log the time per style."""
    start = time.perf_counter()
    ckpt = s.checkpoint
    net, history = train(s, resume=ckpt if ckpt.exists() else None, log=lambda _: None,
                         overwrite=True)  # fmt: skip  # this script decides what to retrain
    minutes = (time.perf_counter() - start) / 60
    if not history:  # its checkpoint had every step: exported again, nothing trained
        print(f"{log_name}: {s.steps} steps trained before (checkpoint {ckpt})", flush=True)
        return net, None
    tail = history[-20:]
    entry = {"name": log_name, "minutes": round(minutes, 2), "steps": s.steps,
             "loss": sum(tail) / len(tail), "device": s.device}  # fmt: skip
    with open(work / "log.jsonl", "a") as f:
        f.write(json.dumps(entry) + "\n")
    print(f"{log_name}: {minutes:.1f} min, final loss {entry['loss']:.3f}", flush=True)
    return net, minutes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--work", type=Path, default=Path("styles-work"))
    parser.add_argument("--only", help="comma-separated style names (default: all)")
    parser.add_argument("--base", default="starry-night", help="the painting the base learns")
    parser.add_argument("--base-steps", type=int, default=800)
    parser.add_argument("--steps", type=int, default=500, help="steps per style after the base")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--workers", type=int, default=1, help="data-loading processes")
    parser.add_argument("--preset", default=DEFAULTS.preset, help="the network (palmbrush models)")
    parser.add_argument("--out", type=Path, help="write the models here (default: the package)")
    parser.add_argument("--force", action="store_true", help="retrain styles that exist")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    styles = catalogue()
    names = args.only.split(",") if args.only else list(styles)
    models = {n: (args.out / f"{n}.onnx" if args.out else styles[n].model) for n in names}
    todo = [n for n in names if args.force or not trained_with_recipe(models[n])]
    for name in names:
        thumbnail(args.data / "styles" / styles[name].image, styles[name].thumbnail)
    if not todo:
        return
    base = settings(args, args.data / "styles" / styles[args.base].image,
                    args.work / "base.onnx", args.base_steps, None)  # fmt: skip
    if not (base.checkpoint.exists() and _step(base.checkpoint, base) >= args.base_steps):
        run(base, f"base ({args.base})", args.work)
    for name in todo:
        style = styles[name]
        s = settings(args, args.data / "styles" / style.image, args.work / f"{name}.onnx",
                     args.steps, base.checkpoint)  # fmt: skip
        if s.checkpoint.exists() and _step(s.checkpoint, s) >= args.steps and args.force:
            s.checkpoint.unlink()  # a finished run's: retrain (a killed run's resumes)
        net, minutes = run(s, name, args.work)
        record = s.resolved().to_dict()
        for key in ("style", "content", "loss_net", "checkpoint", "init"):  # no local paths
            record[key] = Path(record[key]).name if record[key] else None
        extra = {
            "style": name, "painting": style.painting, "painter": style.painter,
            "year": style.year, "licence": style.licence, "recipe": str(RECIPE),
            "base": f"{args.base}, {args.base_steps} steps",
        } | ({"train_minutes": f"{minutes:.1f}"} if minutes is not None else {})  # fmt: skip
        models[name].parent.mkdir(parents=True, exist_ok=True)
        export_net(net, models[name], metadata(s.preset, record, extra))


def _step(ckpt: Path, s: TrainSettings) -> int:
    """The step a checkpoint in --work reached; refused if another recipe, preset or painting
    made it (a different --base, RECIPE or --preset in the same --work)."""
    from palmbrush.train import checkpoint

    state = checkpoint.load(ckpt, (*checkpoint.WEIGHTS, "settings"))
    made, wanted = state["settings"], s.to_dict()
    keys = ["preset", *RECIPE_SETTINGS]
    differs = [k for k in keys if made.get(k) != wanted[k]]
    if Path(made.get("style", "")).name != s.style.name:
        differs.append("style")
    if differs:
        raise SystemExit(f"{ckpt} was trained with other settings ({', '.join(differs)}): "
                         "use another --work, or delete it")  # fmt: skip
    return state["step"]


if __name__ == "__main__":
    main()
