"""The models the benchmarks run: a preset (exported with seeded random weights: speed does not
depend on them), a built-in style name or a style model file."""

from __future__ import annotations

import json
from pathlib import Path


def model_file(spec: str, folder: Path):
    """spec -> (style model path, its network config)."""
    import onnx

    from palmbrush.models import PRESETS, StyleNetConfig
    from palmbrush.styles import resolve
    from palmbrush.train.export import export_preset

    if spec in PRESETS:
        return export_preset(spec, Path(folder) / f"{spec}.onnx"), PRESETS[spec]
    path = resolve(spec)
    props = {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}
    return path, StyleNetConfig.from_dict(json.loads(props["architecture"]))
