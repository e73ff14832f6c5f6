"""Cut the bundled sample clip and photo from Big Buck Bunny (CC-BY 3.0, Blender Foundation).

python scripts/make_sample_media.py ../shared/data/video/bigbuckbunny.mp4

Writes src/palmbrush/samples/bunny.mp4 (the first 3 s at 640x360, H.264 + AAC audio) and
src/palmbrush/samples/bunny.jpg (frame 66 at 640x360). README's first command stylizes both.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import av

OUT = Path(__file__).resolve().parents[1] / "src" / "palmbrush" / "samples"
SECONDS, SIZE, STILL = 3, (640, 360), 66


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="bigbuckbunny.mp4 from ../shared/data/video")
    args = parser.parse_args()
    with av.open(str(args.source)) as src, av.open(str(OUT / "bunny.mp4"), "w") as dst:
        vin, ain = src.streams.video[0], src.streams.audio[0]
        vout = dst.add_stream("libx264", rate=vin.average_rate)
        vout.width, vout.height, vout.pix_fmt = *SIZE, "yuv420p"
        vout.options = {"crf": "26", "preset": "slow"}
        aout = dst.add_stream("aac", rate=ain.rate)
        aout.bit_rate = 64000
        count = 0
        for frame in src.decode(vin, ain):
            if frame.time is None or frame.time >= SECONDS:
                continue
            if isinstance(frame, av.VideoFrame):
                count += 1
                if count - 1 == STILL:
                    image = frame.to_image().resize(SIZE, 1)  # LANCZOS
                    image.save(OUT / "bunny.jpg", quality=88, optimize=True)
                small = frame.reformat(*SIZE, format="yuv420p", interpolation="LANCZOS")
                small.pts, small.time_base = frame.pts, frame.time_base
                dst.mux(vout.encode(small))
            else:
                frame.pts = None
                dst.mux(aout.encode(frame))
        dst.mux(vout.encode())
        dst.mux(aout.encode())
    for name in ("bunny.mp4", "bunny.jpg"):
        print(f"wrote {OUT / name} ({(OUT / name).stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
