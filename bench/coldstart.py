"""Cold start: seconds from a new process to the first stylized picture, vs onnxruntime.

"empty caches" is the first picture after a fresh install (a new NUMBA_CACHE_DIR and
PALMBRUSH_CACHE): the default engines run the interim plan while the cpu engine compiles
(runtime/interim.py); engines="cpu" waits for its kernels to be generated and compiled.
"kernels cached" is a later process, which loads them from disk (the default engines still
measure which engine is fastest per node: measured.py); "all cached" a process after one that
finished compiling and measuring. Each run is its own process
and includes importing the runtime; onnxruntime has no caches (its second run has a warm page
cache). By hand:

    python bench/coldstart.py                         # starry-night, 640x480
    python bench/coldstart.py --style great-wave --size 1280x720 --engines cpu
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

CHILD = """
import sys
import numpy as np
path, width, height, runtime = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
frame = np.random.default_rng(0).integers(0, 256, (1, height, width, 3), dtype=np.uint8)
if runtime == "onnxruntime":
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    session.run(None, {"frame": frame})
else:
    from palmbrush.runtime import load
    predictor = load(path, engines=None if runtime == "default" else runtime)
    predictor.run({"frame": frame})
    if sys.argv[5:] == ["finish"]:  # let the background compile and measuring finish
        predictor.ready()
"""


def first_picture(runtime: str, path: str, size: str, cache: str, *extra: str) -> float:
    """Seconds to the first picture in a new process whose kernel caches live under `cache`."""
    width, height = size.split("x")
    env = {"NUMBA_CACHE_DIR": f"{cache}/numba", "PALMBRUSH_CACHE": f"{cache}/palmbrush"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, path, width, height, runtime, *extra],
                          env={**os.environ, **env}, capture_output=True, text=True)  # fmt: skip
    if done.returncode:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise SystemExit(f"{runtime}: {last}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", default="starry-night")
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--engines", default="default", help="palmbrush engines (default: none)")
    args = parser.parse_args()
    from palmbrush.styles import model_path

    path = model_path(args.style)
    print(f"{args.style} at {args.size}: seconds from a new process to the first picture")
    print(f"{'runtime':<26}{'empty caches':>13}{'kernels cached':>15}{'all cached':>12}")
    rows = []
    with tempfile.TemporaryDirectory() as fresh, tempfile.TemporaryDirectory() as cache:
        default_cold = first_picture(args.engines, path, args.size, fresh)
        compile_cold = first_picture("cpu", path, args.size, cache)  # compiles, then caches
        warm = first_picture(args.engines, path, args.size, cache)
        first_picture(args.engines, path, args.size, cache, "finish")
        settled = first_picture(args.engines, path, args.size, cache)
        rows.append((f"palmbrush ({args.engines})", default_cold, warm, settled))
        warm = first_picture("cpu", path, args.size, cache)
        rows.append(("palmbrush (cpu)", compile_cold, warm, warm))
    with tempfile.TemporaryDirectory() as cache:
        times = [first_picture("onnxruntime", path, args.size, cache) for _ in range(2)]
        rows.append(("onnxruntime", *times, times[1]))
    for name, cold, warm, settled in rows:
        print(f"{name:<26}{cold:>13.2f}{warm:>15.2f}{settled:>12.2f}")


if __name__ == "__main__":
    main()
