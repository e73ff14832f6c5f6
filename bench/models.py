"""The models the benchmarks run: a preset (exported with seeded random weights: speed does not
depend on them), a built-in style name, a style model file, or someone else's network:
`transformer-net:WxB`, the Johnson et al. architecture of fast-neural-style (9x9 first and
last convs, two stride-2 levels, B residual blocks, width W) as a plain `torch.onnx.export`
file with a float NCHW input (tests/nets.py; seeded random weights): `transformer-net:8x3`
has 71k parameters, `transformer-net:16x3` 277k."""

from __future__ import annotations

import json
import sys
from pathlib import Path

FOREIGN = "transformer-net:"


def model_file(spec: str, folder: Path):
    """spec -> (model path, its StyleNetConfig, or None for a network palmbrush did not make)."""
    import onnx

    from palmbrush.models import PRESETS, StyleNetConfig
    from palmbrush.styles import resolve
    from palmbrush.train.export import export_preset

    if spec.startswith(FOREIGN):
        return _transformer_net(spec, Path(folder)), None
    if spec in PRESETS:
        return export_preset(spec, Path(folder) / f"{spec}.onnx"), PRESETS[spec]
    path = resolve(spec)
    props = {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}
    if "architecture" not in props:
        return path, None
    return path, StyleNetConfig.from_dict(json.loads(props["architecture"]))


def _transformer_net(spec: str, folder: Path) -> str:
    width, _, blocks = spec[len(FOREIGN) :].partition("x")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from nets import TransformerNet, export, randomize

    net = randomize(TransformerNet(width=int(width), blocks=int(blocks)))
    path = folder / f"transformer-net-{width}x{blocks}.onnx"
    path.write_bytes(export(net, (1, 3, 64, 64)))
    return str(path)
