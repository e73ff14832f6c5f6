"""`palmbrush deploy --serve`: the site on this computer or the LAN, for a phone to open.

Loopback unless --host and --lan say otherwise (camera_guard: Host checked against this
server's own names, connections capped, header timeouts). Every response is cross-origin
isolated (COOP/COEP), so the page gets WASM threads. A phone's browser allows the camera only on
HTTPS (or localhost): --https serves TLS with a self-signed certificate made here (the
`cryptography` package), kept in the palmbrush cache and reused while it covers the address.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
from pathlib import Path

from ..cache import cache_dir
from ..media import require

HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def make_app(folder: Path, policy):
    """An aiohttp app serving the site's files (nothing else: no listing, no dotfiles)."""
    web = require("aiohttp.web", "aiohttp")
    from ..media.camera_guard import guard

    root = folder.resolve()

    async def page(request):
        name = request.match_info.get("path", "") or "index.html"
        try:  # symlinks are resolved: nothing outside the folder, no dotfiles
            path = (root / name).resolve()
            found = root in path.parents and path.is_file()
        except (OSError, ValueError):  # a NUL byte, a name too long
            found = False
        if not found or any(p.startswith(".") for p in Path(name).parts):
            raise web.HTTPNotFound()
        response = web.FileResponse(path)
        response.headers["Cache-Control"] = "no-cache"  # revalidated: a rebuilt site shows
        return response

    async def add_headers(request, response):
        response.headers.update(HEADERS)

    app = web.Application(middlewares=[guard(policy)])
    app.add_routes([web.get("/", page), web.get("/{path:.+}", page)])
    app.on_response_prepare.append(add_headers)
    return app


def lan_address() -> str | None:
    """This computer's address on the LAN (the one its default route uses), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent, a route is chosen
            return probe.getsockname()[0]
        except OSError:
            return None


def tls_context(names: list[str], folder: Path | None = None) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context with a self-signed certificate for `names` (host names and IP
    addresses), made once and kept in folder (default: the palmbrush cache); its path too."""
    require("cryptography", "cryptography", "deploy")
    folder = folder or cache_dir() / "deploy-tls"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if _covers(cert, names):
        try:
            context.load_cert_chain(cert, key)
            return context, cert
        except (OSError, ssl.SSLError):  # a key that does not match: made again below
            pass
    _make_certificate(cert, key, names)
    context.load_cert_chain(cert, key)
    return context, cert


def _covers(cert: Path, names: list[str]) -> bool:
    from cryptography import x509

    try:
        certificate = x509.load_pem_x509_certificate(cert.read_bytes())
        alt = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    have = {str(v) for v in alt.get_values_for_type(x509.DNSName)}
    have |= {str(v) for v in alt.get_values_for_type(x509.IPAddress)}
    soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=7)
    return set(names) <= have and certificate.not_valid_after_utc > soon


def _make_certificate(cert: Path, key: Path, names: list[str]) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "palmbrush deploy (self-signed)")])
    alt = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(private.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=397))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )  # fmt: skip
    _private_file(key, private.private_bytes(serialization.Encoding.PEM,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))  # fmt: skip
    _private_file(cert, certificate.public_bytes(serialization.Encoding.PEM))


def _private_file(path: Path, data: bytes) -> None:
    """Write `data` to path, readable by its owner only, all at once (a temporary file renamed
    into place: two servers starting together never see half a key)."""
    import os
    import tempfile

    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:  # mkstemp: mode 0600
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def qr(text: str) -> str:
    """The text as a QR code drawn with block characters, for a phone to scan off a terminal."""
    segno = require("segno", "segno", "deploy")
    import io

    buffer = io.StringIO()
    segno.make(text, error="l").terminal(out=buffer, compact=True)
    return buffer.getvalue()
