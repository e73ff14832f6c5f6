"""`palmbrush deploy [STYLE...] -o DIR [--serve [--https]]`: the styles as a web app for phones.

palmbrush deploy --install-runtime                 # once, at build time: npm fetches
                                                   # the pinned onnxruntime-web
palmbrush deploy starry-night udnie -o site/       # a static site: host it anywhere
palmbrush deploy -o site/ --serve --https --host 0.0.0.0 --lan   # a phone on the LAN (no
                                                   # STYLE: the site there, as it is)
palmbrush deploy --check site/                     # parity with palmbrush, in Chromium
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .args import add_listen


def add_parser(sub) -> None:
    p = sub.add_parser("deploy", help="the styles as an offline web app for phones (PWA)")
    p.add_argument(
        "styles",
        nargs="*",
        metavar="STYLE",
        help="built-in styles or style model files (default: every built-in style)",
    )
    p.add_argument("-o", "--output", type=Path, help="the site's folder")
    p.add_argument("--overwrite", action="store_true", help="replace a site built before")
    p.add_argument("--runtime", type=Path, metavar="DIR",
                   help="onnxruntime-web's npm package folder (default: the palmbrush cache, "
                        "filled by --install-runtime)")  # fmt: skip
    p.add_argument(
        "--install-runtime",
        action="store_true",
        help="npm install the pinned onnxruntime-web into the cache (or --runtime)",
    )
    p.add_argument("--serve", action="store_true", help="serve the site after building it")
    p.add_argument("--https", action="store_true",
                   help="serve over TLS with a self-signed certificate (phones need it for "
                        "the camera)")  # fmt: skip
    add_listen(p, 8443)
    p.add_argument("--check", type=Path, metavar="DIR",
                   help="run a site's models in headless Chromium and report their parity "
                        "with palmbrush and ms per frame")  # fmt: skip
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from palmbrush.errors import PalmbrushError

    if args.install_runtime:
        from palmbrush.deploy import ORT_WEB, runtime

        folder = runtime.install(args.runtime)
        print(f"onnxruntime-web {ORT_WEB}: {folder}")
        return 0
    if args.check:
        from palmbrush.deploy import check

        return check.report(args.check)
    if args.output is None:
        raise PalmbrushError("name the site's folder with -o DIR")
    if args.https and not args.serve:
        raise PalmbrushError("--https is for --serve")
    server = _server(args) if args.serve else None  # its mistakes show before any building
    from palmbrush.deploy.site import is_site

    if args.styles or not (args.serve and is_site(args.output)):
        _build(args)
    if server is not None:
        return server()
    return 0


def _build(args) -> None:
    from palmbrush.deploy import ORT_WEB, runtime, site
    from palmbrush.styles import catalogue

    folder = runtime.find(args.runtime)
    built = site.build(args.styles or list(catalogue()), args.output, folder, args.overwrite)
    mb = 1e6
    webgpu = sum(built.files[f"ort/{name}"]["bytes"] for name in runtime.WEBGPU_FILES)
    print(f"{args.output}: {len(built.styles)} styles, {built.bytes / mb:.1f} MB (models "
          f"{built.size_of('styles/') / mb:.1f} MB, onnxruntime-web {ORT_WEB} "
          f"{built.size_of('ort/') / mb:.1f} MB, of which the WebGPU build {webgpu / mb:.1f} "
          "MB is fetched only when chosen); host the folder anywhere, or --serve")  # fmt: skip


def _server(args):
    """Check --host/--lan and make the TLS certificate now; a function that serves the site."""
    import asyncio

    from palmbrush.deploy import serve
    from palmbrush.errors import PalmbrushError
    from palmbrush.media import require
    from palmbrush.media.camera_guard import Policy, address, check_host, is_loopback
    from palmbrush.media.camera_guard import serve as listen

    check_host(args.host, args.lan, "palmbrush deploy", "can open the site")
    policy = Policy(args.host)
    tls, scheme, cert = None, "http", None
    reach = args.host if not serve_everywhere(args.host) else (serve.lan_address() or args.host)
    if not is_loopback(reach):
        require("segno", "segno", "deploy")  # the QR code
    if args.https:
        names = ["localhost", "127.0.0.1", "::1"] + ([reach] if not is_loopback(reach) else [])
        tls, cert = serve.tls_context(names)
        scheme = "https"

    def ready(bound) -> None:
        url = address([(reach, bound[0][1])] if serve_everywhere(args.host) else bound, scheme)
        print(f"palmbrush deploy: serving {args.output} at {url}  (Ctrl-C to stop)", flush=True)
        if cert is not None:
            print(f"self-signed certificate: {cert}. A phone's browser warns once: choose "
                  "'Advanced' -> 'Proceed' (Chrome) or 'Show details' -> 'visit' (Safari); "
                  "or install the certificate on the phone.", flush=True)  # fmt: skip
        if not is_loopback(reach):
            print(serve.qr(url), flush=True)

    def run_server() -> int:
        app = serve.make_app(args.output, policy)
        try:
            asyncio.run(listen(app, policy, args.port, ready, tls))
        except OSError as exc:
            raise PalmbrushError(f"cannot listen on {args.host}:{args.port} "
                                 f"({exc.strerror})") from None  # fmt: skip
        return 0

    return run_server


def serve_everywhere(host: str) -> bool:
    return host in ("0.0.0.0", "::", "")
