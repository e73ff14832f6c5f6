"""`palmbrush bench MODEL --size WxH [--engines ...] [--vs onnxruntime]`: latency, with peers."""

from __future__ import annotations

import argparse
import os
import time

from palmbrush.cli.args import THREADS, int_in


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="time a model on palmbrush (and onnxruntime, same run)")
    p.add_argument("model", help="an ONNX file or a built-in style name")
    p.add_argument("--size", required=True, help="frame size WxH, e.g. 640x480")
    p.add_argument("--engines", help="engine preference, comma separated (default: best)")
    p.add_argument(
        "--vs",
        choices=["onnxruntime"],
        action="append",
        default=[],
        help="also time this peer on the same file and inputs",
    )
    p.add_argument("--threads", type=THREADS, default=os.cpu_count(),
                   help="threads for every runtime")  # fmt: skip
    p.add_argument("--repeat", type=int_in(1, 10_000), default=10,
                   help="timed runs (after one warm-up)")  # fmt: skip
    p.add_argument("--profile", action="store_true", help="also print time and engine per node")
    p.add_argument("--no-optimize", action="store_true", help="skip the graph passes")
    p.add_argument(
        "--precision",
        choices=["fp32", "bf16", "fp16"],
        default="fp32",
        help="compute precision for engines that support it (torch: bf16 convs; cuda: bf16 "
        "or fp16 convs)",
    )
    p.set_defaults(run=run)


def time_runs(fn, repeat: int) -> list[float]:
    """Milliseconds of each of `repeat` calls, after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def onnxruntime_runner(model: str, feeds: dict, threads: int):
    from palmbrush.lab.metrics import onnxruntime_session

    session = onnxruntime_session(model, threads)
    return lambda: session(feeds)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from palmbrush.runtime import load
    from palmbrush.styles import model_path

    from .common import input_shapes, parse_size, random_feeds, table

    args.model = model_path(args.model)
    predictor = load(args.model, args.engines, args.threads, not args.no_optimize, args.precision)
    feeds = random_feeds(predictor, input_shapes(predictor, parse_size(args.size)))
    predictor.run(feeds)
    predictor.ready()  # a fresh machine: time the compiled plan, not the interim one
    engines = "+".join(getattr(e, "NAME", "?") for e in predictor.engines)
    engines = f"auto: {engines}" if predictor.auto else engines
    results = {f"palmbrush ({engines})": time_runs(lambda: predictor.run(feeds), args.repeat)}
    for peer in args.vs:
        results[peer] = time_runs(onnxruntime_runner(args.model, feeds, args.threads), args.repeat)
    base = np.median(results["onnxruntime"]) if "onnxruntime" in results else None
    rows = []
    for name, times in results.items():
        median = float(np.median(times))
        ratio = f"{base / median:.2f}x" if base else "-"
        rows.append([name, f"{median:.2f}", f"{min(times):.2f}", f"{max(times):.2f}", ratio])
    print(f"{args.model} at {args.size}, {args.threads} threads, {args.repeat} runs")
    print(table(rows, ["runtime", "median ms", "min ms", "max ms", "speed vs onnxruntime"]))
    if args.profile:
        print_profile(predictor.profile(feeds, repeat=min(args.repeat, 3)))
    return 0


def print_profile(rows) -> None:
    """Per-node time and engine, slowest first, with its share and why faster engines declined."""
    from .common import table

    total = sum(r.ms for r in rows) or 1.0
    body = []
    for r in sorted(rows, key=lambda r: -r.ms):
        why = "; ".join(f"{k}: {v}" for k, v in r.declined.items())
        body.append([r.node, r.op, r.engine, f"{r.ms:.2f}", f"{100 * r.ms / total:.1f}%", why])
    print(table(body, ["node", "op", "engine", "ms", "share", "declined"]))
