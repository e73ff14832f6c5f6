"""Architecture and loss-weight sweep for the default style preset (issue 6).

Every candidate is trained the same way on one painting (same steps, crop size, seed, data),
exported to a style model file, then measured: the palmbrush runtime's speed at 1280x720 and
640x480 (cpu engine, 2 threads), parameters and file size, and quality on held-out BSDS500 test
photos: the content error (photo vs painting of it) and the style error (its Grams vs the
painting's) under the training loss network, the same relative errors training minimises.
Training runs are skipped when their model exists, so the sweep resumes after an interruption.

    python bench/sweep.py --data ../shared/data --out sweep/            # train, measure, table
    python bench/sweep.py --data ../shared/data --out sweep/ --only femto,pico --steps 300
    python bench/sweep.py --data ../shared/data --out sweep/ --rows --table docs/sweep.md
    python bench/sweep.py ... --sheet docs/sweep-sheet.jpg --table docs/sweep.md

Needs palmbrush[train] and the shared data (paintings, BSDS500, SqueezeNet weights).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

# The base of the femto family: early 5x5 stride-2 conv, one more stride-2 conv, residual
# blocks at 1/4 size, one nearest+conv up to 1/2, and a head that upsamples (nearest x2 + 3x3
# conv): nothing but the head runs at full size. The femto preset is the pick: 2 blocks.
BASE = {"widths": (8, 16), "blocks": 1, "first_stride": 2, "first_kernel": 5, "last_kernel": 3,
        "last_up": "head"}  # fmt: skip
# name: (architecture changes from BASE, or a preset name; loss-weight changes)
CANDIDATES: dict[str, tuple[dict | str, dict]] = {
    "femto-1b": ({}, {}),
    "femto": ({"blocks": 2}, {}),
    "femto-1b-12": ({"widths": (12, 16)}, {}),
    "femto-1b-x8": ({"widths": (8, 16, 24)}, {}),
    "femto-1b-shuffle": ({"up": "shuffle"}, {}),
    "femto-1b-style1": ({}, {"style_weight": 1.0}),
    "femto-1b-style3": ({}, {"style_weight": 3.0}),
    "femto-1b-tv3": ({}, {"tv_weight": 3.0}),
    "pico": ("pico", {}),
    "johnson": ("johnson", {}),
}
BASE_WEIGHTS = {"content_weight": 1.0, "style_weight": 1.5, "tv_weight": 1.0}


def _config(spec):
    from palmbrush.models import PRESETS, StyleNetConfig

    return PRESETS[spec] if isinstance(spec, str) else StyleNetConfig(**{**BASE, **spec})


def train_one(name: str, args) -> None:
    from palmbrush.models import PRESETS
    from palmbrush.train.export import export_net, metadata
    from palmbrush.train.loop import train
    from palmbrush.train.settings import TrainSettings

    spec, weights = CANDIDATES[name]
    preset = spec if isinstance(spec, str) else f"sweep-{name}"
    PRESETS.setdefault(preset, _config(spec))
    out = args.out / f"{name}.onnx"
    settings = TrainSettings(
        style=args.data / "styles" / args.style, content=args.data / "content/bsds500/train",
        out=out, preset=preset, size=args.size, steps=args.steps,
        loss_net=f"squeezenet:{_squeezenet(args.data)}", preview_every=0,
        **{**BASE_WEIGHTS, **weights},
    )  # fmt: skip
    start = time.perf_counter()
    net, history = train(
        settings, resume=_resumable(settings), log=lambda line: None, overwrite=True
    )  # a trial's files are the sweep's own
    minutes = (time.perf_counter() - start) / 60
    extra = {"architecture": json.dumps(net.cfg.to_dict())}
    export_net(net, out, metadata(preset, settings.resolved().to_dict(), extra))
    log = {"minutes": minutes, "final_loss": float(np.mean(history[-20:]))}
    (args.out / f"{name}.train.json").write_text(json.dumps(log))
    print(f"trained {name}: {minutes:.1f} min, loss {log['final_loss']:.3f}", flush=True)


def _resumable(settings):
    ckpt = settings.resolved().checkpoint
    return ckpt if ckpt.exists() else None


def _squeezenet(data: Path) -> Path:
    return data / "weights" / "squeezenet_v1.1_notop_keras_tf.h5"


def _test_photos(args) -> list[np.ndarray]:
    from palmbrush.train.data import find_images, read_rgb

    paths = find_images(args.data / "content/bsds500/test")
    return [read_rgb(p) for p in paths[:: max(1, len(paths) // args.photos)][: args.photos]]


def quality(model: Path, photos: list[np.ndarray], args) -> dict:
    """Mean content and style error of the model's paintings of `photos` (each photo at its
    own size, 481x321), under SqueezeNet seen 2x as in training."""
    import torch

    from palmbrush.models.weights import load_loss_net
    from palmbrush.runtime import load
    from palmbrush.train.data import read_rgb
    from palmbrush.train.loop import style_targets
    from palmbrush.train.losses import content_loss, loss_view, style_loss
    from palmbrush.train.settings import TrainSettings

    s = TrainSettings(style=Path(), content=Path(), out=Path("x.onnx"),
                      loss_net=f"squeezenet:{_squeezenet(args.data)}").resolved()  # fmt: skip
    net = load_loss_net(s.loss_net)
    targets = style_targets(net, read_rgb(args.data / "styles" / args.style), s, "cpu")
    predictor = load(model, engines="cpu")
    content, style = [], []
    with torch.no_grad():
        for photo in photos:
            painted = predictor.run({"frame": photo[None]})["stylized"][0]
            x, y = (torch.from_numpy(a.copy()).permute(2, 0, 1)[None].float() / 255
                    for a in (photo, painted))  # fmt: skip
            fy = net(loss_view(y, s.loss_scale, (0, 0)), [*s.content_layers, *s.style_layers])
            fx = net(loss_view(x, s.loss_scale, (0, 0)), s.content_layers)
            content.append(content_loss(fy, fx).item())
            style.append(style_loss(fy, targets).item())
    return {"content": float(np.mean(content)), "style": float(np.mean(style))}


def speed(model: Path, size: str, repeat: int) -> float:
    """Median ms per frame on the cpu engine, 2 threads (random frame; speed ignores content)."""
    from palmbrush.runtime import load

    width, height = (int(v) for v in size.split("x"))
    frame = np.random.default_rng(0).integers(0, 256, (1, height, width, 3), dtype=np.uint8)
    predictor = load(model, engines="cpu", threads=2)
    predictor.run({"frame": frame})
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        predictor.run({"frame": frame})
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def measure_one(name: str, photos, args) -> dict:
    from palmbrush.models import StyleNet, parameter_count

    model = args.out / f"{name}.onnx"
    cfg = _config(CANDIDATES[name][0])
    row = {
        "name": name,
        "params": parameter_count(StyleNet(cfg)),
        "kb": model.stat().st_size / 1024,
    }
    row |= json.loads((args.out / f"{name}.train.json").read_text())
    row |= {f"ms_{s}": speed(model, s, args.repeat) for s in ("1280x720", "640x480")}
    row |= quality(model, photos, args)
    row["config"] = {**cfg.to_dict(), **BASE_WEIGHTS, **CANDIDATES[name][1]}
    print(f"measured {name}: {1e3 / row['ms_1280x720']:.1f} fps at 1280x720", flush=True)
    return row


def table(rows: list[dict], args) -> str:
    head = (f"Sweep: {args.style}, {args.steps} steps of {args.size} px crops (batch 4), SqueezeNet"
            f" loss; errors on {args.photos} BSDS500 test photos (lower is better).\n\n"
            "| candidate | widths | blocks | up | style w | tv w | params | KB | fps 1280x720 | "
            "fps 640x480 | content err | style err | train min |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")  # fmt: skip
    lines = []
    for r in rows:
        c = r["config"]
        up = c["up"] + ("" if c["first_stride"] == 1 else f" / {c['last_up']}")
        lines.append(
            f"| {r['name']} | {'-'.join(map(str, c['widths']))} | {c['blocks']} | {up} | "
            f"{c['style_weight']:g} | {c['tv_weight']:g} | {r['params']:,} | {r['kb']:.0f} | "
            f"{1e3 / r['ms_1280x720']:.1f} | {1e3 / r['ms_640x480']:.1f} | {r['content']:.3f} | "
            f"{r['style']:.3f} | {r['minutes']:.1f} |"
        )
    return head + "\n".join(lines) + "\n"


def sheet(names: list[str], args) -> None:
    """Rows: three Big Buck Bunny frames (CC-BY 3.0; BSDS500 photos are research-only and stay
    out of the repository); columns: the frame, then each candidate's painting of it."""
    import av

    from palmbrush.media.sheet import labelled_grid
    from palmbrush.runtime import load

    with av.open(str(args.data / "video" / "bigbuckbunny.mp4")) as clip:
        frames = [f for i, f in enumerate(clip.decode(video=0)) if i in (0, 66, 120)]
    small = [
        f.reformat(284, 160, format="rgb24", interpolation="AREA").to_ndarray() for f in frames
    ]
    predictors = {name: load(args.out / f"{name}.onnx", engines="cpu") for name in names}
    tiles = []
    for photo in small:
        tiles.append(("photo", photo))
        for name, predictor in predictors.items():
            tiles.append((name, predictor.run({"frame": photo[None]})["stylized"][0]))
    labelled_grid(tiles, 1 + len(names), font_size=12).save(args.sheet, quality=85, optimize=True)
    print(f"wrote {args.sheet}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("sweep"))
    parser.add_argument("--style", default="starry_night.jpg", help="painting in DATA/styles")
    parser.add_argument("--only", help="comma-separated candidates (default: all)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--photos", type=int, default=24, help="BSDS500 test photos to score")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--train-only", action="store_true")
    parser.add_argument(
        "--rows",
        action="store_true",
        help="table and sheet from OUT/rows.json (no training, no timing)",
    )
    parser.add_argument("--table", type=Path, help="also write the table here")
    parser.add_argument("--sheet", type=Path, help="write the side-by-side sheet here")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(CANDIDATES)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in [] if args.rows else names:
        if not (args.out / f"{name}.train.json").exists():
            train_one(name, args)
    if args.train_only:
        return
    if args.rows:
        rows = [r for r in json.loads((args.out / "rows.json").read_text()) if r["name"] in names]
    else:
        photos = _test_photos(args)
        rows = [measure_one(name, photos, args) for name in names]
        (args.out / "rows.json").write_text(json.dumps(rows, indent=1))
    text = table(rows, args)
    print(text)
    if args.table:
        args.table.write_text(text)
    if args.sheet:
        sheet(names, args)


if __name__ == "__main__":
    main()
