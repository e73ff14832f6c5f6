"""Cold start: seconds from a new process to the first stylized picture, vs onnxruntime.

"cold" is the first picture after a fresh install: empty kernel caches (a new NUMBA_CACHE_DIR
and PALMBRUSH_CACHE), so every kernel the model needs is generated and compiled; "warm" is
the next process, which loads them from disk. Each run is its own process and includes
importing the runtime. By hand:

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
import sys, time
start = time.perf_counter()
import numpy as np
path, width, height, runtime = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
frame = np.random.default_rng(0).integers(0, 256, (1, height, width, 3), dtype=np.uint8)
if runtime == "onnxruntime":
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    session.run(None, {"frame": frame})
else:
    from palmbrush.runtime import load
    load(path, engines=None if runtime == "default" else runtime).run({"frame": frame})
print(time.perf_counter() - start)
"""


def first_picture(runtime: str, path: str, size: str, cache: str) -> float:
    """Seconds to the first picture in a new process whose kernel caches live under `cache`."""
    width, height = size.split("x")
    env = {"NUMBA_CACHE_DIR": f"{cache}/numba", "PALMBRUSH_CACHE": f"{cache}/palmbrush"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, path, width, height, runtime],
                          env={**os.environ, **env}, capture_output=True, text=True)  # fmt: skip
    if done.returncode:
        raise SystemExit(f"{runtime}: {done.stderr.strip().splitlines()[-1]}")
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
    print(f"{'runtime':<24}{'cold caches':>12}{'warm caches':>12}")
    for runtime in (args.engines, "onnxruntime"):
        with tempfile.TemporaryDirectory() as cache:
            cold, warm = (first_picture(runtime, path, args.size, cache) for _ in range(2))
        name = runtime if runtime == "onnxruntime" else f"palmbrush ({runtime})"
        print(f"{name:<24}{cold:>12.2f}{warm:>12.2f}")


if __name__ == "__main__":
    main()
