"""Runtime benchmark: palmbrush engines vs onnxruntime, OpenVINO and PyTorch eager, on styles.

Every model is a style model file exported by palmbrush or a plain exported network (random
weights: speed does not depend on them). Each runtime runs in its own process, so peak RSS
is its own; the processes are loaded side by side and take turns in rotating order, 30 ms
apart (onnxruntime's spinning threads go idle), each turn a warm-up run and a timed one, so
the ratios are paired and each time is that of a stream of frames, caches and threads warm.
The table gives median latency, the speed ratios to onnxruntime and OpenVINO measured in
the same run, achieved GFLOP/s, peak RSS and the largest difference from the baseline output
(uint8 levels of a picture, absolute for a float output; the reference engine's when it
runs, else the first runtime's). Runtimes: "default" is what load(path)
picks with no flags, "auto" every available engine chosen per node by timing on the first run,
"cpu" the Numba engine alone, "torch" the torch engine alone, any engine list like
"torch,cpu", "@bf16" for bf16 convs;
"onnxruntime", "openvino" (its CPU plugin, fp32, latency hint, compiled for the frame's size)
and "pytorch" (eager, channels-last; presets only) are the peers. Models:
presets (random weights), built-in style names, style model files, or someone else's network
(`transformer-net:WxB`, a plain torch.onnx.export file with a float NCHW input: models.py).
By hand:

    python bench/runtime.py                                   # all defaults (slow)
    python bench/runtime.py --models nano --sizes 640x480 --runtimes auto,cpu,onnxruntime
    python bench/runtime.py --models starry-night,great-wave --runtimes cpu,torch,onnxruntime
    python bench/runtime.py --models transformer-net:8x3 --runtimes default,onnxruntime
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
from models import model_file

RUNTIMES = "default,auto,cpu,torch,onnxruntime,openvino,pytorch"
PEERS = ("onnxruntime", "openvino")  # the ratio columns; each is also its module and PyPI name


def _input(path: str, size: str) -> tuple[str, np.ndarray]:
    """The model's input name and a seeded input at `size`: a uint8 NHWC frame for style
    models, a float32 NCHW image in [0, 1] for a network that takes one (transformer-net)."""
    import onnx

    width, height = (int(v) for v in size.split("x"))
    first = onnx.load(path, load_external_data=False).graph.input[0]
    rng = np.random.default_rng(0)
    if first.type.tensor_type.elem_type == onnx.TensorProto.UINT8:
        return first.name, rng.integers(0, 256, (1, height, width, 3), dtype=np.uint8)
    return first.name, rng.random((1, 3, height, width), dtype=np.float32)


def _runner(runtime: str, path: str, threads: int, name: str, example: np.ndarray):
    if runtime == "openvino":
        return _openvino(path, threads, example.shape)
    if runtime == "onnxruntime":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        return lambda frame: session.run(None, {name: frame})[0]
    if runtime == "pytorch":
        return _pytorch_eager(path, threads)
    from palmbrush.runtime import load

    engines, _, precision = runtime.partition("@")
    engines = None if engines == "default" else engines  # what load(path) picks, no flags
    predictor = load(path, engines=engines, threads=threads, precision=precision or "fp32")
    output = predictor.outputs[0].name

    predictor.run({name: np.zeros_like(example)})
    predictor.ready()  # a fresh machine: measure (and picture) the compiled plan (interim.py)
    return lambda frame: predictor.run({name: frame})[output]


def _openvino(path: str, threads: int, shape: tuple):
    """OpenVINO's CPU plugin on the same file, reshaped to the frame's size (its fastest plan),
    fp32 (a bf16 default on some CPUs would not be the same computation), latency hint."""
    import openvino as ov

    core = ov.Core()
    model = core.read_model(path)
    model.reshape({model.input(0).get_any_name(): ov.PartialShape(list(shape))})
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_PRECISION_HINT": "f32"}  # fmt: skip
    request = core.compile_model(model, "CPU", config).create_infer_request()
    return lambda frame: request.infer({0: frame})[0]  # a copy: share_outputs is off


def _pytorch_eager(path: str, threads: int):
    """The same network in PyTorch eager mode (channels-last), rebuilt from the file's metadata."""
    import onnx
    import torch

    from palmbrush.models import StyleNet, StyleNetConfig
    from palmbrush.train.export import Portable

    torch.set_num_threads(threads)
    props = {p.key: p.value for p in onnx.load(path).metadata_props}
    torch.manual_seed(0)  # the same seeded weights _export() wrote into the file
    net = StyleNet(StyleNetConfig.from_dict(json.loads(props["architecture"]))).eval()
    wrapper = Portable(net.to(memory_format=torch.channels_last))

    def run(frame):
        with torch.inference_mode():
            return wrapper(torch.from_numpy(frame)).numpy()

    return run


def measure(runtime: str, path: str, size: str, threads: int, out: str) -> None:
    """Child process: load one runtime at one size, warm it up, then per "run" line on stdin
    (the parent alternates the runtimes) two runs, the second timed: the steady state of a
    stream of frames; on "done" write the picture and peak RSS."""
    protocol = os.fdopen(os.dup(1), "w")  # the parent's pipe; anything a library prints
    os.dup2(2, 1)  # to stdout (fd 1) goes to stderr instead
    sys.stdout = sys.stderr
    name, frame = _input(path, size)
    run = _runner(runtime, path, threads, name, frame)
    picture = run(frame)
    run(frame)
    print("ready", file=protocol, flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        run(frame)  # untimed: back in the caches and its threads awake, as in a stream
        start = time.perf_counter()
        run(frame)
        print(f"{(time.perf_counter() - start) * 1e3:.6f}", file=protocol, flush=True)
    np.save(out + ".npy", picture)
    with open(out + ".json", "w") as f:
        json.dump({"rss_mb": _peak_rss_mb()}, f)


@functools.cache
def _graph(path: str):
    from palmbrush.runtime import load

    return load(path, engines="reference", measure=False)


def _macs(path: str, size: str) -> int:
    """Multiply-adds of one run at `size`, counted on the graph (palmbrush.runtime.stats)."""
    from palmbrush.runtime.stats import total_macs

    predictor = _graph(path)  # loaded once per model, whatever the sizes
    name, example = _input(path, size)
    return total_macs(predictor.graph, predictor.shapes({name: example.shape}))


def _peak_rss_mb() -> float:
    """This process's peak RSS. Not ru_maxrss: on Linux that survives execve, so a child would
    report its parent's peak (here, the parent that exported models with PyTorch)."""
    try:
        with open("/proc/self/status") as f:
            hwm = next(line for line in f if line.startswith("VmHWM:"))
        return int(hwm.split()[1]) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


GAP_S = 0.03  # between two runs: lets a runtime's spinning threads (onnxruntime's) go idle


def _paired(runtimes, path, size, threads, repeat, workdir) -> dict[str, dict]:
    """Every runtime in its own process (its own peak RSS), loaded side by side; then `repeat`
    rounds of one run each, in rotating order, so a noisy neighbour's bursts fall on all of
    them alike. Returns per runtime its run times, peak RSS and picture."""
    children, outs = {}, {}
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    try:
        for runtime in runtimes:
            out = outs[runtime] = os.path.join(workdir, f"{runtime.replace(':', '_')}_{size}")
            cmd = [sys.executable, __file__, "--child", runtime, path, size, str(threads), out]
            child = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)  # fmt: skip
            children[runtime] = child
            if child.stdout.readline().strip() != "ready":  # loaded and warm, one at a time
                raise SystemExit(f"{runtime} failed to start on {path} at {size}")
        times = {r: [] for r in runtimes}
        for turn in range(repeat):
            for k in range(len(runtimes)):
                runtime = runtimes[(turn + k) % len(runtimes)]
                time.sleep(GAP_S)
                try:
                    children[runtime].stdin.write("run\n")
                    children[runtime].stdin.flush()
                    times[runtime].append(float(children[runtime].stdout.readline()))
                except (BrokenPipeError, ValueError):  # it died: its traceback is above
                    raise SystemExit(f"{runtime} failed on {path} at {size}") from None
        for child in children.values():
            child.stdin.write("done\n")
            child.stdin.close()
        for runtime, child in children.items():
            if child.wait() != 0:
                raise SystemExit(f"{runtime} failed on {path} at {size}")
    finally:
        for child in children.values():
            if child.poll() is None:
                child.kill()
    results = {}
    for runtime in runtimes:
        with open(outs[runtime] + ".json") as f:
            results[runtime] = {**json.load(f), "times": times[runtime]}
        results[runtime]["picture"] = np.load(outs[runtime] + ".npy")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="johnson,tiny,nano,pico",
                        help="presets, built-in style names or style model files")  # fmt: skip
    parser.add_argument("--sizes", default="256x256,640x480,1280x720")
    parser.add_argument(
        "--runtimes", default=RUNTIMES, help="engine lists (@bf16), onnxruntime, openvino, pytorch"
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from palmbrush.models import PRESETS

    workdir = tempfile.mkdtemp(prefix="palmbrush-bench-")
    runtimes = args.runtimes.split(",")
    baseline = "reference" if "reference" in runtimes else runtimes[0]
    print(f"{args.threads} threads, median of {args.repeat} paired runs (runtimes take turns, each "
          f"in its own process); max diff: from {baseline}'s output (uint8 levels, or for float "
          "outputs the largest absolute difference)")  # fmt: skip
    for runtime in runtimes:
        if runtime in PEERS and importlib.util.find_spec(runtime) is None:
            raise SystemExit(f"peer {runtime} is not installed: pip install {runtime} "
                             "(or pip install -e '.[bench]')")  # fmt: skip
    header = ["model", "size", "runtime", "median ms", "vs onnxruntime", "vs openvino", "GFLOP/s",
              "peak RSS MB", "max diff"]  # fmt: skip
    rows = []
    for model in args.models.split(","):
        path, _ = model_file(model, workdir)
        if "pytorch" in runtimes and model not in PRESETS:
            raise SystemExit("pytorch (eager) rebuilds presets from their seed: not for " + model)
        for size in args.sizes.split(","):
            flops = 2 * _macs(path, size)
            results = _paired(runtimes, path, size, args.threads, args.repeat, workdir)
            peers = {p: np.median(results[p]["times"]) for p in PEERS if p in results}
            ref = results[baseline]["picture"]
            for name, res in results.items():
                median = float(np.median(res["times"]))
                ratios = [f"{peers[p] / median:.2f}x" if p in peers else "-" for p in PEERS]
                gap = np.abs(res["picture"].astype(np.float64) - ref.astype(np.float64)).max()
                diff = f"{gap:.0f}" if ref.dtype == np.uint8 else f"{gap:.1e}"
                gflops, rss = f"{flops / median / 1e6:.1f}", f"{res['rss_mb']:.0f}"
                rows.append([model, size, name, f"{median:.1f}", *ratios, gflops, rss, diff])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        runtime, path, size, threads, out = sys.argv[2:7]
        measure(runtime, path, size, int(threads), out)
    else:
        main()
