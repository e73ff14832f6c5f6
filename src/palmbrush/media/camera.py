"""The live camera page: a local web server that stylizes the browser's camera stream.

The page (web/camera.html) sends camera frames as JPEG over a WebSocket, each prefixed by its
capture time; the server answers with the stylized JPEG and the same time, so the page can show
end-to-end latency. Each connection keeps only its newest frame: when the model is slower than
the camera, older frames are dropped, never queued, so latency stays bounded. Models run one
at a time on a worker thread; every tab has its own style and strength; a closed tab's task
ends with it. A malformed frame or setting, or a failure while stylizing, gets an error message
and the connection stays open. Who may connect is camera_guard's policy.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import json
import logging
import struct
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ..contract import MIN_SIDE
from ..errors import PalmbrushError
from . import require
from .camera_guard import Policy, guard, security_headers
from .camera_worker import Job, TabWorker

MAX_MESSAGE = 4 * 2**20  # bytes in one WebSocket message
MAX_SETTINGS = 1024  # characters in one settings message: a style name and a number
MAX_CAMERA_SIDE = 1920  # pixels on the longer side of a camera frame: a webcam's, no more
STAMP = struct.Struct("<d")  # the page's capture time, echoed back (milliseconds)
IDLE_CLOSE = 1008  # the WebSocket close code for a tab idle too long: policy violation
SEND_S = 30.0  # seconds a reply may take to reach a tab before the tab counts as gone
FORMATS = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}  # magic bytes -> Pillow format
NOT_AN_IMAGE = "frame is not a JPEG or PNG image"
SETTINGS_HINT = 'settings must be a JSON object like {"style": name, "strength": 0.5}'
log = logging.getLogger("palmbrush.camera")


@dataclass
class Style:
    name: str
    run: object  # frame [H, W, 3] uint8 -> the same, stylized
    thumbnail: bytes  # JPEG: the painting (built-in styles) or the style on a test card


def load_styles(specs: list[str | Path], engines: str | None, threads: int | None
                ) -> dict[str, Style]:  # fmt: skip
    """Built-in style names or model files -> Styles by name. A built-in style's thumbnail is
    its painting; a model file's is the model's rendering of a test card. The styles share one
    budget for the plans of the frame sizes they see (the runtime's default for one model)."""
    from ..runtime.memory import PLAN_CACHE_BYTES
    from ..styles import catalogue, style_name
    from .filters import load_style

    styles = {}
    card = _test_card()
    for spec in specs:
        run = load_style(spec, engines, threads, PLAN_CACHE_BYTES // max(1, len(specs)))
        name = style_name(spec)
        builtin = catalogue().get(str(spec))
        thumb = builtin.thumbnail.read_bytes() if builtin else encode_jpeg(run(card), 85)
        styles[name] = Style(name, run, thumb)
    return styles


def _test_card(size: int = 96) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] / size
    card = np.stack([x, y, 0.5 + 0.5 * np.sin(6 * x * y)], -1) * 255
    return card.astype(np.uint8)


def decode_jpeg(data: bytes) -> np.ndarray:
    """A JPEG or PNG frame -> RGB [H, W, 3]; any other format (by its magic bytes and by Pillow's
    reading), a broken file or a size outside MIN_SIDE..MAX_CAMERA_SIDE is a PalmbrushError."""
    Image = require("PIL.Image", "pillow")
    formats = [name for magic, name in FORMATS.items() if data.startswith(magic)]
    if not formats:
        raise PalmbrushError(NOT_AN_IMAGE)
    try:
        image = Image.open(io.BytesIO(data), formats=formats)
        if max(image.size) > MAX_CAMERA_SIDE or min(image.size) < MIN_SIDE:
            width, height = image.size
            raise PalmbrushError(f"frame is {width}x{height} ({MIN_SIDE} to {MAX_CAMERA_SIDE})")
        return np.asarray(image.convert("RGB"))
    except PalmbrushError:
        raise
    except Exception:
        raise PalmbrushError(NOT_AN_IMAGE) from None


def encode_jpeg(frame: np.ndarray, quality: int = 80) -> bytes:
    Image = require("PIL.Image", "pillow")
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def parse_settings(text: str, styles) -> dict | str:
    """The page's {"style": name, "strength": 0..1} -> the settings it changes, or an error
    message. The size is bounded before parsing, so no nesting can exhaust the stack."""
    if len(text) > MAX_SETTINGS:
        return f"settings are over {MAX_SETTINGS} characters"
    try:
        settings = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return SETTINGS_HINT
    if not isinstance(settings, dict):
        return SETTINGS_HINT
    unknown = sorted(set(settings) - {"style", "strength"})
    if unknown:
        return f"unknown setting '{unknown[0][:40]}' (known: style, strength)"
    style, strength = settings.get("style"), settings.get("strength", 1.0)
    if "style" in settings and not isinstance(style, str):
        return "style must be a style's name"
    if "style" in settings and style not in styles:
        return f"unknown style '{style[:40]}'"
    if isinstance(strength, bool) or not isinstance(strength, (int, float)):
        return "strength must be a number"
    if not 0.0 <= strength <= 1.0:
        return "strength must be between 0 and 1"
    return settings


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number")


class Session:
    """One connected page: its settings, and the worker that paints its newest frame."""

    def __init__(self, style: str, worker: TabWorker):
        self.style, self.strength = style, 1.0
        self.worker = worker

    @property
    def waiting(self) -> bool:
        """Whether the tab is waiting for us (a frame queued or being painted): not idle."""
        return self.worker.waiting

    def offer(self, message: bytes) -> str | None:
        """Keep a stamped frame as the newest (an error message if it has no picture)."""
        if len(message) <= STAMP.size:
            return "empty frame"
        (stamp,) = STAMP.unpack_from(message)
        self.worker.latest.offer(Job(stamp, message[STAMP.size :], self.style, self.strength))
        return None

    def apply(self, settings: dict | str) -> str | None:
        """Take parse_settings' result: the changes, or pass its error message on."""
        if isinstance(settings, str):
            return settings
        self.style = settings.get("style", self.style)
        self.strength = float(settings.get("strength", self.strength))
        return None


class CameraServer:
    """The app's state: the styles and the open tabs (each with its worker pipeline)."""

    def __init__(self, styles: dict[str, Style], policy: Policy):
        self.styles, self.policy = styles, policy
        self.sessions: set[Session] = set()
        self.page = resources.files("palmbrush.media").joinpath("web/camera.html").read_text()
        self.web = require("aiohttp.web", "aiohttp")

    def app(self):
        web = self.web
        headers = security_headers(self.page)

        async def add_headers(request, response):
            response.headers.update(headers)

        app = web.Application(client_max_size=MAX_MESSAGE, middlewares=[guard(self.policy)])
        app.add_routes([web.get("/", self.index), web.get("/styles", self.style_list),
                        web.get("/thumbnail/{name}", self.thumbnail),
                        web.get("/status", self.status),
                        web.get("/ws", self.websocket)])  # fmt: skip
        app.on_response_prepare.append(add_headers)
        return app

    async def index(self, request):
        return self.web.Response(text=self.page, content_type="text/html")

    async def style_list(self, request):
        return self.web.json_response([{"name": s.name} for s in self.styles.values()])

    async def thumbnail(self, request):
        style = self.styles.get(request.match_info["name"])
        if style is None:
            raise self.web.HTTPNotFound()
        return self.web.Response(body=style.thumbnail, content_type="image/jpeg")

    async def status(self, request):
        """The open tabs, the styles, and each tab's frames dropped and stage times."""
        tabs = [s.worker.stats() for s in self.sessions]
        return self.web.json_response({"clients": len(self.sessions), "styles": list(self.styles),
                                       "tabs": tabs})  # fmt: skip

    async def websocket(self, request):
        """One tab: 503 before the upgrade when max_clients tabs are open already."""
        web = self.web
        if len(self.sessions) >= self.policy.max_clients:
            text = f"refused: {self.policy.max_clients} tabs are open already (--max-clients)\n"
            return web.Response(status=503, text=text)
        loop = asyncio.get_running_loop()
        ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE, heartbeat=30)
        worker = TabWorker(self.styles, lambda job: _answer(loop, ws, job))
        session = Session(next(iter(self.styles)), worker)
        self.sessions.add(session)  # before any await: the cap cannot be raced past
        done = None
        try:
            await ws.prepare(request)
            done = _start(loop, worker, ws)
            await self._receive(ws, session)
        finally:
            worker.stop()  # it ends after the frame it is on, if any
            self.sessions.discard(session)  # the cap counts open tabs, not ending workers
            if done is not None:
                await done
        return ws

    async def _receive(self, ws, session: Session) -> None:
        """Messages until the tab closes, or sends nothing for idle_timeout seconds while it
        waits for nothing from us (a first frame may take long: kernels compile)."""
        kinds = (self.web.WSMsgType.BINARY, self.web.WSMsgType.TEXT)
        while True:
            try:
                message = await ws.receive(timeout=self.policy.idle_timeout)
            except asyncio.TimeoutError:
                if session.waiting:
                    continue
                await ws.close(code=IDLE_CLOSE, message=b"idle")
                return
            if message.type not in kinds:  # closing or broken (aiohttp answers pings itself)
                return
            try:
                error = self._take(session, message)
            except Exception as exc:  # a bug here must not drop the tab
                log.exception("a message from a tab failed")
                error = f"internal error: {type(exc).__name__}"
            if error is not None and not await _send(ws, error):
                return

    def _take(self, session: Session, message) -> str | None:
        if message.type == self.web.WSMsgType.BINARY:
            return session.offer(message.data)
        return session.apply(parse_settings(message.data, self.styles))


def _start(loop, worker: TabWorker, ws) -> asyncio.Future:
    """The tab's worker on a thread of its own (one per tab: a tab holds it while open); a
    future that is done when it has stopped. A worker that ends while its tab is open (it
    failed) closes the tab's socket, so the page reconnects to a new one."""
    done = loop.create_future()

    def body() -> None:
        try:
            worker.run()
        except Exception:
            log.exception("a tab's worker failed")
        finally:
            worker.stop()
            _close_soon(loop, ws)
            # RuntimeError: the server has stopped, so nobody waits for it
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))

    threading.Thread(target=body, name="tab", daemon=True).start()
    return done


def _answer(loop, ws, job: Job) -> bool:
    """From the tab's worker thread: the job's reply to the tab, in the event loop; False if
    the tab cannot take it (then the page reconnects: a tab is never left unanswered)."""
    reply = STAMP.pack(job.stamp) + job.reply if isinstance(job.reply, bytes) else job.reply
    try:
        sent = asyncio.run_coroutine_threadsafe(_send(ws, reply), loop).result(SEND_S)
    except (RuntimeError, concurrent.futures.CancelledError, TimeoutError):  # loop closing
        return False
    if not sent:
        _close_soon(loop, ws)
    return sent


def _close_soon(loop, ws) -> None:
    """From a worker thread: close the tab's socket in the event loop, if it still runs."""
    closing = ws.close()
    try:
        asyncio.run_coroutine_threadsafe(closing, loop)
    except RuntimeError:  # the server has stopped: nothing to close it in
        closing.close()


async def _send(ws, reply: bytes | str) -> bool:
    """A stylized frame (bytes) or an error message (str) to the tab; False if it cannot be."""
    if ws.closed:
        return False
    try:
        if isinstance(reply, bytes):
            await ws.send_bytes(reply)
        else:
            await ws.send_str(json.dumps({"type": "error", "message": reply}))
    except ConnectionError:
        return False  # the tab went away
    except Exception:
        log.exception("sending to a tab failed")
        return False
    return True


def make_app(styles: dict[str, Style], policy: Policy | None = None):
    """The aiohttp application for these styles, under `policy` (default: local only)."""
    return CameraServer(styles, policy or Policy()).app()
