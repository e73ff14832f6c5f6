"""Every user mistake: one line naming the problem, exit status 2, and nothing lost.

Each case runs the real CLI in a fresh process inside a folder of real inputs, then checks
that stderr is a single `palmbrush...: error:` line with the expected words, and that every
file in the folder is byte for byte what it was (no input overwritten, no partial output).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLE, run_cli

PIL = pytest.importorskip("PIL")
av = pytest.importorskip("av")
torch = pytest.importorskip("torch")
from PIL import Image  # noqa: E402

STYLE = ["--style", "model.onnx", "--engine", "reference"]


def _clip(path: Path, width: int, height: int, frames: int = 3) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            frame = np.full((height, width, 3), 40 * i, np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode(None))


def _checkpoint(path: Path, **state) -> None:
    torch.save({"format": 1, **state}, path)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Inputs of every kind a command takes, made once."""
    root = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), np.uint8)).save(root / "photo.png")
    Image.fromarray(rng.integers(0, 256, (4000, 32, 3), np.uint8)).save(root / "strip.png")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(root / "tiny.png")
    (root / "painting.jpg").write_bytes((root / "photo.png").read_bytes())
    (root / "model.onnx").write_bytes(SAMPLE.read_bytes())
    (root / "done.png").write_bytes(b"an earlier result")
    (root / "junk.ckpt").write_bytes(b"not a checkpoint at all")
    _checkpoint(root / "bare.ckpt", model={})
    _checkpoint(root / "wrong.ckpt", model={"w": torch.zeros(1)}, config={"widths": [8, 16]},
                preset="femto", step=1)  # fmt: skip
    (root / "photos").mkdir()
    (root / "photos" / "a.png").write_bytes((root / "photo.png").read_bytes())
    (root / "existing.onnx").write_bytes(b"an earlier model")
    (root / "folder.onnx").mkdir()
    _clip(root / "clip.mp4", 64, 48)
    _clip(root / "tiny.mp4", 16, 16)
    frames = [Image.fromarray(np.full((40, 40, 3), 50 * i, np.uint8)) for i in range(3)]
    frames[0].save(root / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    frames[0].save(root / "anim.png", save_all=True, append_images=frames[1:], duration=100)
    (root / "dangling.png").symlink_to(root / "nowhere.png")
    for twin in ("a", "b"):
        (root / twin).mkdir()
        (root / twin / "x.png").write_bytes((root / "photo.png").read_bytes())
    return root


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): _state(p) for p in sorted(root.rglob("*"))}


def _state(path: Path) -> str:
    if path.is_symlink():
        return f"-> {path.readlink()}"
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "/"


TRAIN = ["train", "--style", "painting.jpg", "--content", "photos", "--out", "new.onnx"]

CASES = {
    # stylize: numbers checked at parse time
    "threads -3": (["stylize", "photo.png", *STYLE, "--threads", "-3"], "--threads"),
    "strength nan": (["stylize", "photo.png", *STYLE, "--strength", "nan"], "finite"),
    "strength 2": (["stylize", "photo.png", *STYLE, "--strength", "2"], "maximum 1"),
    "scale 0": (["stylize", "photo.png", *STYLE, "--scale", "0"], "--scale"),
    "max-size 8": (["stylize", "photo.png", *STYLE, "--max-size", "8"], "minimum 32"),
    "crf 99": (["stylize", "clip.mp4", *STYLE, "--crf", "99", "-o", "o.mp4"], "--crf"),
    # stylize: outputs
    "video, no suffix": (["stylize", "clip.mp4", *STYLE, "-o", "out"], "video output"),
    "video to an image": (["stylize", "clip.mp4", *STYLE, "-o", "out.png"], "video output"),
    "image, no suffix": (["stylize", "photo.png", *STYLE, "-o", "out"], "no image type"),
    "image to .xyz": (["stylize", "photo.png", *STYLE, "-o", "out.xyz"], "'.xyz'"),
    "over the input": (
        ["stylize", "photo.png", *STYLE, "-o", "photo.png", "--overwrite"],
        "is also an input",
    ),
    "existing output": (["stylize", "photo.png", *STYLE, "-o", "done.png"], "--overwrite"),
    "a dangling link": (["stylize", "photo.png", *STYLE, "-o", "dangling.png"], "--overwrite"),
    "under a file": (["stylize", "photo.png", *STYLE, "-o", "photo.png/o.png"], "not a folder"),
    "name too long": (["stylize", "photo.png", *STYLE, "-o", "x" * 300 + ".png"], "too long"),
    "two inputs, one output": (["stylize", "a/x.png", "b/x.png", *STYLE, "-o", "."], "both"),
    "video to stdout": (["stylize", "clip.mp4", *STYLE, "-o", "-"], "stdout"),
    "animated png": (["stylize", "anim.png", *STYLE, "-o", "a2.png"], "animated PNG"),
    # stylize: inputs outside the contract, refused alike
    "16x16 image": (["stylize", "tiny.png", *STYLE, "-o", "t.png"], "at least 32x32"),
    "16x16 video": (["stylize", "tiny.mp4", *STYLE, "-o", "t.mp4"], "at least 32x32"),
    "animated gif to png": (["stylize", "anim.gif", *STYLE, "-o", "a.png"], "animated GIF"),
    # sheet
    "sheet too large": (["sheet", "strip.png", "-o", "s.png", "--width", "4096"], "the limit"),
    "sheet width": (["sheet", "photo.png", "-o", "s.png", "--width", "5000"], "--width"),
    "sheet over input": (["sheet", "photo.png", "-o", "photo.png", "--overwrite"], "an input"),
    # export
    "export junk": (["export", "junk.ckpt", "-o", "m.onnx"], "not a palmbrush checkpoint"),
    "export missing keys": (["export", "bare.ckpt", "-o", "m.onnx"], "lacks config"),
    "export wrong weights": (["export", "wrong.ckpt", "-o", "m.onnx"], "do not fit"),
    "export to a folder": (["export", "wrong.ckpt", "-o", "folder.onnx"], "is a folder"),
    "export over itself": (["export", "wrong.ckpt", "-o", "wrong.ckpt"], "is also an input"),
    "export to a .txt": (["export", "wrong.ckpt", "-o", "m.txt"], ".onnx file"),
    "export existing": (["export", "wrong.ckpt", "-o", "existing.onnx"], "--overwrite"),
    # train: numbers checked at parse time, outputs before any work
    "train steps 0": ([*TRAIN, "--steps", "0"], "--steps"),
    "train steps -1": ([*TRAIN, "--steps", "-1"], "--steps"),
    "train checkpoint-every 0": ([*TRAIN, "--checkpoint-every", "0"], "--checkpoint-every"),
    "train batch 0": ([*TRAIN, "--batch", "0"], "--batch"),
    "train size 0": ([*TRAIN, "--size", "0"], "--size"),
    "train lr nan": ([*TRAIN, "--lr", "nan"], "--lr"),
    "train lr 0": ([*TRAIN, "--lr", "0"], "--lr"),
    "train style-size 0": ([*TRAIN, "--style-size", "0"], "--style-size"),
    "train epochs 0": ([*TRAIN, "--epochs", "0"], "--epochs"),
    "train out = painting": ([*TRAIN[:-1], "painting.jpg"], "is also an input"),
    "train out not onnx": ([*TRAIN[:-1], "model.pt"], ".onnx file"),
    "train out exists": ([*TRAIN[:-1], "existing.onnx"], "--overwrite"),
    "train init = checkpoint": ([*TRAIN[:-1], "wrong.onnx", "--init", "wrong.ckpt"], "an input"),
    "train init typo": ([*TRAIN, "--init", "stary-night"], "built-in styles: starry-night"),
    "train init + resume": ([*TRAIN, "--init", "wrong.ckpt", "--resume", "x.ckpt"], "exclude"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_mistake_is_one_line_exit_2_and_loses_nothing(folder, case, monkeypatch):
    args, words = CASES[case]
    monkeypatch.chdir(folder)
    before = _snapshot(folder)
    result = run_cli(*args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("palmbrush"), result.stderr
    assert ": error: " in lines[0] and words in lines[0], lines[0]
    assert _snapshot(folder) == before


def test_a_folder_run_never_writes_over_its_own_inputs(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (tmp_path / "model.onnx").write_bytes(SAMPLE.read_bytes())
    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((40, 40, 3), 99, np.uint8)).save(photos / name)
    before = _snapshot(tmp_path)
    result = run_cli("stylize", str(photos), "--style", str(tmp_path / "model.onnx"),
                     "-o", str(photos), "--overwrite")  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.count("is also an input") == 2 and "0 stylized, 2 failed" in result.stdout
    assert _snapshot(tmp_path) == before
