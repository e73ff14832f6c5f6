"""The built-in styles: style model files trained on public-domain paintings, shipped in the
package with a catalogue (name, painting, painter, year, licence note, a thumbnail).

`resolve("starry-night")` and `resolve("my/model.onnx")` both give a model path, so every
command that takes a style takes either. `scripts/train_styles.py` rebuilds the models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from palmbrush.errors import PalmbrushError

HERE = Path(__file__).resolve().parent
DEFAULT = "starry-night"


@dataclass(frozen=True)
class BuiltinStyle:
    name: str  # what --style takes
    painting: str  # the painting's title
    painter: str
    year: str  # as dated by the museum: "1889", "c. 1831", "1908-1912"
    died: int  # the painter's death year (the public-domain argument)
    image: str  # the painting's file in ../shared/data/styles (training only; not shipped)
    licence: str

    @property
    def model(self) -> Path:
        return HERE / f"{self.name}.onnx"

    @property
    def thumbnail(self) -> Path:  # the painting, 128 px on the long side (JPEG)
        return HERE / "thumbs" / f"{self.name}.jpg"

    @property
    def credit(self) -> str:
        return f"{self.painting}, {self.painter}, {self.year}"


@cache
def catalogue() -> dict[str, BuiltinStyle]:
    """Every built-in style by name, in catalogue order."""
    data = json.loads((HERE / "catalogue.json").read_text())
    return {s["name"]: BuiltinStyle(**s, licence=data["licence"]) for s in data["styles"]}


@cache
def measurements() -> dict:
    """What the lab measured of each shipped model (measured.json, written by
    scripts/publish_styles.py): {"machine": ..., "styles": {name: {flicker_mean, flicker per
    clip, style_error, content_error, speed ratios, fps, bytes, sha256, other (a compared
    system's numbers), ab (blind votes per rival)}}}."""
    path = HERE / "measured.json"
    return json.loads(path.read_text()) if path.is_file() else {"machine": "", "styles": {}}


def resolve(spec: str | Path) -> Path:
    """A built-in style name or a style model file -> the model file's path."""
    styles = catalogue()
    if str(spec) in styles:
        return styles[str(spec)].model
    path = Path(spec)
    if path.suffix.lower() == ".onnx" or path.exists():
        return path  # read_style_model says clearly what is wrong with it
    raise PalmbrushError(
        f"unknown style '{spec}' (built-in: {', '.join(styles)}; or a style model file, .onnx)"
    )


def model_path(spec: str) -> str:
    """For commands that take any ONNX file: a built-in style name becomes its model's path,
    anything else is passed on as it is (the loader reports a missing or bad file)."""
    builtin = catalogue().get(spec)
    return str(builtin.model) if builtin else spec


def style_name(spec: str | Path) -> str:
    """The name outputs are labelled with: a built-in name, or the model file's stem."""
    return str(spec) if str(spec) in catalogue() else Path(spec).stem


__all__ = [
    "DEFAULT",
    "BuiltinStyle",
    "catalogue",
    "measurements",
    "model_path",
    "resolve",
    "style_name",
]
