"""Who may talk to the camera server, and for how long: a laptop that browses the web runs it.

Any page the user visits can open a WebSocket or point a DNS name at 127.0.0.1, so every request
must name this server in its Host (DNS rebinding sends the attacker's name) and, when it carries
an Origin, come from one of this server's own origins or one allowed with --allow-origin.
Browsers always send Origin with a WebSocket handshake; one without (a non-browser tool, which
could forge any header anyway) is let through. Open connections are capped, a request's headers
must arrive within a timeout, and one more connection than the cap is answered 503 and closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import re
import signal
from base64 import b64encode
from collections.abc import Callable
from dataclasses import dataclass

from . import require

SPARE_CONNECTIONS = 24  # connections beyond one per WebSocket: page loads, thumbnails, probes
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
BUSY = b"too many open connections to the camera server; try again soon\n"


@dataclass(frozen=True)
class Policy:
    host: str = "127.0.0.1"  # the address it listens on (--host)
    allow_origins: frozenset[str] = frozenset()  # more origins, like https://name:8443
    max_clients: int = 8  # open WebSockets (tabs)
    header_timeout: float = 10.0  # seconds to send a request's headers, or to idle between
    idle_timeout: float = 60.0  # seconds a WebSocket may send nothing

    @property
    def max_connections(self) -> int:
        return self.max_clients + SPARE_CONNECTIONS


def is_loopback(host: str) -> bool:
    """True for an address only this computer can reach (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def check_host(host: str, lan: bool, program: str, who: str) -> None:
    """A --host other computers can reach needs --lan, and gets a warning naming `who` may
    use it ('can vote', 'can use this server and its styles')."""
    import sys

    from palmbrush.errors import PalmbrushError

    if is_loopback(host):
        return
    if not lan:
        raise PalmbrushError(f"--host {host} can be reached from other computers; "
                             "add --lan if that is what you want")  # fmt: skip
    print(f"{program}: warning: listening on {host}; anyone who can reach it {who}",
          file=sys.stderr, flush=True)  # fmt: skip


def address(bound: list[tuple], scheme: str = "http") -> str:
    """http://HOST:PORT/ of the first address a server is really bound to."""
    host, port = bound[0][0], bound[0][1]
    return f"{scheme}://[{host}]:{port}/" if ":" in host else f"{scheme}://{host}:{port}/"


def parse_origin(text: str) -> str:
    """'https://Name:8443' -> 'https://name:8443'; ValueError unless scheme://host[:port]."""
    origin = text.strip().lower().rstrip("/")
    if not re.fullmatch(r"https?://(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?", origin):
        raise ValueError(f"'{text}' is not an origin like http://name:8765")
    return origin


def own_hosts(policy: Policy, sockname: tuple) -> set[str]:
    """The Host values that name this server, reached at the local address `sockname`; an
    allowed origin's host[:port] is one too (a name or a proxy the user chose)."""
    ip, port = sockname[0], sockname[1]
    names = {*LOOPBACK_NAMES, _literal(ip)}
    if not _unspecified(policy.host):
        names.add(_literal(policy.host))
    hosts = {f"{name}:{port}" for name in names}
    if port == 80:
        hosts |= names
    return hosts | {origin.split("://", 1)[1] for origin in policy.allow_origins}


def refusal(policy: Policy, headers, sockname: tuple | None) -> str | None:
    """Why a request with these headers, reached at `sockname`, is refused; None if it is not."""
    if sockname is None:
        return "refused: the connection is closed"
    hosts = own_hosts(policy, sockname)
    host = headers.get("Host", "").lower()
    if host not in hosts:
        return f"refused: Host '{host[:80]}' is not this server (see --allow-origin)"
    origin = headers.get("Origin")
    if origin is not None and not _origin_ok(origin.lower(), hosts, policy):
        return f"refused: Origin '{origin[:80]}' is not this server's page (see --allow-origin)"
    return None


def _origin_ok(origin: str, hosts: set[str], policy: Policy) -> bool:
    scheme, _, authority = origin.partition("://")
    return origin in policy.allow_origins or (scheme in ("http", "https") and authority in hosts)


def _literal(ip: str) -> str:
    return f"[{ip.lower()}]" if ":" in ip else ip.lower()


def _unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def guard(policy: Policy):
    """An aiohttp middleware: 403 with a one-line reason for a request refusal() refuses."""
    web = require("aiohttp.web", "aiohttp")

    @web.middleware
    async def middleware(request, handler):
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        reason = refusal(policy, request.headers, sockname)
        if reason is not None:
            return web.Response(status=403, text=reason + "\n")
        return await handler(request)

    return middleware


def security_headers(page: str) -> dict[str, str]:
    """Headers for every response: a CSP that runs only the page's own inline script and style
    (by hash), no framing, no MIME sniffing, no embedding by other sites."""
    script, style = (_inline_hash(page, tag) for tag in ("script", "style"))
    policy = (f"default-src 'none'; script-src {script}; style-src {style}; "
              "img-src 'self' blob:; media-src 'self' blob: mediastream:; connect-src 'self'; "
              "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")  # fmt: skip
    return {"Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
            "Cross-Origin-Resource-Policy": "same-origin"}  # fmt: skip


def _inline_hash(page: str, tag: str) -> str:
    match = re.search(rf"<{tag}>(.*?)</{tag}>", page, re.S)
    if match is None:
        return "'none'"
    digest = hashlib.sha256(match.group(1).encode()).digest()
    return f"'sha256-{b64encode(digest).decode()}'"


class ConnectionGate:
    """aiohttp's protocol factory, counted: at most `limit` connections are open at once; one
    more is answered 503 with a one-line reason and closed."""

    def __init__(self, factory: Callable[[], asyncio.Protocol], limit: int, header_timeout: float):
        self.factory, self.limit, self.open = factory, limit, 0
        self.header_timeout = header_timeout

    def __call__(self) -> asyncio.Protocol:
        if self.open >= self.limit:
            return _Refused()
        self.open += 1
        return _Counted(self.factory(), self)


class _Counted(asyncio.Protocol):
    """Passes every event to aiohttp's handler; a lost connection gives its place back, and one
    whose first request's headers have not ended (a blank line) within the timeout is closed.
    (aiohttp's keep-alive timer guards the wait between requests, and only recent releases
    start it before the first one.)"""

    def __init__(self, inner: asyncio.Protocol, gate: ConnectionGate):
        self.inner, self.gate = inner, gate
        self.head: bytes | None = b""  # the first request's last bytes, until its headers end

    def connection_made(self, transport) -> None:
        self.timer = asyncio.get_running_loop().call_later(
            self.gate.header_timeout, transport.close
        )
        self.inner.connection_made(transport)

    def connection_lost(self, exc) -> None:
        self.timer.cancel()
        self.gate.open -= 1
        self.inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.head is not None:
            seen = self.head + data
            if b"\r\n\r\n" in seen:  # the headers are complete
                self.timer.cancel()
                self.head = None
            else:
                self.head = seen[-3:]  # a blank line may straddle two reads
        self.inner.data_received(data)

    def eof_received(self):
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class _Refused(asyncio.Protocol):
    """503 and the reason, then a half close; the socket closes when the client closes its end
    or a second later, so the client reads the reply instead of a reset."""

    def connection_made(self, transport) -> None:
        head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(BUSY)}\r\nConnection: close\r\n\r\n")  # fmt: skip
        transport.write(head.encode() + BUSY)
        transport.write_eof()
        self.timer = asyncio.get_running_loop().call_later(1.0, transport.close)

    def connection_lost(self, exc) -> None:
        self.timer.cancel()

    def eof_received(self) -> bool:
        return False  # the transport closes


async def serve(app, policy: Policy, port: int, ready: Callable[[list[tuple]], None],
                tls=None) -> None:  # fmt: skip
    """Run `app` on policy.host:port until SIGINT or SIGTERM; `ready` gets the addresses the
    listening sockets are bound to. The first request's headers must arrive within
    policy.header_timeout (ConnectionGate), and so must each later one (aiohttp's keep-alive).
    tls: an ssl.SSLContext to serve HTTPS."""
    web = require("aiohttp.web", "aiohttp")
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0,
                           keepalive_timeout=policy.header_timeout,
                           lingering_time=policy.header_timeout,
                           max_line_size=4096, max_field_size=4096, max_headers=32)  # fmt: skip
    await runner.setup()
    loop = asyncio.get_running_loop()
    try:
        gate = ConnectionGate(runner.server, policy.max_connections, policy.header_timeout)
        secure = {"ssl": tls, "ssl_handshake_timeout": policy.header_timeout} if tls else {}
        listener = await loop.create_server(gate, policy.host, port, **secure)
        ready([sock.getsockname() for sock in listener.sockets])
        await _until_signal(loop)
        listener.close()
    finally:
        await runner.cleanup()


async def _until_signal(loop: asyncio.AbstractEventLoop) -> None:
    stop = asyncio.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C still interrupts
            loop.add_signal_handler(number, stop.set)
    await stop.wait()
