"""Metrics of a style model file (ONNX in), so any model, a peer's too, is measured the same way.

- content and style errors under a loss network, as training defines them (train.losses: the
  relative content error, the relative Gram error against the painting), on photos the model
  never saw; lower is better.
- stability: the change of the output under a small random smooth warp plus noise of the input
  (lab.warp), exact and deterministic; with its floor (the input's own change) and their ratio.
- flicker on a clip (lab.flicker), the warping error with the input's as its floor.
- speed: frames per second on the engine that will run the file, and the ratio to onnxruntime
  on the same file in the same run (paired runs, medians); size and parameters.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from palmbrush.contract import INPUT

from .warp import inside, perturbed, warp

SPEED_SIZES = ((480, 640), (720, 1280))  # (height, width) of the fps figures
PHOTO_SIDE = 384  # photos are measured with this long side
PAINTING_SIDE = 384  # ... and the painting's Grams taken at this one (whatever a model trained on)


def stylizer(model: str | Path, engines: str | None = None, threads: int | None = None
             ) -> Callable[[np.ndarray], np.ndarray]:  # fmt: skip
    """(H, W, 3) uint8 -> the model's picture, checked against the style model contract."""
    from palmbrush.media.filters import load_style

    return load_style(model, engines=engines, threads=threads)


def stability(stylize: Callable[[np.ndarray], np.ndarray], photos: Sequence[np.ndarray],
              seed: int = 0) -> dict:  # fmt: skip
    """Mean |N(warp(x) + noise) - warp(N(x))| over pixels that stay inside (0-1, RGB mean);
    the same for N = identity is the floor (the noise and rounding alone)."""
    errors, floors = [], []
    for i, photo in enumerate(photos):
        moved, flow = perturbed(photo, np.random.default_rng([seed, i]))
        keep = inside(flow)
        errors.append(_moved_difference(stylize(photo), stylize(moved), flow, keep))
        floors.append(_moved_difference(photo, moved, flow, keep))
    error, floor = float(np.mean(errors)), float(np.mean(floors))
    return {"stability": error, "stability_floor": floor, "stability_ratio": error / floor}


def _moved_difference(before: np.ndarray, after: np.ndarray, flow: np.ndarray, keep) -> float:
    expected = warp(before.astype(np.float64) / 255, flow)
    return float(np.abs(after / 255 - expected).mean(-1)[keep].mean())


def quality(stylize: Callable[[np.ndarray], np.ndarray], photos: Sequence[np.ndarray],
            painting: np.ndarray | None, loss_net: str, style_size: int | None = None
            ) -> dict:  # fmt: skip
    """Mean content and style errors of the model's pictures of `photos` (no painting: no
    style error), under `loss_net` seen as training sees it, and their mean colourfulness
    (and the painting's)."""
    import torch

    from palmbrush.train.data import to_tensor
    from palmbrush.train.loop import style_targets
    from palmbrush.train.losses import content_loss, loss_view, style_loss
    from palmbrush.train.settings import TrainSettings

    s = TrainSettings(style=Path(), content=Path(), out=Path("lab.onnx"), loss_net=loss_net)
    s = replace(s.resolved(), style_size=style_size or PAINTING_SIDE)
    net = _loss_network(s.loss_net, tuple(s.content_layers), tuple(s.style_layers))
    targets = style_targets(net, painting, s, "cpu") if painting is not None else None
    content, style, colours = [], [], []
    with torch.no_grad():
        for photo in photos:
            picture = stylize(photo)
            colours.append(colourfulness(picture))
            x, y = (to_tensor(a)[None] for a in (photo, picture))
            taps = [*s.content_layers, *(s.style_layers if targets else [])]
            fy = net(loss_view(y, s.loss_scale, (0, 0)), taps)
            fx = net(loss_view(x, s.loss_scale, (0, 0)), s.content_layers)
            content.append(content_loss(fy, fx).item())
            if targets:
                style.append(style_loss(fy, targets).item())
    out = {"content_error": float(np.mean(content)), "colourfulness": float(np.mean(colours))}
    if style:  # a painting was given
        out |= {"style_error": float(np.mean(style)),
                "painting_colourfulness": colourfulness(painting)}  # fmt: skip
    return out


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler and Suesstrunk's colourfulness M of an (H, W, 3) uint8 picture (2003): the spread
    and the mean of its opponent colours (R-G and (R+G)/2-B, 0-255 scale); 0 for any grey
    picture, about 30 for a moderately colourful photo, above 100 for an extremely colourful
    one. A style that washes a photo out loses it; a painter's palette keeps it."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    rg, yb = r - g, (r + g) / 2 - b
    spread = np.hypot(rg.std(), yb.std())
    return float(spread + 0.3 * np.hypot(rg.mean(), yb.mean()))


@functools.cache
def _loss_network(spec: str, content: tuple[str, ...], style: tuple[str, ...]):
    """The loss network with these taps, loaded once per process (many models, one network)."""
    from palmbrush.train.loop import loss_network
    from palmbrush.train.settings import TrainSettings

    s = TrainSettings(style=Path(), content=Path(), out=Path("lab.onnx"), loss_net=spec,
                      content_layers=list(content), style_layers=list(style))  # fmt: skip
    return loss_network(s, "cpu")


def size(model: str | Path) -> dict:
    """The file's bytes and the graph's parameter count."""
    from palmbrush.runtime.onnx_io import load_model
    from palmbrush.runtime.stats import parameter_count
    from palmbrush.styles import resolve

    path = resolve(model)
    return {"bytes": path.stat().st_size, "parameters": parameter_count(load_model(path))}


def speed(model: str | Path, engines: str | None = None, threads: int | None = None,
          repeat: int = 5, sizes=SPEED_SIZES, reference: str | Path | None = None
          ) -> dict:  # fmt: skip
    """fps per size on palmbrush's runtime, the ratio to onnxruntime on the same file (> 1:
    palmbrush is faster) and, with a `reference` model, the ratio to it on palmbrush (> 1: this
    model is faster), all timed alternately in one process so they see the same machine load:
    the ratios, unlike fps, compare across runs on a busy or another machine."""
    import os

    from palmbrush.runtime import load
    from palmbrush.styles import resolve

    path = str(resolve(model))
    threads = threads or os.cpu_count() or 1
    ours = load(path, engines=engines, threads=threads)
    runs = {"ours": ours.run, "ort": onnxruntime_session(path, threads)}
    if reference is not None:
        theirs = load(str(reference), engines=engines, threads=threads)
        runs["reference"] = theirs.run
    out = {}
    for h, w in sizes:
        feeds = {INPUT: np.random.default_rng(0).integers(0, 256, (1, h, w, 3), np.uint8)}
        calls = [lambda r=r, f=feeds: r(f) for r in runs.values()]
        ours.run(feeds)
        ours.ready()  # a fresh machine: time the compiled plan, not the interim one
        if reference is not None:
            theirs.run(feeds)
            theirs.ready()
        t = dict(zip(runs, paired(calls, repeat)))
        out[f"fps_{w}x{h}"] = 1.0 / t["ours"]
        out[f"ort_ratio_{w}x{h}"] = t["ort"] / t["ours"]
        if reference is not None:
            out[f"reference_ratio_{w}x{h}"] = t["reference"] / t["ours"]
    return out


def paired(runs: Sequence[Callable], repeat: int) -> list[float]:
    """Median seconds of each call, run in turn `repeat` times after one warm-up each."""
    for run in runs:
        run()
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(max(1, repeat)):
        for run, bucket in zip(runs, times):
            start = time.perf_counter()
            run()
            bucket.append(time.perf_counter() - start)
    return [float(np.median(t)) for t in times]


def onnxruntime_session(path: str, threads: int) -> Callable[[dict], list]:
    """The peer: onnxruntime on the CPU with `threads` intra-op threads that do not spin while
    idle (spinning would steal the cores the other side of a paired timing needs)."""
    from palmbrush.media import require

    ort = require("onnxruntime", "onnxruntime", "lab")
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return lambda feeds: session.run(None, feeds)


def prepare_photos(photos: Sequence[np.ndarray], side: int = PHOTO_SIDE) -> list[np.ndarray]:
    """Each photo with its long side at `side` (what quality and stability are measured on)."""
    from palmbrush.media.images import fit

    return [fit(p, side) for p in photos]


def record(model: str | Path, *, photos: Sequence[np.ndarray], painting: np.ndarray | None,
           loss_net: str, engines: str | None = None, threads: int | None = None,
           repeat: int = 5, style_size: int | None = None,
           reference: str | Path | None = None) -> dict:  # fmt: skip
    """Every metric of one model file: quality, stability, speed, size (a sweep trial's record).
    `photos` are measured as given (see prepare_photos)."""
    stylize = stylizer(model, engines, threads)
    out = quality(stylize, photos, painting, loss_net, style_size)
    out |= stability(stylize, photos)
    out |= speed(model, engines, threads, repeat, reference=reference)
    return out | size(model)
