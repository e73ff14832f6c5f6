"""`palmbrush deploy --check DIR`: the site's models run by its own page in headless Chromium
(Playwright), on a few photos at odd sizes, against palmbrush's reference engine.

The site is served by a plain static file server (Python's, with the COOP/COEP headers a host
would add for WASM threads), so this checks the files a phone gets, not a palmbrush server.
Per style: the largest level difference, the share of values within 1 level, and the page's
ms per frame (the hook's run, median of a few, after one warm-up run).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import io
import json
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import PalmbrushError
from .serve import HEADERS

CHROMIUM = "/usr/bin/chromium"
RUNS = 3  # timed runs per style, after one warm-up


@dataclass
class Row:
    style: str
    photo: str
    max_diff: int
    within_1: float  # share of values within 1 level of palmbrush's
    exact: float  # share of values equal to palmbrush's
    ms: float  # the page's median ms per frame


@contextlib.contextmanager
def static_server(folder: Path, isolated: bool = True) -> Iterator[str]:
    """A plain static file server for `folder` on a free loopback port: its URL. isolated:
    with the COOP/COEP headers (WASM threads); else none, as a bare static host."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def end_headers(self):
            if isolated:
                for name, value in HEADERS.items():
                    self.send_header(name, value)
            super().end_headers()

        def log_message(self, *args):
            pass

    handler = functools.partial(Handler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def browser(playwright, args: list[str] = ()):
    executable = shutil.which("chromium") or CHROMIUM
    if not Path(executable).exists():
        raise PalmbrushError("--check needs Chromium (Debian: apt-get install chromium)")
    return playwright.chromium.launch(executable_path=executable, args=list(args))


READY_S = 90  # seconds a page may take to load its runtime and first model


def wait_ready(page) -> None:
    """Until window.palmbrush.ready resolves; an error (not a hang) if it does not in time."""
    page.evaluate(
        """(seconds) => Promise.race([window.palmbrush.ready, new Promise((_, fail) =>
            setTimeout(() => fail(new Error(`not ready in ${seconds} s`)), seconds * 1000))])""",
        READY_S,
    )


def stylize_on_page(page, picture: np.ndarray, style: str, runs: int = 1) -> tuple:
    """The page's hook on an RGB picture: (its painting as RGB, the median ms of `runs`)."""
    height, width = picture.shape[:2]
    rgba = np.concatenate([picture, np.full((height, width, 1), 255, np.uint8)], -1)
    painted, ms = page.evaluate(
        """async ([bytes, width, height, style, runs]) => {
            const data = Uint8ClampedArray.from(atob(bytes), (c) => c.charCodeAt(0));
            const image = new ImageData(data, width, height);
            let result, times = [];
            for (let i = 0; i < runs; i++) {
                const start = performance.now();
                result = await window.palmbrush.stylize(image, style);
                times.push(performance.now() - start);
            }
            times.sort((a, b) => a - b);
            let text = "";
            for (let i = 0; i < result.data.length; i += 0x8000)
                text += String.fromCharCode(...result.data.subarray(i, i + 0x8000));
            return [btoa(text), times[Math.floor(times.length / 2)]];
        }""",
        [_b64(rgba), width, height, style, runs],
    )
    import base64

    flat = np.frombuffer(base64.b64decode(painted), np.uint8)
    return flat.reshape(height, width, 4)[..., :3], ms


def _b64(array: np.ndarray) -> str:
    import base64

    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode()


def photos() -> dict[str, np.ndarray]:
    """The check's pictures: the sample photo whole (640x360), an odd-sized crop of it, and a
    small odd test card."""
    from PIL import Image

    from ..media.camera import _test_card

    data = resources.files("palmbrush.samples").joinpath("bunny.jpg").read_bytes()
    photo = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return {"photo 640x360": photo, "crop 323x181": photo[37:218, 101:424],
            "card 97x65": _test_card(97)[:65]}  # fmt: skip


def measure(folder: Path, isolated: bool = True) -> tuple[str, list[Row]]:
    """The page's engine line and a Row per style and photo."""
    from ..media import require
    from .site import check_site

    check_site(folder)
    sync = require("playwright.sync_api", "playwright", "deploy")
    try:
        styles = json.loads((folder / "styles.json").read_text())
        [(style["name"], style["model"]) for style in styles]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PalmbrushError(f"{folder}/styles.json: not a site's list of styles ({exc})") from None
    try:
        return _measure(folder, styles, isolated, sync)
    except sync.Error as exc:  # Chromium would not start, or the page failed
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PalmbrushError(f"{folder}: the page failed in Chromium: {line}") from None


def _measure(folder: Path, styles: list[dict], isolated: bool, sync) -> tuple[str, list[Row]]:
    from ..runtime import load

    rows = []
    with static_server(folder, isolated) as url, sync.sync_playwright() as playwright:
        chromium = browser(playwright)
        try:
            page = chromium.new_page()
            page.goto(url)
            wait_ready(page)
            engine = page.evaluate("window.palmbrush.engine")
            for style in styles:
                reference = load(folder / style["model"], engines="reference")
                for label, picture in photos().items():
                    stylize_on_page(page, picture, style["name"])  # warm-up (first run)
                    got, ms = stylize_on_page(page, picture, style["name"], RUNS)
                    want = reference.run({"frame": picture[None]})["stylized"][0]
                    diff = np.abs(got.astype(np.int16) - want)
                    rows.append(Row(style["name"], label, int(diff.max()),
                                    float((diff <= 1).mean()), float((diff == 0).mean()),
                                    ms))  # fmt: skip
        finally:
            chromium.close()
    return engine, rows


def report(folder: Path) -> int:
    """Print the check's table; 1 if a style misses the parity bar (99.9% within 1, max 2)."""
    engine, rows = measure(folder)
    print(f"{folder}: the page on {engine}, in headless Chromium, vs palmbrush's reference")
    print(f"{'style':<16} {'photo':<14} {'max':>3} {'within 1':>9} {'exact':>8} {'ms/frame':>9}")
    bad = 0
    for r in rows:
        ok = r.max_diff <= 2 and r.within_1 >= 0.999
        bad += not ok
        flag = "" if ok else "  <- below the bar"
        print(f"{r.style:<16} {r.photo:<14} {r.max_diff:>3} {100 * r.within_1:>8.3f}% "
              f"{100 * r.exact:>7.2f}% {r.ms:>9.1f}{flag}")  # fmt: skip
    return 1 if bad else 0
