"""Pictures and clips as users have them: 16-bit grey, transparency, animated GIFs, streams
that change size, and style models that break the contract."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLE, run_cli
from onnx import TensorProto, helper, numpy_helper

PIL = pytest.importorskip("PIL")
av = pytest.importorskip("av")
from PIL import Image  # noqa: E402

from palmbrush.media.images import read_picture  # noqa: E402

STYLE = ["--style", str(SAMPLE), "--engine", "reference"]


def _stylize(source: Path, target: Path, *extra: str):
    result = run_cli("stylize", str(source), *STYLE, "-o", str(target), *extra)
    assert result.returncode == 0, result.stderr
    return result


def _gradient(height: int = 48, width: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([255 * x / width, 255 * y / height, 128 + 100 * np.sin(x / 5)], -1).astype(
        np.uint8
    )


def test_a_16_bit_grey_png_keeps_its_tones(tmp_path):
    wide = np.linspace(0, 65535, 48 * 64).reshape(48, 64).astype(np.uint16)
    Image.fromarray(wide).save(tmp_path / "grey16.png")
    assert Image.open(tmp_path / "grey16.png").mode.startswith("I")
    expected = np.round(wide / 257).astype(np.uint8)  # 65535 -> 255, not clipped at 255
    rgb = read_picture(tmp_path / "grey16.png").rgb
    np.testing.assert_array_equal(rgb, np.repeat(expected[:, :, None], 3, 2))
    Image.fromarray(expected).convert("RGB").save(tmp_path / "grey8.png")
    _stylize(tmp_path / "grey16.png", tmp_path / "a.png")
    _stylize(tmp_path / "grey8.png", tmp_path / "b.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "a.png")),
                                  np.asarray(Image.open(tmp_path / "b.png")))  # fmt: skip


def test_transparency_is_kept_under_the_stylized_colours(tmp_path):
    rgb = _gradient()
    alpha = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (48, 1))
    Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "cut.png")
    Image.fromarray(rgb).save(tmp_path / "opaque.png")
    _stylize(tmp_path / "cut.png", tmp_path / "cut-out.png")
    _stylize(tmp_path / "opaque.png", tmp_path / "opaque-out.png")
    out = Image.open(tmp_path / "cut-out.png")
    assert out.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(out)[:, :, 3], alpha)
    np.testing.assert_array_equal(np.asarray(out)[:, :, :3],
                                  np.asarray(Image.open(tmp_path / "opaque-out.png")))  # fmt: skip
    _stylize(tmp_path / "cut.png", tmp_path / "cut.webp")
    assert Image.open(tmp_path / "cut.webp").mode == "RGBA"
    jpeg = _stylize(tmp_path / "cut.png", tmp_path / "cut.jpg")
    assert "not kept: transparency (a .jpg file cannot hold it)" in jpeg.stdout


def test_an_animated_gif_is_stylized_as_a_video(tmp_path):
    frames = [Image.fromarray(np.roll(_gradient(40, 48), 5 * i, axis=1)) for i in range(6)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    result = run_cli("stylize", str(tmp_path / "anim.gif"), *STYLE)
    assert result.returncode == 0, result.stderr
    out = tmp_path / f"anim.{SAMPLE.stem}.mp4"
    with av.open(str(out)) as clip:
        decoded = [f.to_ndarray(format="rgb24") for f in clip.decode(video=0)]
    assert len(decoded) == 6 and decoded[0].shape == (40, 48, 3)
    assert np.abs(decoded[0].astype(int) - decoded[-1]).mean() > 1  # each frame its own


def _segment(path: Path, width: int, height: int, first: int, count: int) -> None:
    """An MPEG-TS piece at one size; pieces concatenated are one stream that changes size."""
    with av.open(str(path), "w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(first, first + count):
            frame = av.VideoFrame.from_ndarray(_gradient(height, width), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 10)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def test_a_video_that_changes_size_is_scaled_to_its_first_frame(tmp_path):
    _segment(tmp_path / "a.ts", 64, 48, 0, 8)
    _segment(tmp_path / "b.ts", 96, 64, 10, 8)  # the muxer delays the first piece by 2 frames
    (tmp_path / "both.ts").write_bytes((tmp_path / "a.ts").read_bytes() +
                                       (tmp_path / "b.ts").read_bytes())  # fmt: skip
    with av.open(str(tmp_path / "both.ts")) as clip:
        sizes = {(f.width, f.height) for f in clip.decode(video=0)}
    assert sizes == {(64, 48), (96, 64)}
    result = _stylize(tmp_path / "both.ts", tmp_path / "out.mp4")
    assert "8 frames of another size stretched to 64x48" in result.stdout
    with av.open(str(tmp_path / "out.mp4")) as clip:
        shapes = [f.to_ndarray(format="rgb24").shape for f in clip.decode(video=0)]
    assert shapes == [(48, 64, 3)] * 16


def _cropping_model(path: Path) -> None:
    """A model with the style contract's names whose picture is always 16x16: not a style
    model, however its inputs and outputs are named."""
    starts, ends = np.array([0, 0, 0, 0]), np.array([1, 16, 16, 3])
    graph = helper.make_graph(
        [helper.make_node("Slice", ["frame", "s", "e"], ["stylized"])],
        "crop",
        [helper.make_tensor_value_info("frame", TensorProto.UINT8, [1, "H", "W", 3])],
        [helper.make_tensor_value_info("stylized", TensorProto.UINT8, [1, "H", "W", 3])],
        [numpy_helper.from_array(starts, "s"), numpy_helper.from_array(ends, "e")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())


def test_a_model_whose_picture_is_not_the_frames_size_is_refused(tmp_path):
    _cropping_model(tmp_path / "crop.onnx")
    Image.fromarray(_gradient()).save(tmp_path / "p.png")
    result = run_cli("stylize", str(tmp_path / "p.png"), "--style", str(tmp_path / "crop.onnx"))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "crop.onnx" in lines[0] and "keeps the frame's size" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crop.onnx", "p.png"]


def test_gifs_in_a_folder_become_videos_when_animated_and_pngs_when_still(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    frames = [Image.fromarray(np.roll(_gradient(40, 48), 5 * i, axis=1)) for i in range(4)]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    frames[0].save(folder / "still.gif")
    result = run_cli("stylize", str(folder), *STYLE, "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["anim.mp4", "still.png"]
    with av.open(str(tmp_path / "out" / "anim.mp4")) as clip:
        assert sum(1 for _ in clip.decode(video=0)) == 4
    assert Image.open(tmp_path / "out" / "still.png").size == (48, 40)
