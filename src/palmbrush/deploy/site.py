"""The static site `palmbrush deploy` writes: a page, its service worker and manifest, the style
model files exactly as they are, and onnxruntime-web copied from its npm package.

    DIR/index.html, app.js, sw.js, manifest.webmanifest, icon-192.png, icon-512.png
    DIR/styles.json            the styles: name, credit, model and thumbnail paths, sha256
    DIR/styles/NAME.onnx|.jpg  the model files (byte for byte) and their thumbnails
    DIR/ort/                   onnxruntime-web's WASM build, and its WebGPU build
    DIR/site.json              what built it, and every file with its size and sha256

The service worker caches every file but the WebGPU build when the page is first opened (so it
works offline) and the WebGPU build when it is first used. The folder is built beside DIR and
renamed into place, so a failed build leaves nothing that looks like a site; an existing DIR is
replaced only with overwrite=True and only when it is a site this command wrote.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..errors import PalmbrushError
from . import ORT_WEB
from .runtime import WASM_FILES, WEBGPU_FILES

GENERATOR = "palmbrush deploy"
PAGE_FILES = ("index.html", "app.js", "sw.js", "style.css")


@dataclass
class Site:
    folder: Path
    styles: list[str]
    files: dict[str, dict] = field(default_factory=dict)  # path -> {bytes, sha256}

    @property
    def bytes(self) -> int:
        return sum(f["bytes"] for f in self.files.values())

    def size_of(self, prefix: str) -> int:
        return sum(f["bytes"] for p, f in self.files.items() if p.startswith(prefix))


def build(specs: list[str], out: Path, runtime: Path, overwrite: bool = False) -> Site:
    """The site for these styles (built-in names or model files) in `out`, with
    onnxruntime-web from `runtime` (its dist folder: runtime.find())."""
    from .. import __version__

    styles = _styles(specs)
    out = out.resolve()  # "-o ." too: the build folder goes beside it, not inside
    _check_out(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        site = Site(out, [s["name"] for s in styles])
        web = resources.files("palmbrush.deploy").joinpath("web")
        for name in PAGE_FILES:
            if name != "sw.js":  # written last: it names the build
                _write(work, name, web.joinpath(name).read_bytes(), site)
        for name in WASM_FILES + WEBGPU_FILES:
            _write(work, f"ort/{name}", (runtime / name).read_bytes(), site)
        listed = []
        for style in styles:
            model = f"styles/{style['name']}.onnx"
            thumbnail = f"styles/{style['name']}.jpg"
            _write(work, model, style["model"], site)
            _write(work, thumbnail, style["thumbnail"], site)
            listed.append({"name": style["name"], "credit": style["credit"], "model": model,
                           "thumbnail": thumbnail,
                           "sha256": site.files[model]["sha256"]})  # fmt: skip
        _write(work, "styles.json", _json(listed), site)
        for size in (192, 512):
            _write(work, f"icon-{size}.png", _icon(styles[0]["thumbnail"], size), site)
        _write(work, "manifest.webmanifest", _json(_manifest()), site)
        # the service worker names the build (a digest of every other file), so a rebuilt
        # site's worker differs byte-wise and browsers install it, replacing the old cache
        build_id = hashlib.sha256(_json(site.files)).hexdigest()[:16]
        worker = web.joinpath("sw.js").read_text().replace("__BUILD__", build_id)
        _write(work, "sw.js", worker.encode(), site)
        lazy = [f"ort/{name}" for name in WEBGPU_FILES]
        record = {"generator": GENERATOR, "palmbrush": __version__, "onnxruntime_web": ORT_WEB,
                  "build": build_id, "styles": site.styles, "files": site.files,
                  "lazy": lazy}  # fmt: skip
        (work / "site.json").write_text(json.dumps(record, indent=1))
        os.chmod(work, 0o755)  # mkdtemp's 0700 would hide the site from a web server
        _check_out(out, overwrite)  # again: the folder may have changed during the build
        _put_in_place(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return site


def _styles(specs: list[str]) -> list[dict]:
    from ..media.camera import _test_card, encode_jpeg
    from ..media.filters import load_style, read_style_model
    from ..styles import catalogue, resolve, style_name

    if not specs:
        raise PalmbrushError("name at least one style (palmbrush styles lists them)")
    styles, seen = [], set()
    for spec in specs:
        name = style_name(spec)
        if name in seen:
            raise PalmbrushError(f"two styles are named '{name}'")
        seen.add(name)
        if not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
            raise PalmbrushError(f"'{name}': a style's name on the site may hold only letters, "
                                 "digits, '-', '_' and '.'")  # fmt: skip
        path = resolve(spec)
        read_style_model(path)  # the contract: uint8 'frame' in, 'stylized' out
        builtin = catalogue().get(str(spec))
        if builtin is not None:
            thumbnail, credit = builtin.thumbnail.read_bytes(), builtin.credit
        else:
            thumbnail, credit = encode_jpeg(load_style(path)(_test_card(128)), 85), path.name
        styles.append({"name": name, "model": path.read_bytes(), "thumbnail": thumbnail,
                       "credit": credit})  # fmt: skip
    return styles


def _check_out(out: Path, overwrite: bool) -> None:
    """`out` may be missing, empty, or (with overwrite) a site this command wrote that holds
    nothing else: a file it did not write (a .git, a CNAME, notes) stops the build."""
    if not out.exists():
        return
    if not out.is_dir():
        raise PalmbrushError(f"{out}: exists and is not a folder")
    if not any(out.iterdir()):
        return
    if not is_site(out):
        raise PalmbrushError(f"{out}: a folder that is not a palmbrush site; name a new or an "
                             "empty one")  # fmt: skip
    if not overwrite:
        raise PalmbrushError(f"{out}: a site is there already (--overwrite replaces it)")
    ours = set(json.loads((out / "site.json").read_text())["files"]) | {"site.json"}
    for path in sorted(out.rglob("*")):
        name = path.relative_to(out).as_posix()
        if path.is_symlink() or (not path.is_dir() and name not in ours):
            raise PalmbrushError(f"{out}: holds {name}, which palmbrush deploy did not write; "
                                 "move it out, or build into another folder")  # fmt: skip


def is_site(folder: Path) -> bool:
    try:
        return json.loads((folder / "site.json").read_text()).get("generator") == GENERATOR
    except (OSError, ValueError, AttributeError):
        return False


def check_site(folder: Path) -> None:
    if not is_site(folder):
        raise PalmbrushError(f"{folder}: not a site palmbrush deploy wrote")


def _put_in_place(work: Path, out: Path) -> None:
    """Rename the built folder to `out`; an old site there is moved aside first and removed
    after (put back if the rename fails), so `out` is always the old site or the new one."""
    if out.exists() and any(out.iterdir()):
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, old / "site")
        try:
            os.replace(work, out)
        except OSError:
            os.replace(old / "site", out)
            old.rmdir()
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        if out.exists():
            out.rmdir()
        os.replace(work, out)


def _write(folder: Path, name: str, data: bytes, site: Site) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    site.files[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _json(value) -> bytes:
    return json.dumps(value, indent=1, ensure_ascii=False).encode()


def _manifest() -> dict:
    return {"name": "palmbrush", "short_name": "palmbrush", "start_url": "./index.html",
            "scope": "./", "display": "standalone", "background_color": "#15151a",
            "theme_color": "#15151a", "description": "A painter's brush in your camera",
            "icons": [{"src": f"icon-{s}.png", "sizes": f"{s}x{s}", "type": "image/png",
                       "purpose": "any"} for s in (192, 512)]}  # fmt: skip


def _icon(thumbnail: bytes, size: int) -> bytes:
    """The first style's painting, cropped square: the installed app's icon."""
    from PIL import Image

    with Image.open(io.BytesIO(thumbnail)) as picture:
        side = min(picture.size)
        left, top = (picture.width - side) // 2, (picture.height - side) // 2
        icon = picture.convert("RGB").crop((left, top, left + side, top + side))
        buffer = io.BytesIO()
        icon.resize((size, size), Image.LANCZOS).save(buffer, "PNG")
    return buffer.getvalue()
