"""`palmbrush camera [--style NAME|MODEL.onnx ...] [--port 8765]`: a live camera page."""

from __future__ import annotations

import argparse
import os


def add_parser(sub) -> None:
    p = sub.add_parser("camera", help="serve a live camera page that stylizes in real time")
    p.add_argument("--style", action="append",
                   help="a built-in style or a style model file (.onnx); repeat for the picker "
                        "(default: every built-in style)")  # fmt: skip
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: local only)")
    p.add_argument("--engine", default=None, help="engine preference (default: best available)")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--device", type=int, help="a local camera for --window (OpenCV)")
    p.add_argument("--window", action="store_true", help="show a local camera in a window")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from palmbrush.media import camera, require
    from palmbrush.runtime.errors import PalmbrushError
    from palmbrush.styles import catalogue

    styles = camera.load_styles(args.style or list(catalogue()), args.engine, args.threads)
    if args.window:
        return _window(styles, args.device or 0)
    web = require("aiohttp.web", "aiohttp")
    print(f"palmbrush camera: http://{args.host}:{args.port}/  (styles: {', '.join(styles)}; "
          f"Ctrl-C to stop)", flush=True)  # fmt: skip
    try:
        web.run_app(camera.make_app(styles), host=args.host, port=args.port, print=None)
    except OSError as exc:
        raise PalmbrushError(f"cannot listen on {args.host}:{args.port} ({exc.strerror})") from None
    return 0


def _window(styles, device: int) -> int:
    """Stylize a local camera into an OpenCV window until a key is pressed."""
    from palmbrush.media import require
    from palmbrush.runtime.errors import PalmbrushError

    cv2 = require("cv2", "opencv-python")
    capture = cv2.VideoCapture(device)
    if not capture.isOpened():
        raise PalmbrushError(f"no camera at device {device}")
    style = next(iter(styles.values()))
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                raise PalmbrushError(f"camera {device} stopped sending frames")
            out = style.run(bgr[:, :, ::-1].copy())
            cv2.imshow("palmbrush", out[:, :, ::-1])
            if cv2.waitKey(1) != -1:
                return 0
    finally:
        capture.release()
        cv2.destroyAllWindows()
