"""`palmbrush camera [--style NAME|MODEL.onnx ...] [--port 8765]`: a live camera page.

It listens on 127.0.0.1 only: any other --host needs --lan, and prints a warning, because anyone
who can reach it there can use it. Only the page's own origin may open its WebSocket.
"""

from __future__ import annotations

import argparse
import os
import sys

from .args import POSITIVE, THREADS, float_in, int_in

SECONDS = float_in(0.0, 86400.0, open_low=True)


def _origin(text: str) -> str:
    from palmbrush.media.camera_guard import parse_origin

    try:
        return parse_origin(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_origin.__name__ = "origin"


def add_parser(sub) -> None:
    p = sub.add_parser("camera", help="serve a live camera page that stylizes in real time")
    p.add_argument("--style", action="append",
                   help="a built-in style or a style model file (.onnx); repeat for the picker "
                        "(default: every built-in style)")  # fmt: skip
    p.add_argument("--port", type=int_in(0, 65535), default=8765,
                   help="default 8765; 0: any free port")  # fmt: skip
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: local only)")
    p.add_argument("--lan", action="store_true",
                   help="allow a --host other computers can reach (and use)")  # fmt: skip
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
    p.add_argument("--threads", type=THREADS, default=os.cpu_count())
    p.add_argument("--device", type=int_in(0), help="a local camera for --window (OpenCV)")
    p.add_argument("--window", action="store_true", help="show a local camera in a window")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from palmbrush.errors import PalmbrushError
    from palmbrush.media import camera
    from palmbrush.media.camera_guard import Policy, serve
    from palmbrush.styles import catalogue

    if not args.window:
        _check_host(args.host, args.lan)
    styles = camera.load_styles(args.style or list(catalogue()), args.engine, args.threads)
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


def _check_host(host: str, lan: bool) -> None:
    """A --host other computers can reach needs --lan, and gets a warning."""
    from palmbrush.errors import PalmbrushError
    from palmbrush.media.camera_guard import is_loopback

    if is_loopback(host):
        return
    if not lan:
        raise PalmbrushError(f"--host {host} can be reached from other computers; "
                             "add --lan if that is what you want")  # fmt: skip
    print(f"palmbrush camera: warning: listening on {host}; anyone who can reach it can use "
          "this server and its styles", file=sys.stderr, flush=True)  # fmt: skip


def _ready(bound: list[tuple], styles) -> None:
    """Print the address the listening socket is really bound to (the first, if several)."""
    host, port = bound[0][0], bound[0][1]
    host = f"[{host}]" if ":" in host else host
    print(f"palmbrush camera: http://{host}:{port}/  (styles: {', '.join(styles)}; "
          f"Ctrl-C to stop)", flush=True)  # fmt: skip


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
