"""The live camera page: a local web server that stylizes the browser's camera stream.

The page (web/camera.html) sends camera frames as JPEG over a WebSocket, each prefixed by its
capture time; the server answers with the stylized JPEG and the same time, so the page can show
end-to-end latency. Each connection keeps only its newest frame: when the model is slower than
the camera, older frames are dropped, never queued, so latency stays bounded. Models run one
at a time on a worker thread; every tab has its own style and strength; a closed tab's task
ends with it. Oversized or malformed frames get an error message; the connection stays open.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import json
import struct
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ..runtime.errors import PalmbrushError
from . import require

MAX_MESSAGE = 4 * 2**20  # bytes in one WebSocket message
MAX_SIDE = 1920  # pixels on the longer side of a camera frame
STAMP = struct.Struct("<d")  # the page's capture time, echoed back (milliseconds)


@dataclass
class Style:
    name: str
    run: object  # frame [H, W, 3] uint8 -> the same, stylized
    thumbnail: bytes  # JPEG: the painting (built-in styles) or the style on a test card


def load_styles(specs: list[str | Path], engines: str | None, threads: int | None
                ) -> dict[str, Style]:  # fmt: skip
    """Built-in style names or model files -> Styles by name. A built-in style's thumbnail is
    its painting; a model file's is the model's rendering of a test card."""
    from ..styles import catalogue, style_name
    from .filters import load_style

    styles = {}
    card = _test_card()
    for spec in specs:
        run = load_style(spec, engines, threads)
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
    Image = require("PIL.Image", "pillow")
    try:
        image = Image.open(io.BytesIO(data))
        if max(image.size) > MAX_SIDE or min(image.size) < 32:
            raise PalmbrushError(f"frame is {image.size[0]}x{image.size[1]} (32 to {MAX_SIDE})")
        return np.asarray(image.convert("RGB"))
    except PalmbrushError:
        raise
    except Exception:
        raise PalmbrushError("frame is not a JPEG or PNG image") from None


def encode_jpeg(frame: np.ndarray, quality: int = 80) -> bytes:
    Image = require("PIL.Image", "pillow")
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


class Session:
    """One connected page: its settings and its newest unprocessed frame."""

    def __init__(self, style: str):
        self.style, self.strength = style, 1.0
        self.latest: tuple[float, bytes] | None = None
        self.ready = asyncio.Event()


def make_app(styles: dict[str, Style]):
    web = require("aiohttp.web", "aiohttp")
    worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="stylize")
    sessions: set[Session] = set()
    page = resources.files("palmbrush.media").joinpath("web/camera.html").read_text()

    async def index(request):
        return web.Response(text=page, content_type="text/html")

    async def style_list(request):
        return web.json_response([{"name": s.name} for s in styles.values()])

    async def thumbnail(request):
        style = styles.get(request.match_info["name"])
        if style is None:
            raise web.HTTPNotFound()
        return web.Response(body=style.thumbnail, content_type="image/jpeg")

    async def status(request):
        return web.json_response({"clients": len(sessions), "styles": list(styles)})

    def stylize(session: Session, data: bytes) -> bytes:
        frame = decode_jpeg(data)
        out = styles[session.style].run(frame)
        if session.strength < 1.0:
            mixed = frame + session.strength * (out.astype(np.float32) - frame)
            out = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
        return encode_jpeg(out)

    async def process(ws, session: Session) -> None:
        loop = asyncio.get_running_loop()
        while not ws.closed:
            await session.ready.wait()
            session.ready.clear()
            stamp, data = session.latest
            try:
                jpeg = await loop.run_in_executor(worker, stylize, session, data)
            except PalmbrushError as exc:
                await ws.send_str(json.dumps({"type": "error", "message": str(exc)}))
                continue
            if not ws.closed:
                await ws.send_bytes(STAMP.pack(stamp) + jpeg)

    async def socket(request):
        ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE, heartbeat=30)
        await ws.prepare(request)
        session = Session(next(iter(styles)))
        sessions.add(session)
        task = asyncio.create_task(process(ws, session))
        try:
            async for message in ws:
                if message.type == web.WSMsgType.BINARY:
                    if len(message.data) <= STAMP.size:
                        await ws.send_str(json.dumps({"type": "error", "message": "empty frame"}))
                        continue
                    (stamp,) = STAMP.unpack_from(message.data)
                    session.latest = (stamp, message.data[STAMP.size :])  # newest wins
                    session.ready.set()
                elif message.type == web.WSMsgType.TEXT:
                    error = _settings(session, message.data, styles)
                    if error:
                        await ws.send_str(json.dumps({"type": "error", "message": error}))
        finally:
            task.cancel()
            sessions.discard(session)
        return ws

    app = web.Application(client_max_size=MAX_MESSAGE)
    app.add_routes([web.get("/", index), web.get("/styles", style_list),
                    web.get("/thumbnail/{name}", thumbnail), web.get("/status", status),
                    web.get("/ws", socket)])  # fmt: skip
    app.on_cleanup.append(lambda app: asyncio.to_thread(worker.shutdown))
    return app


def _settings(session: Session, text: str, styles: dict[str, Style]) -> str | None:
    """Apply {"style": name, "strength": 0..1} from the page; an error message if invalid."""
    try:
        settings = json.loads(text)
        style = settings.get("style", session.style)
        strength = float(settings.get("strength", session.strength))
    except (ValueError, TypeError, AttributeError):
        return 'settings must be JSON like {"style": name, "strength": 0.5}'
    if style not in styles:
        return f"unknown style '{style}'"
    if not 0.0 <= strength <= 1.0:
        return "strength must be between 0 and 1"
    session.style, session.strength = style, strength
    return None
