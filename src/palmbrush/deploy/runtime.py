"""onnxruntime-web for the site: the pinned npm package, installed once at build time into a
cache (`palmbrush deploy --install-runtime` runs npm), or a folder the user names."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from ..cache import cache_dir
from ..errors import PalmbrushError
from . import ORT_WEB

# the files the page loads: the WASM build (SIMD, threads when cross-origin isolated), and the
# WebGPU build, which loads its own WASM (asyncify) and is fetched only when chosen
WASM_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
WEBGPU_FILES = ("ort.webgpu.min.mjs", "ort-wasm-simd-threaded.asyncify.mjs",
                "ort-wasm-simd-threaded.asyncify.wasm")  # fmt: skip


def default_prefix() -> Path:
    """Where --install-runtime puts the npm package: the palmbrush cache, by version."""
    return cache_dir() / "npm" / f"onnxruntime-web-{ORT_WEB}"


def dist(prefix: Path) -> Path:
    return prefix / "node_modules" / "onnxruntime-web" / "dist"


def install(prefix: Path | None = None) -> Path:
    """npm install onnxruntime-web@ORT_WEB into prefix (build time: the network is needed
    here, never when the page runs); the dist folder."""
    prefix = prefix or default_prefix()
    npm = shutil.which("npm")
    if npm is None:
        raise PalmbrushError("npm is not installed (Debian: apt-get install npm); it fetches "
                             f"onnxruntime-web {ORT_WEB} once, at build time")  # fmt: skip
    prefix.mkdir(parents=True, exist_ok=True)
    command = [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
               "--ignore-scripts", "--no-save", f"onnxruntime-web@{ORT_WEB}"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise PalmbrushError(f"npm could not install onnxruntime-web {ORT_WEB}: {last}")
    return find(dist(prefix))


def find(given: Path | None = None) -> Path:
    """The dist folder of onnxruntime-web ORT_WEB: `given` (the package folder, its dist/ or
    a node_modules prefix), else the cache; a clear error when it is missing or another
    version."""
    if given is None:
        folder, how = dist(default_prefix()), "run: palmbrush deploy --install-runtime"
    else:
        folder, how = _dist_of(Path(given)), f"npm install onnxruntime-web@{ORT_WEB}"
    package = folder.parent / "package.json"
    if not (folder / WASM_FILES[0]).is_file() or not package.is_file():
        raise PalmbrushError(f"onnxruntime-web {ORT_WEB} is not at {folder} ({how}, once, at "
                             "build time; the site never fetches it)")  # fmt: skip
    try:
        version = json.loads(package.read_text()).get("version")
    except (OSError, ValueError):
        version = None
    if version != ORT_WEB:
        raise PalmbrushError(f"{package.parent}: onnxruntime-web {version}, not {ORT_WEB} (the "
                             f"version palmbrush's parity is measured with): {how}")  # fmt: skip
    missing = [name for name in WASM_FILES + WEBGPU_FILES if not (folder / name).is_file()]
    if missing:
        raise PalmbrushError(f"{folder}: incomplete onnxruntime-web, no {', '.join(missing)}")
    return folder


def _dist_of(path: Path) -> Path:
    for candidate in (path, path / "dist", path / "node_modules" / "onnxruntime-web" / "dist"):
        if (candidate / WASM_FILES[0]).is_file():
            return candidate
    return path / "node_modules" / "onnxruntime-web" / "dist"
