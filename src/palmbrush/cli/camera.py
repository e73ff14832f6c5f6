"""`palmbrush camera [--style NAME|MODEL.onnx ...] [--port 8765]`: a live camera page.

It listens on 127.0.0.1 only: any other --host needs --lan, and prints a warning, because anyone
who can reach it there can use it. Only the page's own origin may open its WebSocket.
"""

from __future__ import annotations

import argparse
import os

from .args import POSITIVE, THREADS, add_listen, float_in, int_in

SECONDS = float_in(0.0, 86400.0, open_low=True)


def _origin(text: str) -> str:
    from palmbrush.media.camera_guard import parse_origin

    try:
        return parse_origin(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_origin.__name__ = "origin"


def default_threads() -> int:
    """One core fewer than the machine has: the JPEG coding, the event loop and, on the same
    machine, the browser need one. On 2 cores, 640x480 starry-night in Chromium: 1 thread
    23.8 fps at 77 ms median latency, 2 threads 18-20 fps at 140-150 ms (the model's parallel
    regions wait for a thread the browser holds)."""
    return max(1, (os.cpu_count() or 1) - 1)


def add_parser(sub) -> None:
    p = sub.add_parser("camera", help="serve a live camera page that stylizes in real time")
    p.add_argument("--style", action="append",
                   help="a built-in style or a style model file (.onnx); repeat for the picker "
                        "(default: every built-in style)")  # fmt: skip
    add_listen(p, 8765)
    p.add_argument("--allow-origin", action="append", type=_origin, default=[], metavar="URL",
                   help="another origin whose pages may connect, like https://name:8443; "
                        "repeatable (default: only the page this server serves)")  # fmt: skip
    p.add_argument("--max-clients", type=POSITIVE, default=8, metavar="N",
                   help="open tabs at once (default 8)")  # fmt: skip
    p.add_argument("--header-timeout", type=SECONDS, default=10.0, metavar="S",
                   help="seconds to send a request's headers (default 10)")  # fmt: skip
    p.add_argument("--idle-timeout", type=SECONDS, default=60.0, metavar="S",
                   help="seconds a tab may send nothing (default 60)")  # fmt: skip
    p.add_argument("--engine", default=None, help="engine preference (default: best available)")
    p.add_argument(
        "--threads",
        type=THREADS,
        default=None,
        help="the model's threads (default: one fewer than the cores, at least 1)",
    )
    p.add_argument("--device", type=int_in(0), help="a local camera for --window (OpenCV)")
    p.add_argument("--window", action="store_true", help="show a local camera in a window")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from palmbrush.errors import PalmbrushError
    from palmbrush.media import camera
    from palmbrush.media.camera_guard import Policy, check_host, serve
    from palmbrush.styles import catalogue

    if not args.window:
        check_host(args.host, args.lan, "palmbrush camera",
                   "can use this server and its styles")  # fmt: skip
    threads = args.threads or default_threads()
    styles = camera.load_styles(args.style or list(catalogue()), args.engine, threads)
    if args.window:
        return _window(styles, args.device or 0)
    policy = Policy(args.host, frozenset(args.allow_origin), args.max_clients,
                    args.header_timeout, args.idle_timeout)  # fmt: skip
    app = camera.make_app(styles, policy)
    try:
        asyncio.run(serve(app, policy, args.port, lambda bound: _ready(bound, styles)))
    except OSError as exc:
        raise PalmbrushError(f"cannot listen on {args.host}:{args.port} ({exc.strerror})") from None
    return 0


def _ready(bound: list[tuple], styles) -> None:
    from palmbrush.media.camera_guard import address

    print(f"palmbrush camera: {address(bound)}  (styles: {', '.join(styles)}; Ctrl-C to stop)",
          flush=True)  # fmt: skip


def _window(styles, device: int) -> int:
    """Stylize a local camera into an OpenCV window until a key is pressed."""
    from palmbrush.errors import PalmbrushError
    from palmbrush.media import require

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
