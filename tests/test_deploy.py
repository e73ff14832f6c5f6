"""`palmbrush deploy`: the static site in Debian's Chromium (Playwright) against a plain static
file server, its pictures against palmbrush's reference engine for every shipped style, the
camera on the page, the service worker offline, and `--serve --https` over TLS on loopback."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, stop_process
from test_camera import _fake_camera, _pixels, _y4m
from test_camera_server import listening

from palmbrush.errors import PalmbrushError

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
NEEDS_CHROMIUM = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)"
)


@pytest.fixture(scope="module")
def runtime() -> Path:
    from palmbrush.deploy import runtime

    try:
        return runtime.find()
    except PalmbrushError as exc:
        pytest.skip(f"needs the pinned onnxruntime-web (make test installs it with npm): {exc}")


@pytest.fixture(scope="module")
def site(runtime, tmp_path_factory) -> Path:
    """A site with every shipped style."""
    from palmbrush.deploy.site import build
    from palmbrush.styles import catalogue

    folder = tmp_path_factory.mktemp("deploy") / "site"
    build(list(catalogue()), folder, runtime)
    return folder


def _deploy(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return run_cli("deploy", *args, **kwargs)


def test_a_site_without_onnxruntime_web_is_a_clear_error_and_leaves_nothing(tmp_path):
    out = tmp_path / "site"
    done = _deploy("starry-night", "-o", str(out), "--runtime", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "onnxruntime-web 1.31.1 is not at" in done.stderr and "npm install" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    other = tmp_path / "other" / "dist"  # another version: refused, parity was not measured
    other.mkdir(parents=True)
    (other / "ort.wasm.min.mjs").write_text("//")
    (other.parent / "package.json").write_text(json.dumps({"version": "1.17.0"}))
    done = _deploy("starry-night", "-o", str(out), "--runtime", str(other.parent))
    assert done.returncode == 2 and "onnxruntime-web 1.17.0, not 1.31.1" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other"]


def test_the_output_folder_is_never_lost(runtime, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    done = _deploy("starry-night", "-o", str(mine), "--runtime", str(runtime))
    assert done.returncode == 2 and "not a palmbrush site" in done.stderr
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]

    out = tmp_path / "site"
    assert _deploy("starry-night", "-o", str(out), "--runtime", str(runtime)).returncode == 0
    first = (out / "site.json").read_bytes()
    again = _deploy("udnie", "-o", str(out), "--runtime", str(runtime))
    assert again.returncode == 2 and "--overwrite" in again.stderr
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    failed = _deploy(str(broken), "-o", str(out), "--overwrite", "--runtime", str(runtime))
    assert failed.returncode == 2 and "broken.onnx" in failed.stderr
    assert (out / "site.json").read_bytes() == first  # the old site, whole
    replaced = _deploy("udnie", "-o", str(out), "--overwrite", "--runtime", str(runtime))
    assert replaced.returncode == 0, replaced.stderr
    assert json.loads((out / "site.json").read_text())["styles"] == ["udnie"]
    assert not (out / "styles" / "starry-night.onnx").exists()
    (out / "CNAME").write_text("paint.example.org")  # a file of the user's in the site
    kept = _deploy("udnie", "-o", str(out), "--overwrite", "--runtime", str(runtime))
    assert kept.returncode == 2 and "holds CNAME" in kept.stderr
    assert (out / "CNAME").read_text() == "paint.example.org"
    (out / "CNAME").unlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.onnx", "mine", "site"]


def test_the_site_carries_the_model_files_and_the_runtime_byte_for_byte(site, runtime):
    import hashlib

    from palmbrush.deploy.runtime import WASM_FILES, WEBGPU_FILES
    from palmbrush.styles import catalogue

    record = json.loads((site / "site.json").read_text())
    assert record["onnxruntime_web"] == "1.31.1" and record["styles"] == list(catalogue())
    for name, style in catalogue().items():
        assert (site / "styles" / f"{name}.onnx").read_bytes() == style.model.read_bytes()
    for name in WASM_FILES + WEBGPU_FILES:
        assert (site / "ort" / name).read_bytes() == (runtime / name).read_bytes()
    on_disk = {p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()}
    assert on_disk == set(record["files"]) | {"site.json"}
    for path, entry in record["files"].items():
        data = (site / path).read_bytes()
        assert entry == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    manifest = json.loads((site / "manifest.webmanifest").read_text())
    assert {i["src"] for i in manifest["icons"]} <= set(record["files"])
    assert manifest["display"] == "standalone" and manifest["start_url"] == "./index.html"
    for page in ("index.html", "app.js", "sw.js", "style.css"):  # nothing from elsewhere
        assert not re.search(r"https?://|//cdn", (site / page).read_text()), page
    assert "__BUILD__" not in (site / "sw.js").read_text()
    assert record["build"] in (site / "sw.js").read_text()


def _open(browser, url: str):
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto(url)
    _ready(page)
    return page, errors


def _ready(page) -> None:
    from palmbrush.deploy.check import wait_ready

    wait_ready(page)  # bounded: a page that never gets ready fails, it does not hang


@NEEDS_CHROMIUM
def test_every_shipped_style_on_the_page_gives_palmbrushs_picture(site):
    """The hook's painting of a photo at two odd sizes, for every style, against the
    reference engine: within 1 level on at least 99.9% of values, at most 2 anywhere."""
    playwright = pytest.importorskip("playwright.sync_api")
    from palmbrush.deploy.check import browser, photos, static_server, stylize_on_page
    from palmbrush.runtime import load

    pictures = {k: v for k, v in photos().items() if k != "photo 640x360"}
    with static_server(site, isolated=False) as url, playwright.sync_playwright() as p:
        chromium = browser(p)
        try:
            page, errors = _open(chromium, url)
            assert page.evaluate("window.palmbrush.engine") == (
                "WASM SIMD, 1 thread (not cross-origin isolated)"
            )  # a plain host: said so
            styles = page.evaluate("window.palmbrush.styles()")
            assert len(styles) == len(json.loads((site / "styles.json").read_text())) >= 8
            worst = []
            for style in styles:
                reference = load(site / "styles" / f"{style}.onnx", engines="reference")
                for label, picture in pictures.items():
                    got, _ = stylize_on_page(page, picture, style)
                    want = reference.run({"frame": picture[None]})["stylized"][0]
                    assert got.shape == want.shape
                    diff = np.abs(got.astype(np.int16) - want)
                    worst.append((style, label, int(diff.max()), float((diff <= 1).mean())))
            assert not errors, errors
        finally:
            chromium.close()
    for style, label, top, within in worst:
        assert top <= 2 and within >= 0.999, (style, label, top, within)
    assert np.mean([w[3] for w in worst]) > 0.999


@NEEDS_CHROMIUM
def test_the_page_paints_the_fake_camera_and_says_what_runs_it(site, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    from palmbrush.deploy.check import browser, static_server

    clip = tmp_path / "camera.y4m"
    _y4m(clip, frames=20, size=(320, 240))
    with static_server(site) as url, playwright.sync_playwright() as p:
        chromium = browser(p, _fake_camera(clip))
        try:
            page, errors = _open(chromium, url)
            page.wait_for_function("() => window.palmbrush.stats.frames >= 5", timeout=60000)
            assert page.evaluate("self.crossOriginIsolated")  # the host sent COOP/COEP
            engine = page.text_content("#engine")
            assert engine == f"WASM SIMD, {min(4, os.cpu_count())} thread" + (
                "s" if os.cpu_count() > 1 else ""
            )
            assert float(page.text_content("#fps")) > 0
            painted = _pixels(page, "#output")
            camera = _pixels(page, "#camera")
            assert painted.shape == camera.shape
            assert np.abs(painted.astype(int) - camera).mean() > 10  # a painting, not the camera
            page.click("#styles button:nth-child(2)")
            second = page.evaluate("window.palmbrush.stats.frames") + 3
            page.wait_for_function(f"() => window.palmbrush.stats.frames >= {second}")
            assert np.abs(_pixels(page, "#output").astype(int) - painted).mean() > 5
            page.fill("#strength", "0")  # strength 0: the camera's own picture comes through
            page.dispatch_event("#strength", "input")
            later = page.evaluate("window.palmbrush.stats.frames") + 3
            page.wait_for_function(f"() => window.palmbrush.stats.frames >= {later}")
            unpainted = _pixels(page, "#output").astype(int)
            # the same picture but where the square has moved on since
            assert np.median(np.abs(unpainted - _pixels(page, "#camera"))) <= 2
            assert not errors, errors
        finally:
            chromium.close()


@NEEDS_CHROMIUM
def test_the_service_worker_serves_the_site_offline(site):
    """After one visit the network can go: the page loads, its models run, and the worker's
    headers make it cross-origin isolated even though this host sends none."""
    playwright = pytest.importorskip("playwright.sync_api")
    from palmbrush.deploy.check import browser, photos, static_server, stylize_on_page

    picture = photos()["card 97x65"]
    with static_server(site, isolated=False) as url, playwright.sync_playwright() as p:
        chromium = browser(p)
        try:
            context = chromium.new_context()
            page = context.new_page()
            page.goto(url)
            _ready(page)
            online, _ = stylize_on_page(page, picture, "udnie")
            page.wait_for_function("() => navigator.serviceWorker.controller !== null",
                                   timeout=30000)  # fmt: skip
            context.set_offline(True)
            probe = "fetch('/not-in-the-cache').then(() => 'online', () => 'offline')"
            assert page.evaluate(probe) == "offline"  # the network really is cut
            page.reload()
            _ready(page)
            assert page.evaluate("self.crossOriginIsolated")
            offline, _ = stylize_on_page(page, picture, "udnie")
            # the same model (now with the threads isolation brings): the same picture
            assert np.abs(offline.astype(int) - online).max() <= 1
        finally:
            chromium.close()


def test_serve_https_answers_over_tls_on_loopback_only(runtime, tmp_path):
    env_cache = tmp_path / "cache"
    command = [sys.executable, "-m", "palmbrush.cli.main", "deploy", "starry-night", "-o",
               str(tmp_path / "served"), "--serve", "--https", "--port", "0"]  # fmt: skip
    env = {**__import__("os").environ, "PALMBRUSH_CACHE": str(env_cache)}
    command += ["--runtime", str(runtime)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)  # fmt: skip
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout],
                     daemon=True).start()  # fmt: skip
    try:
        url, seen = None, []
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            try:
                seen.append(lines.get(timeout=0.5))
            except queue.Empty:
                assert process.poll() is None, process.stderr.read()
                continue
            match = re.search(r"at (https://127\.0\.0\.1:\d+/)", seen[-1])
            url = match and match.group(1)
        assert url, seen
        cert = env_cache / "deploy-tls" / "cert.pem"
        trusted = ssl.create_default_context(cafile=str(cert))
        with urllib.request.urlopen(url, context=trusted, timeout=10) as response:
            page = response.read().decode()
            headers = response.headers
        assert "<title>palmbrush</title>" in page and 'src="app.js"' in page
        assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
        assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
        with pytest.raises(urllib.error.URLError):  # not trusted: it is a real TLS server
            urllib.request.urlopen(url, context=ssl.create_default_context(), timeout=10)
        assert (env_cache / "deploy-tls" / "key.pem").stat().st_mode & 0o077 == 0  # owner only
        port = int(url.rsplit(":", 1)[1].strip("/"))
        assert listening(process.pid) == [("127.0.0.1", port)]
        forged = urllib.request.Request(url + "site.json", headers={"Host": "evil.example"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(forged, context=trusted, timeout=10)
        assert refused.value.code == 403
        (tmp_path / "secret.txt").write_text("not for the web")
        (tmp_path / "served" / "escape").symlink_to(tmp_path / "secret.txt")
        for path in ("..%2f..%2fetc%2fpasswd", ".hidden", "nothing-here", "escape", "a%00b"):
            with pytest.raises(urllib.error.HTTPError) as missing:
                urllib.request.urlopen(url + path, context=trusted, timeout=10)
            assert missing.value.code == 404
    finally:
        stop_process(process)
    lan = _deploy("starry-night", "-o", str(tmp_path / "lan"), "--serve", "--host", "0.0.0.0",
                  "--runtime", str(runtime))  # fmt: skip
    assert lan.returncode == 2 and "--lan" in lan.stderr
    assert not (tmp_path / "lan").exists()  # a mistake in the serve options builds nothing


@NEEDS_CHROMIUM
def test_check_reports_parity_and_speed(runtime, tmp_path):
    out = tmp_path / "site"
    assert _deploy("udnie", "-o", str(out), "--runtime", str(runtime)).returncode == 0
    done = _deploy("--check", str(out), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("udnie")]
    assert len(rows) == 3 and all(int(r[-4]) <= 2 and float(r[-3].rstrip("%")) >= 99.9
                                  for r in rows)  # fmt: skip
    assert "threads" in done.stdout.splitlines()[0]
    missing = _deploy("--check", str(tmp_path))
    assert missing.returncode == 2 and "not a site palmbrush deploy wrote" in missing.stderr


@NEEDS_CHROMIUM
def test_webgpu_is_chosen_never_silently_and_gives_the_same_picture(site):
    """Without WebGPU the option is disabled and asking for it says why and stays on WASM.
    With it (Chromium's SwiftShader adapter: Vulkan on the CPU, so slow; small pictures), every
    style's picture is palmbrush's within the same bar as on WASM."""
    playwright = pytest.importorskip("playwright.sync_api")
    from palmbrush.deploy.check import browser, photos, static_server, stylize_on_page
    from palmbrush.runtime import load

    card, crop = photos()["card 97x65"], photos()["crop 323x181"][:61, :83]
    with static_server(site) as url, playwright.sync_playwright() as p:
        plain = browser(p)
        try:
            page, _ = _open(plain, url)
            if page.evaluate("navigator.gpu ? navigator.gpu.requestAdapter() : null") is None:
                assert page.is_disabled("#backend option[value=webgpu]")  # here: no GPU
                page.evaluate("window.palmbrush.useBackend('webgpu')")
                assert page.evaluate("window.palmbrush.engine").startswith("WASM")
                said = page.evaluate("window.palmbrush.messages")  # on screen, maybe replaced
                assert "webgpu cannot run here (this browser has no WebGPU); staying on wasm" in (
                    said)  # fmt: skip
        finally:
            plain.close()
        gpu = browser(p, ["--enable-unsafe-webgpu"])
        try:
            page, errors = _open(gpu, url)
            page.evaluate("window.palmbrush.useBackend('webgpu')")
            assert page.evaluate("window.palmbrush.engine") == "WebGPU"
            assert page.text_content("#engine") == "WebGPU"
            assert not [m for m in page.evaluate("window.palmbrush.messages") if "webgpu" in m]
            worst = []
            for i, style in enumerate(page.evaluate("window.palmbrush.styles()")):
                reference = load(site / "styles" / f"{style}.onnx", engines="reference")
                for picture in [card] + ([crop] if i == 0 else []):
                    got, _ = stylize_on_page(page, picture, style)
                    diff = np.abs(got.astype(np.int16) - reference.run({"frame": picture[None]})[
                        "stylized"][0])  # fmt: skip
                    worst.append((style, int(diff.max()), float((diff <= 1).mean())))
            assert not [e for e in errors if "VerifyEachNodeIsAssignedToAnEp" not in e], errors
        finally:
            gpu.close()
    assert all(top <= 2 and within >= 0.999 for _, top, within in worst), worst


@NEEDS_CHROMIUM
def test_a_rebuilt_site_reaches_a_browser_that_has_the_old_one_offline(runtime, tmp_path):
    """The service worker names its build, so after a rebuild the browser installs the new one
    and the page shows the new styles; nothing of the old build is served after that."""
    playwright = pytest.importorskip("playwright.sync_api")
    from palmbrush.deploy.check import browser, static_server

    out = tmp_path / "site"
    assert _deploy("udnie", "-o", str(out), "--runtime", str(runtime)).returncode == 0
    with static_server(out, isolated=False) as url, playwright.sync_playwright() as p:
        chromium = browser(p)
        try:
            context = chromium.new_context()  # one profile: its service worker and caches
            page = context.new_page()
            page.goto(url)
            _ready(page)
            page.wait_for_function("() => navigator.serviceWorker.controller !== null",
                                   timeout=30000)  # fmt: skip
            assert page.evaluate("window.palmbrush.styles()") == ["udnie"]
            rebuilt = _deploy("scream", "-o", str(out), "--overwrite", "--runtime", str(runtime))
            assert rebuilt.returncode == 0, rebuilt.stderr
            build = json.loads((out / "site.json").read_text())["build"]
            page.reload()  # a load asks for the worker's update: it installs in the background
            _ready(page)
            keys, deadline = [], time.monotonic() + 90
            while keys != [f"palmbrush / {build}"] and time.monotonic() < deadline:
                page.wait_for_timeout(1000)
                keys = page.evaluate("caches.keys()")
            assert keys == [f"palmbrush / {build}"]  # the new build's cache, the old one gone
            page.close()
            page = context.new_page()  # a visit after the update: the new build
            page.goto(url)
            _ready(page)
            assert page.evaluate("window.palmbrush.styles()") == ["scream"]
        finally:
            chromium.close()


def test_the_qr_code_in_the_terminal_reads_back_as_the_address():
    """The block characters --serve prints for a phone to scan, drawn as an image and read by
    OpenCV's QR decoder (two modules per character: upper and lower half blocks)."""
    cv2 = pytest.importorskip("cv2")
    from palmbrush.deploy.serve import qr

    url = "https://192.168.1.20:8443/"
    lines = [line for line in qr(url).split("\n") if line]
    width = max(len(line) for line in lines)
    upper, lower = {"█": 1, "▀": 1, "▄": 0, " ": 0}, {"█": 1, "▀": 0, "▄": 1, " ": 0}
    modules = []
    for line in lines:
        modules += [[upper[c] for c in line.ljust(width)], [lower[c] for c in line.ljust(width)]]
    light = np.array(modules, np.uint8) * 255  # a block is a light module (dark terminals)
    picture = cv2.resize(light, None, fx=8, fy=8, interpolation=cv2.INTER_NEAREST)
    picture = cv2.copyMakeBorder(picture, 40, 40, 40, 40, cv2.BORDER_CONSTANT, value=255)
    assert cv2.QRCodeDetector().detectAndDecode(picture)[0] == url
