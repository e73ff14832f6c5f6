"""The camera server as a web page on the same laptop would meet it: a real `palmbrush camera`
in another process, probed with raw sockets and aiohttp's client. Foreign Host and Origin,
the tab cap, half-sent requests, bad settings and frames, and many frame sizes."""

from __future__ import annotations

import asyncio
import io
import json
import re
import select
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLE, stop_process

aiohttp = pytest.importorskip("aiohttp")
Image = pytest.importorskip("PIL.Image")

MAX_CLIENTS = 2
HEADER_TIMEOUT = 1.0  # seconds; the server's default is 10
IDLE_TIMEOUT = 4.0
FRIEND = "http://friend.example:9000"  # an origin the server is told to allow


@dataclass
class Camera:
    """A running `palmbrush camera`, at the address it printed from its bound socket."""

    process: subprocess.Popen
    host: str
    port: int
    log: Path  # its stderr

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        stop_process(self.process)


def start_camera(folder: Path, *args: str, seconds: float = 120) -> Camera:
    """`palmbrush camera --port 0 ARGS` in a new process; waits for the line with its address."""
    log = folder / "server.log"
    command = [sys.executable, "-m", "palmbrush.cli.main", "camera", "--port", "0", *args]
    with open(log, "w") as err:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if select.select([process.stdout], [], [], 0.5)[0]:
            line = process.stdout.readline()
            match = re.search(r"http://(\[[^\]]+\]|[^:/]+):(\d+)/", line)
            if match:
                return Camera(process, match.group(1), int(match.group(2)), log)
        if process.poll() is not None:
            pytest.fail(f"camera server exited: {log.read_text()}")
    process.kill()
    pytest.fail(f"camera server printed no address in {seconds} s: {log.read_text()}")


def listening(pid: int) -> list[tuple[str, int]]:
    """The addresses the process's own listening TCP sockets are bound to (Linux /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        match = re.fullmatch(r"socket:\[(\d+)\]", _readlink(fd))
        if match:
            inodes.add(match.group(1))
    found = []
    for table in ("tcp", "tcp6"):
        for row in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = row.split()
            address, port = fields[1].split(":")
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.append((_proc_ip(address), int(port, 16)))
    return found


def _readlink(path: Path) -> str:
    try:
        return str(path.readlink())
    except OSError:  # closed meanwhile
        return ""


def _proc_ip(hex_address: str) -> str:
    """/proc/net/tcp's address: 32-bit words in host (little-endian) order."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    family = socket.AF_INET if len(words) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, words)


def open_sockets(pid: int) -> int:
    return sum(_readlink(fd).startswith("socket:") for fd in Path(f"/proc/{pid}/fd").iterdir())


def rss_mib(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * 4096 / 2**20


def http(camera: Camera, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """A raw HTTP/1.1 GET (any Host header, unlike urllib): the status and the body."""
    headers = {"Host": f"127.0.0.1:{camera.port}", **(headers or {}), "Connection": "close"}
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items() if v is not None)
    with socket.create_connection(("127.0.0.1", camera.port), timeout=30) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\n{head}\r\n".encode())
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    status, _, rest = reply.partition(b"\r\n")
    return int(status.split()[1]), rest.partition(b"\r\n\r\n")[2].decode(errors="replace")


def frame(width: int = 320, height: int = 240, fmt: str = "JPEG") -> bytes:
    """A smooth test picture, encoded (small files at any size)."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], -1).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt)
    return buffer.getvalue()


def stamped(data: bytes, stamp: float = 1.0) -> bytes:
    return np.float64(stamp).tobytes() + data


async def reply(ws, seconds: float = 60):
    """The next answer: ('frame', stamp) or ('error', message)."""
    message = await ws.receive(timeout=seconds)
    if message.type == aiohttp.WSMsgType.BINARY:
        assert message.data[8:10] == b"\xff\xd8"  # a JPEG
        return "frame", float(np.frombuffer(message.data[:8], np.float64)[0])
    assert message.type == aiohttp.WSMsgType.TEXT, message
    answer = json.loads(message.data)
    assert answer["type"] == "error"
    return "error", answer["message"]


def talk(camera: Camera, conversation, origin: str | None = None):
    """Run `conversation(ws)` over one WebSocket to the server; its result."""

    async def run():
        async with aiohttp.ClientSession() as session:
            url = f"ws://127.0.0.1:{camera.port}/ws"
            async with session.ws_connect(url, origin=origin) as ws:
                return await conversation(ws)

    return asyncio.run(run())


def wait_for_no_clients(camera: Camera, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while json.loads(http(camera, "/status")[1])["clients"]:
        assert time.monotonic() < deadline, "tabs from an earlier test are still open"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def camera(tmp_path_factory):
    folder = tmp_path_factory.mktemp("camera-server")
    server = start_camera(folder, "--style", "starry-night", "--threads", "2",
                          "--max-clients", str(MAX_CLIENTS), "--allow-origin", FRIEND,
                          "--header-timeout", str(HEADER_TIMEOUT),
                          "--idle-timeout", str(IDLE_TIMEOUT))  # fmt: skip
    yield server
    server.stop()


@pytest.fixture
def fresh(camera):
    """The server with no tab open, and still alive afterwards."""
    wait_for_no_clients(camera)
    yield camera
    assert camera.process.poll() is None, camera.log.read_text()
    assert http(camera, "/status")[0] == 200


def test_the_server_prints_the_address_its_socket_is_bound_to(fresh):
    assert fresh.host == "127.0.0.1"
    if sys.platform.startswith("linux"):
        assert listening(fresh.process.pid) == [("127.0.0.1", fresh.port)]


@pytest.mark.parametrize("path", ["/", "/styles", "/status", "/thumbnail/starry-night", "/ws"])
def test_a_foreign_host_is_refused_on_every_route(fresh, path):
    """DNS rebinding: a page's own name pointed at 127.0.0.1 arrives as its Host."""
    upgrade = {"Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}  # fmt: skip
    extra = upgrade if path == "/ws" else {}
    status, body = http(fresh, path, {"Host": f"evil.example:{fresh.port}", **extra})
    assert status == 403 and "Host 'evil.example:" in body and body.count("\n") == 1
    assert http(fresh, path, {"Host": "127.0.0.1", **extra})[0] == 403  # wrong port
    assert http(fresh, path, {"Host": None, **extra})[0] in (400, 403)  # none (HTTP/1.1: 400)
    if path != "/ws":
        for own in (f"localhost:{fresh.port}", f"[::1]:{fresh.port}", f"127.0.0.1:{fresh.port}"):
            assert http(fresh, path, {"Host": own})[0] == 200, own


def test_a_foreign_origin_cannot_open_the_websocket(fresh):
    port = fresh.port
    foreign = ["http://evil.example", f"http://evil.example:{port}", "null",
               f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"]  # fmt: skip
    for origin in foreign:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            talk(fresh, lambda ws: ws.close(), origin=origin)
        assert refused.value.status == 403, origin
    status, body = http(fresh, "/status", {"Origin": "http://evil.example"})
    assert status == 403 and "Origin 'http://evil.example'" in body

    async def one_frame(ws):
        await ws.send_bytes(stamped(frame()))
        return await reply(ws)

    for origin in (
        f"http://localhost:{fresh.port}",
        f"http://127.0.0.1:{fresh.port}",
        FRIEND,
        None,
    ):
        assert talk(fresh, one_frame, origin=origin) == ("frame", 1.0), origin


def test_one_tab_more_than_the_cap_is_refused_and_the_others_keep_working(fresh):
    async def run():
        async with aiohttp.ClientSession() as session:
            url = f"ws://127.0.0.1:{fresh.port}/ws"
            tabs = [await session.ws_connect(url) for _ in range(MAX_CLIENTS)]
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(url)
            async with session.get(f"http://127.0.0.1:{fresh.port}/ws") as response:
                text = await response.text()
            answers = []
            for i, ws in enumerate(tabs):
                await ws.send_bytes(stamped(frame(), stamp=i))
                answers.append(await reply(ws))
            for ws in tabs:
                await ws.close()
            return refused.value.status, text, answers

    status, text, answers = asyncio.run(run())
    assert status == 503 and f"{MAX_CLIENTS} tabs are open already" in text
    assert answers == [("frame", float(i)) for i in range(MAX_CLIENTS)]


SLOW_HEADERS = 8.0  # seconds: far longer than opening every connection takes, even under load


@pytest.fixture
def patient(tmp_path):
    """A server of its own whose header timeout outlasts opening many connections, so none is
    closed (freeing a place under the cap) before the last one is open."""
    server = start_camera(tmp_path, "--style", str(SAMPLE), "--max-clients", str(MAX_CLIENTS),
                          "--header-timeout", str(SLOW_HEADERS))  # fmt: skip
    yield server
    server.stop()


def test_half_sent_requests_are_closed_and_the_connections_capped(patient):
    """Requests whose headers never end: the server holds at most its connection cap, answers
    the rest 503, closes every one within the header timeout, and serves on."""
    from palmbrush.media.camera_guard import BUSY, SPARE_CONNECTIONS

    cap = MAX_CLIENTS + SPARE_CONNECTIONS
    start = time.monotonic()
    clients = []
    for _ in range(3 * cap):
        s = socket.create_connection(("127.0.0.1", patient.port), timeout=10)
        s.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{patient.port}\r\nX-Slow: ".encode())
        clients.append(s)
    answers = _until_closed(clients, seconds=SLOW_HEADERS + 20)
    elapsed = time.monotonic() - start
    held = answers.count(b"")  # taken in by aiohttp, then closed at the header timeout
    busy = sum(a.startswith(b"HTTP/1.1 503 ") and a.endswith(BUSY) for a in answers)
    assert held == cap and busy == len(clients) - cap, (held, busy)
    assert elapsed < SLOW_HEADERS + 20  # every one closed by the server
    deadline = time.monotonic() + 10
    while open_sockets(patient.process.pid) >= 10:  # none left behind (the listener, the loop's)
        assert time.monotonic() < deadline, f"{open_sockets(patient.process.pid)} sockets open"
        time.sleep(0.1)
    assert http(patient, "/status")[0] == 200  # and it serves on


def _until_closed(clients: list[socket.socket], seconds: float) -> list[bytes]:
    """What each socket received before the server closed it; fails after `seconds`."""
    received = {s: b"" for s in clients}
    waiting = set(clients)
    deadline = time.monotonic() + seconds
    while waiting:
        assert time.monotonic() < deadline, f"{len(waiting)} connections still open"
        for s in select.select(list(waiting), [], [], 0.5)[0]:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                chunk = b""
            received[s] += chunk
            if not chunk:
                waiting.discard(s)
                s.close()
    return [received[s] for s in clients]


BAD_SETTINGS = [
    '{"style": []}', '{"style": 5}', '{"style": "no-such-style"}', "[]", '"x"', "null", "",
    "{not json", "[" * 100_000 + "]" * 100_000, '{"a":' * 200_000 + "1" + "}" * 200_000,
    '{"strength": "nan"}', '{"strength": NaN}', '{"strength": Infinity}', '{"strength": 1e400}',
    '{"strength": true}', '{"strength": 2}', '{"strength": -0.5}', '{"strength": null}',
    '{"colour": 1}', '{"style": "starry-night", "extra": {}}',
]  # fmt: skip


def test_bad_settings_get_an_error_and_the_same_tab_still_gets_paintings(fresh):
    async def conversation(ws):
        answers = []
        for i, text in enumerate(BAD_SETTINGS):
            await ws.send_str(text)
            answers.append(await reply(ws))
            await ws.send_bytes(stamped(frame(), stamp=i))
            answers.append(await reply(ws))
        await ws.send_str('{"style": "starry-night", "strength": 0.5}')  # good: no answer
        await ws.send_bytes(stamped(frame(), stamp=-1))
        answers.append(await reply(ws))
        return answers

    answers = talk(fresh, conversation)
    errors, frames = answers[0:-1:2], answers[1:-1:2]
    assert all(kind == "error" for kind, _ in errors), errors
    assert frames == [("frame", float(i)) for i in range(len(BAD_SETTINGS))]
    assert answers[-1] == ("frame", -1.0)
    assert "palmbrush/media/camera" not in fresh.log.read_text()  # no failure in our code


def test_only_jpeg_and_png_frames_are_decoded(fresh):
    others = [frame(fmt=f) for f in ("GIF", "BMP", "TIFF", "WEBP", "PPM")]
    disguised = b"\xff\xd8\xff" + frame(fmt="GIF")  # JPEG's magic bytes on another format
    truncated = frame()[:400]

    async def conversation(ws):
        answers = []
        for data in [*others, disguised, truncated, frame(fmt="PNG"), frame()]:
            await ws.send_bytes(stamped(data))
            answers.append(await reply(ws))
        return answers

    answers = talk(fresh, conversation)
    refused = answers[: len(others) + 2]
    assert refused == [("error", "frame is not a JPEG or PNG image")] * len(refused)
    assert answers[-2:] == [("frame", 1.0), ("frame", 1.0)]  # PNG, JPEG


def test_a_tab_that_sends_nothing_is_closed_after_the_idle_timeout(fresh):
    async def conversation(ws):
        start = time.monotonic()
        message = await ws.receive(timeout=IDLE_TIMEOUT + 30)
        return message, time.monotonic() - start

    message, waited = talk(fresh, conversation)
    assert message.type == aiohttp.WSMsgType.CLOSE and message.data == 1008  # policy violation
    assert message.extra == "idle" and waited < IDLE_TIMEOUT + 30


def test_frames_of_many_sizes_keep_the_server_memory_bounded(fresh):
    """Forty sizes over one tab. The runtime keeps a plan (and its arena) per input size; at
    these sizes an unbounded cache of them grows the server by about 1 GiB."""
    sizes = [(1280 + 8 * i, 720 + 4 * i) for i in range(40)]

    async def conversation(ws):
        await ws.send_bytes(stamped(frame(*sizes[0])))
        assert (await reply(ws))[0] == "frame"
        start = rss_mib(fresh.process.pid)
        for i, size in enumerate(sizes):
            await ws.send_bytes(stamped(frame(*size), stamp=i))
            assert await reply(ws) == ("frame", float(i)), size
        return rss_mib(fresh.process.pid) - start

    growth = talk(fresh, conversation)
    assert growth < 450, f"the server grew by {growth:.0f} MiB over {len(sizes)} frame sizes"


def test_an_unexpected_failure_is_logged_reported_and_the_tab_goes_on(caplog):
    """In-process: a style that raises a RuntimeError once. The tab gets the error, the failure
    is logged with its traceback, and the next frame is stylized."""
    from aiohttp.test_utils import TestServer

    from palmbrush.media.camera import Style, make_app

    calls = []

    def flaky(picture: np.ndarray) -> np.ndarray:
        calls.append(picture.shape)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return 255 - picture

    async def run():
        server = TestServer(make_app({"flaky": Style("flaky", flaky, b"")}), host="127.0.0.1")
        await server.start_server()
        try:
            url = server.make_url("/ws")
            async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
                answers = []
                for stamp in (1.0, 2.0):
                    await ws.send_bytes(stamped(frame(), stamp))
                    answers.append(await reply(ws))
                return answers
        finally:
            await server.close()

    with caplog.at_level("ERROR", logger="palmbrush.camera"):
        answers = asyncio.run(run())
    assert answers == [("error", "internal error: RuntimeError: a bug"), ("frame", 2.0)]
    assert [r.exc_info[0] for r in caplog.records] == [RuntimeError]


@pytest.mark.parametrize(
    ("host", "origin", "refused"),
    [
        ("127.0.0.1:8765", None, False),
        ("localhost:8765", "http://127.0.0.1:8765", False),
        ("[::1]:8765", "https://localhost:8765", False),
        ("LOCALHOST:8765", "HTTP://LOCALHOST:8765", False),
        ("friend.example:9000", FRIEND, False),  # an allowed origin's host is a name for it
        ("127.0.0.1:8766", None, True),
        ("127.0.0.1", None, True),
        ("evil.example:8765", None, True),
        ("", None, True),
        ("127.0.0.1:8765", "http://evil.example", True),
        ("127.0.0.1:8765", "null", True),
        ("127.0.0.1:8765", "file://", True),
        ("127.0.0.1:8765", "http://127.0.0.1:8765.evil.example", True),
    ],
)
def test_the_host_and_origin_policy(host, origin, refused):
    from palmbrush.media.camera_guard import Policy, refusal

    policy = Policy(allow_origins=frozenset([FRIEND]))
    headers = {"Host": host} | ({"Origin": origin} if origin else {})
    assert (refusal(policy, headers, ("127.0.0.1", 8765)) is not None) == refused


@pytest.mark.parametrize(
    "argv",
    [
        ["--port", "70000"], ["--port", "-1"], ["--port", "x"], ["--threads", "0"],
        ["--max-clients", "0"], ["--header-timeout", "0"], ["--idle-timeout", "nan"],
        ["--allow-origin", "evil"], ["--allow-origin", "http://a.example/path"],
    ],
)  # fmt: skip
def test_bad_options_are_one_line_and_exit_status_2(argv, capsys):
    from palmbrush.cli.main import main

    with pytest.raises(SystemExit) as stopped:
        main(["camera", *argv])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and err.count("\n") == 1 and argv[0] in err


def test_a_host_other_computers_can_reach_needs_lan_and_gets_a_warning(capsys):
    from palmbrush.errors import PalmbrushError
    from palmbrush.media.camera_guard import check_host

    for local in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        check_host(local, False, "palmbrush camera", "can use it")
    for remote in ("0.0.0.0", "::", "192.0.2.7", "laptop.example"):
        with pytest.raises(PalmbrushError, match="add --lan"):
            check_host(remote, False, "palmbrush camera", "can use it")
    check_host("192.0.2.7", True, "palmbrush camera", "can use it")
    assert "camera: warning: listening on 192.0.2.7; anyone" in capsys.readouterr().err


def test_the_styles_share_one_budget_for_the_plans_of_the_sizes_they_see(tmp_path):
    from palmbrush.media.camera import load_styles
    from palmbrush.runtime.memory import PLAN_CACHE_BYTES

    copies = [tmp_path / f"style{i}.onnx" for i in range(4)]
    for copy in copies:
        copy.write_bytes(SAMPLE.read_bytes())
    styles = load_styles(copies, engines=None, threads=1)
    budgets = [style.run.predictor.plan_cache.max_bytes for style in styles.values()]
    assert len(budgets) == 4 and sum(budgets) <= PLAN_CACHE_BYTES
    assert budgets == [PLAN_CACHE_BYTES // 4] * 4
