"""`palmbrush export`: a checkpoint becomes a style model file that gives PyTorch's picture."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import run_cli

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from palmbrush.models import PRESETS, StyleNet  # noqa: E402
from palmbrush.runtime import load  # noqa: E402
from palmbrush.train import checkpoint  # noqa: E402
from palmbrush.train.export import Portable  # noqa: E402


def _checkpoint(path, preset: str = "femto", seed: int = 0) -> StyleNet:
    """A checkpoint of a seeded random network, with non-trivial norm weights."""
    torch.manual_seed(seed)
    net = StyleNet(PRESETS[preset]).eval()
    with torch.no_grad():
        for p in net.parameters():
            if p.ndim == 1:  # norm scales and shifts, biases: away from their 1 and 0
                p.add_(0.2 * torch.randn_like(p))
    checkpoint.save(path, model=net.state_dict(), optimizer={}, step=7, preset=preset,
                    config=net.cfg.to_dict(), settings={"style": "/photos/the_wave.jpg"},
                    rng=torch.get_rng_state())  # fmt: skip
    return net


def test_export_writes_a_style_model_that_gives_pytorchs_picture(tmp_path):
    net = _checkpoint(tmp_path / "wave.ckpt")
    out = tmp_path / "wave.onnx"
    args = ["export", str(tmp_path / "wave.ckpt"), "-o", str(out), "--painter", "Hokusai"]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}" in result.stdout
    frame = np.random.default_rng(1).integers(0, 256, (1, 45, 67, 3), np.uint8)  # odd size
    with torch.no_grad():
        want = Portable(net)(torch.from_numpy(frame)).numpy().astype(int)
    ours = load(str(out), engines="reference").run({"frame": frame})["stylized"]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    theirs = session.run(None, {"frame": frame})[0]
    assert ours.shape == theirs.shape == frame.shape
    assert np.abs(ours - want).max() <= 1 and np.abs(theirs - want).max() <= 1
    assert np.abs(want - frame).mean() > 5  # the network changed the picture
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert (props["style"], props["painter"], props["preset"]) == ("the-wave", "Hokusai", "femto")


def test_export_replaces_a_model_only_with_overwrite(tmp_path):
    _checkpoint(tmp_path / "a.ckpt")
    out = tmp_path / "a.onnx"
    out.write_bytes(b"an older model")
    refused = run_cli("export", str(tmp_path / "a.ckpt"), "-o", str(out))
    assert refused.returncode == 2 and out.read_bytes() == b"an older model"
    replaced = run_cli("export", str(tmp_path / "a.ckpt"), "-o", str(out), "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert load(str(out)).run({"frame": np.zeros((1, 32, 32, 3), np.uint8)})["stylized"].shape == (
        1, 32, 32, 3,
    )  # fmt: skip
