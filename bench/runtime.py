"""Runtime benchmark: palmbrush engines vs onnxruntime (and PyTorch eager when installed).

Each runtime runs in its own process, so peak RSS is its own. Prints a table of median
latency, the speed ratio to onnxruntime measured in the same run, achieved GFLOP/s, peak
RSS, and the largest uint8 difference from onnxruntime's picture. Run by hand, not by pytest:

    python bench/runtime.py                       # Johnson net, 256x256 and 640x480
    python bench/runtime.py --sizes 1280x720 --repeat 5 --engines reference
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def _frame(height: int, width: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (1, height, width, 3), dtype=np.uint8)


def _runner(runtime: str, path: str, threads: int):
    if runtime == "onnxruntime":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        return lambda frame: session.run(None, {"frame": frame})[0]
    from palmbrush.runtime import load

    engines = runtime.split(":", 1)[1]
    predictor = load(path, engines=engines, threads=threads)
    return lambda frame: predictor.run({"frame": frame})["stylized"]


def measure(runtime: str, path: str, size: str, threads: int, repeat: int, out: str) -> None:
    """Child process: time one runtime at one size; write timings, RSS and the picture."""
    width, height = (int(v) for v in size.split("x"))
    frame = _frame(height, width)
    run = _runner(runtime, path, threads)
    picture = run(frame)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run(frame)
        times.append((time.perf_counter() - start) * 1e3)
    np.save(out + ".npy", picture)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open(out + ".json", "w") as f:
        json.dump({"times": times, "rss_mb": rss}, f)


def _spawn(runtime, path, size, threads, repeat, workdir):
    out = os.path.join(workdir, f"{runtime.replace(':', '_')}_{size}")
    cmd = [sys.executable, __file__, "--child", runtime, path, size, str(threads), str(repeat), out]
    subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    with open(out + ".json") as f:
        result = json.load(f)
    result["picture"] = np.load(out + ".npy")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256x256,640x480")
    parser.add_argument(
        "--engines", default="reference", help="palmbrush engine lists, ';'-separated"
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import onnx

    from palmbrush.runtime import load
    from palmbrush.runtime.stats import parameter_count, total_macs
    from palmbrush.samples import johnson

    workdir = tempfile.mkdtemp(prefix="palmbrush-bench-")
    path = os.path.join(workdir, "johnson.onnx")
    onnx.save_model(johnson(), path)
    graph = load(path).graph
    print(
        f"Johnson et al. 2016 network, {parameter_count(graph):,} parameters, random weights; "
        f"{args.threads} threads, median of {args.repeat} runs, each runtime in its own process"
    )
    runtimes = [f"palmbrush:{e}" for e in args.engines.split(";")] + ["onnxruntime"]
    header = [
        "size",
        "runtime",
        "median ms",
        "vs onnxruntime",
        "GFLOP/s",
        "peak RSS MB",
        "max diff",
    ]
    rows = []
    for size in args.sizes.split(","):
        width, height = (int(v) for v in size.split("x"))
        values = load(path).shapes({"frame": (1, height, width, 3)})
        flops = 2 * total_macs(graph, values)
        results = {r: _spawn(r, path, size, args.threads, args.repeat, workdir) for r in runtimes}
        base = np.median(results["onnxruntime"]["times"])
        peer = results["onnxruntime"]["picture"].astype(int)
        for name, res in results.items():
            median = float(np.median(res["times"]))
            diff = int(np.abs(res["picture"].astype(int) - peer).max())
            rows.append(
                [
                    size,
                    name,
                    f"{median:.1f}",
                    f"{base / median:.2f}x",
                    f"{flops / median / 1e6:.1f}",
                    f"{res['rss_mb']:.0f}",
                    str(diff),
                ]
            )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        runtime, path, size, threads, repeat, out = sys.argv[2:8]
        measure(runtime, path, size, int(threads), int(repeat), out)
    else:
        main()
