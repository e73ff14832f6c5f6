"""The built-in styles: catalogue, shipped models (contract, size, every engine), `styles`,
`sheet`, names wherever a style is accepted, and README's first command on a fresh machine."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import REPO, run_cli
from PIL import Image

from palmbrush.media.filters import read_style_model
from palmbrush.runtime import load
from palmbrush.runtime.registry import discover
from palmbrush.styles import DEFAULT, catalogue, resolve

PACKAGE = REPO / "src" / "palmbrush"
STYLES = list(catalogue().values())
PHOTO = PACKAGE / "samples" / "bunny.jpg"


def _photo(width: int = 320) -> np.ndarray:
    with Image.open(PHOTO) as image:
        return np.asarray(image.resize((width, width * 9 // 16), Image.Resampling.LANCZOS))


def test_the_catalogue_has_at_least_twelve_complete_public_domain_entries():
    assert len(STYLES) >= 12 and DEFAULT in catalogue()
    for style in STYLES:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", style.name), style.name
        assert all([style.painting, style.painter, style.year, style.image, style.licence])
        assert style.died <= 1955, f"{style.painter} died {style.died}: not public domain"
        assert style.model.is_file() and style.thumbnail.is_file(), style.name
        with Image.open(style.thumbnail) as thumb:
            assert thumb.format == "JPEG" and max(thumb.size) == 128, (style.name, thumb.size)
    assert len({s.image for s in STYLES}) == len(STYLES), "two styles from one painting"


def test_the_shipped_data_fits_the_budgets():
    for style in STYLES:
        assert style.model.stat().st_size < 70 * 1024, f"{style.name} is over 70 KB"
    data = [p for d in ("styles", "samples", "media/web") for p in (PACKAGE / d).rglob("*")
            if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts]  # fmt: skip
    assert sum(p.stat().st_size for p in data) < 2 * 1024 * 1024


@pytest.mark.parametrize("style", STYLES, ids=lambda s: s.name)
def test_a_shipped_model_meets_the_contract_and_names_its_painting(style):
    model = read_style_model(style.model)  # raises if the contract is not met
    assert model.opset_import[0].version >= 17
    props = {p.key: p.value for p in model.metadata_props}
    assert props["style"] == style.name
    assert props["painting"] == style.painting and props["painter"] == style.painter
    assert props["licence"] == style.licence
    architecture = json.loads(props["architecture"])
    assert architecture["first_stride"] == 2 and architecture["widths"]
    training = json.loads(props["training"])
    assert training["style"] == style.image and training["steps"] > 0


@pytest.mark.parametrize("style", STYLES, ids=lambda s: s.name)
def test_a_shipped_model_gives_the_same_picture_on_every_engine(style):
    """Every available engine and onnxruntime within 1 level of the reference engine, on a
    photo with an odd size (the model pads and crops internally)."""
    ort = pytest.importorskip("onnxruntime")
    frame = _photo(322)[None, :181]  # (1, 181, 322, 3)
    reference = load(style.model, engines="reference").run({"frame": frame})["stylized"]
    assert reference.shape == frame.shape and reference.dtype == np.uint8
    assert np.abs(reference.astype(int) - frame).mean() > 10, "the style changes nothing"
    found = discover().items()  # every engine but one that needs hardware this machine lacks
    hardware = {name for name, m in found if getattr(m, "PLACE", None) and not m.available()}
    engines = {name: name for name, _ in found if name not in {"reference", *hardware}}
    if importlib.util.find_spec("torch") is not None:  # the cuda engine's code, on the CPU
        from palmbrush.runtime.engines import cuda

        engines["cuda@cpu"] = [cuda.on_device("cpu")]
    outputs = {name: load(style.model, engines=e).run({"frame": frame})["stylized"]
               for name, e in engines.items()}  # fmt: skip
    session = ort.InferenceSession(str(style.model), providers=["CPUExecutionProvider"])
    outputs["onnxruntime"] = session.run(None, {"frame": frame})[0]
    assert len(outputs) >= 2
    for name, out in outputs.items():
        diff = np.abs(out.astype(int) - reference).max()
        assert diff <= 1, f"{style.name} on {name}: {diff} levels from the reference"


def test_styles_lists_every_style_and_its_painting():
    result = run_cli("styles")
    assert result.returncode == 0, result.stderr
    for style in STYLES:
        assert style.name in result.stdout and style.painter in result.stdout
    records = json.loads(run_cli("styles", "--json").stdout)
    assert [r["name"] for r in records] == [s.name for s in STYLES]
    assert all(Path(r["model"]).is_file() and r["model_kb"] < 70 for r in records)


def test_the_published_measurements_belong_to_the_shipped_models():
    """measured.json (scripts/publish_styles.py) gives every style its flicker per clip, speed
    and errors; its SHA-256 per model catches numbers left behind by a retrained file."""
    import hashlib

    records = {r["name"]: r["measured"] for r in json.loads(run_cli("styles", "--json").stdout)}
    for style in STYLES:
        m = records[style.name]
        assert m is not None, f"{style.name}: not measured"
        assert m["sha256"] == hashlib.sha256(style.model.read_bytes()).hexdigest(), style.name
        assert m["bytes"] == style.model.stat().st_size
        assert len(m["flicker"]) >= 6 and all(r > 0 for r in m["flicker"].values())
        assert m["flicker_mean"] == pytest.approx(np.mean(list(m["flicker"].values())))
        assert m["reference_ratio_1280x720"] > 0 and m["ort_ratio_1280x720"] > 0
        assert 0 < m["style_error"] < 10 and 0 < m["content_error"] < 10, style.name
        assert m["ab"] and all(sum(v.values()) > 0 for v in m["ab"].values()), style.name
    lines = {line.split()[0]: line for line in run_cli("styles").stdout.splitlines()[2:] if line}
    for style in STYLES:  # the table shows each style's own mean flicker
        assert f" {records[style.name]['flicker_mean']:.2f}x " in lines[style.name], style.name


def test_sheet_renders_every_style_on_one_photo(tmp_path):
    out = tmp_path / "sheet.png"
    result = run_cli("sheet", str(PHOTO), "-o", str(out), "--width", "160", "--per-row", "3")
    assert result.returncode == 0, result.stderr
    assert f"{len(STYLES)} styles" in result.stdout
    with Image.open(out) as image:
        sheet = np.asarray(image.convert("RGB"))
    rows = -(-(len(STYLES) + 1) // 3)
    assert sheet.shape[1] > 3 * 160 and sheet.shape[0] > rows * 90
    # Tile 0 is the photo, tile 1 the first style: the same place, different pictures.
    photo_tile, style_tile = sheet[6:96, 6:166], sheet[6:96, 172:332]
    assert np.abs(photo_tile.astype(int) - style_tile).mean() > 10
    labels = sheet[96:116, 6:166]  # the caption strip under the photo has dark text
    assert (labels.min(axis=-1) < 100).any()


def test_sheet_captions_drop_accents_rather_than_draw_boxes():
    """Pillow's built-in font lacks accented letters (a catalogue painter is Cezanne with an
    acute accent): the caption is drawn as its plain letters, not as boxes."""
    from palmbrush.media.sheet import labelled_grid

    tile = np.full((40, 160, 3), 200, np.uint8)
    accented = np.asarray(labelled_grid([("Paul C\u00e9zanne, Rh\u00f4ne", tile)], 1))
    plain = np.asarray(labelled_grid([("Paul Cezanne, Rhone", tile)], 1))
    assert np.array_equal(accented, plain) and (plain < 100).any()


def test_sheet_refuses_bad_input_in_one_line(tmp_path):
    cases = [
        ("sheet", str(tmp_path / "none.jpg"), "-o", str(tmp_path / "s.png")),
        ("sheet", str(PHOTO), "-o", str(tmp_path / "s.png"), "--style", "no-such-style"),
        ("sheet", str(PHOTO), "-o", str(tmp_path / "s.gif2")),
    ]
    for args in cases:
        result = run_cli(*args)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    existing = tmp_path / "keep.png"
    existing.write_bytes(b"mine")
    result = run_cli("sheet", str(PHOTO), "-o", str(existing))
    assert result.returncode == 2 and existing.read_bytes() == b"mine"
    assert not [p for p in tmp_path.iterdir() if p.name != "keep.png"]


def test_a_style_name_works_in_stylize_and_names_the_output(tmp_path):
    photo = tmp_path / "p.png"
    Image.fromarray(_photo(128)).save(photo)
    result = run_cli("stylize", str(photo), "--style", "great-wave")
    assert result.returncode == 0, result.stderr
    painted = np.asarray(Image.open(tmp_path / "p.great-wave.png"))
    expected = load(resolve("great-wave")).run({"frame": _photo(128)[None]})["stylized"][0]
    assert np.abs(painted.astype(int) - expected).max() <= 1


def test_an_unknown_style_name_lists_the_built_in_ones(tmp_path):
    photo = tmp_path / "p.png"
    Image.fromarray(_photo(64)).save(photo)
    result = run_cli("stylize", str(photo), "--style", "starry-nite")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "unknown style 'starry-nite'" in result.stderr and "starry-night" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png"]


def test_every_shipped_style_is_a_valid_onnx_model():
    for style in STYLES:
        onnx.checker.check_model(onnx.load(style.model), full_check=True)


@pytest.mark.slow
def test_readme_first_command_on_a_fresh_machine(tmp_path):
    """README's first command in a copy of the working tree with no virtual environment: it
    sets one up, stylizes the sample photo and clip and says where the results are."""
    readme = (REPO / "README.md").read_text()
    first = re.search(r"```sh\n(.+?)\n", readme.split("## Quick start", 1)[1]).group(1)
    command = first.split("#", 1)[0].strip()
    assert command == "make demo"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    copy = tmp_path / "palmbrush"
    for name in files:
        source = REPO / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PYTHON"] = shutil.which("python3.11") or sys.executable
    result = subprocess.run(command.split(), cwd=copy, env=env, capture_output=True, text=True,
                            timeout=1200)  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    photo = copy / "palmbrush-demo" / "bunny.starry-night.jpg"
    clip = copy / "palmbrush-demo" / "bunny.starry-night.mp4"
    assert str(photo) in result.stdout and str(clip) in result.stdout
    with Image.open(photo) as image:
        assert image.size == (640, 360)
    import av

    with av.open(str(clip)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 75
        assert container.streams.audio, "the clip's audio was not copied"


def test_inspect_and_bench_take_a_style_name():
    result = run_cli("inspect", "udnie", "--size", "64x64")
    assert result.returncode == 0, result.stderr
    assert str(catalogue()["udnie"].model) in result.stdout
    result = run_cli("bench", "udnie", "--size", "64x64", "--repeat", "2")
    assert result.returncode == 0, result.stderr
    missing = run_cli("inspect", "no-such-model.onnx")
    assert missing.returncode == 2 and "no-such-model.onnx" in missing.stderr


def test_demo_refuses_an_output_that_is_a_file(tmp_path):
    target = tmp_path / "taken"
    target.write_text("mine")
    result = run_cli("demo", "-o", str(target))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "is not a folder" in result.stderr and target.read_text() == "mine"
