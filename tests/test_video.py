"""The video pipeline's pieces in-process: the demuxer and muxer with fake stages, failures in a
stage, and the YUV path (media/yuv.py: the colour conversions as graph ops, fused into the
gathers) against the RGB path and against the arithmetic written out here in NumPy."""

from __future__ import annotations

import itertools
import threading

import numpy as np
import onnx
import pytest
from conftest import SAMPLE
from test_stylize import _clip, _streams

from palmbrush.errors import PalmbrushError
from palmbrush.runtime import load

av = pytest.importorskip("av")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """The first 8 frames of the sample clip (640x360 yuv420p), lossless."""
    path = tmp_path_factory.mktemp("clip") / "bunny8.mkv"
    with av.open(str(SAMPLE.with_name("bunny.mp4"))) as inp, av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        stream.options = {"crf": "0"}
        for i, frame in enumerate(inp.decode(video=0)):
            if i == 8:
                break
            frame.pts = None
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def _identity(kind: str):
    return lambda picture: picture


def _planes_of(path) -> list[tuple[np.ndarray, ...]]:
    from palmbrush.media.streams import planes

    with av.open(str(path)) as container:
        return [planes(f.reformat(format="yuv420p")) for f in container.decode(video=0)]


def test_an_identity_stage_keeps_frames_timestamps_and_audio_on_both_paths(tmp_path):
    from palmbrush.media.streams import Encoding
    from palmbrush.media.video import stylize_video

    _clip(tmp_path / "in.mp4", frames=30, size=(96, 64))
    kinds = []

    def load(kind):
        kinds.append(kind)
        return _identity(kind)

    for yuv, colour in ((True, "yuv420p"), (False, "rgb (asked for)")):
        out = tmp_path / f"out-{yuv}.mp4"
        result = stylize_video(tmp_path / "in.mp4", out, load, yuv=yuv, workers=2,
                               encoding=Encoding(crf=0))  # fmt: skip
        assert result.colour == colour and result.frames == 30
        assert _streams(out) == _streams(tmp_path / "in.mp4")
        assert result.stages["stylize"].items > 30  # frames and the audio packets between them
    # a model per worker that took a frame (one may have taken them all), never one per frame
    assert sorted(set(kinds)) == ["rgb", "yuv420p"] and 2 <= len(kinds) <= 4
    # lossless H.264 and an identity model: the YUV path gives back the decoded planes exactly
    got, want = _planes_of(tmp_path / "out-True.mp4"), _planes_of(tmp_path / "in.mp4")
    assert len(got) == len(want) == 30
    for a, b in zip(got, want):
        assert all(np.array_equal(g, w) for g, w in zip(a, b))


def test_a_failing_stage_is_one_error_and_leaves_no_output(tmp_path):
    from palmbrush.media.video import stylize_video

    _clip(tmp_path / "in.mp4", frames=40, audio=False)
    counter, lock = itertools.count(1), threading.Lock()

    def load(kind):
        def run(picture):
            with lock:
                number = next(counter)
            if number == 12:
                raise PalmbrushError("the model gave up at frame 12")
            return picture

        return run

    with pytest.raises(PalmbrushError, match="gave up at frame 12"):
        stylize_video(tmp_path / "in.mp4", tmp_path / "out.mp4", load, workers=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_other_formats_take_the_rgb_path_and_say_why(tmp_path):
    """A yuv444p clip (as some cameras and screen recorders write): every frame via RGB."""
    from palmbrush.media.video import stylize_video

    with av.open(str(tmp_path / "full.mkv"), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv444p"
        for i in range(6):
            rgb = np.full((48, 64, 3), 20 * i, np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode(None))
    kinds = []
    result = stylize_video(tmp_path / "full.mkv", tmp_path / "o.mkv",
                           lambda kind: kinds.append(kind) or _identity(kind))  # fmt: skip
    assert result.colour == "rgb (the clip is yuv444p)" and result.frames == 6
    assert set(kinds) == {"rgb"}


def test_the_yuv_wrap_fuses_into_the_gathers_and_matches_onnxruntime():
    """After the passes: one FromYUV and one ToYUV, nothing of the wrap left; the optimized
    graph gives the unoptimized one's numbers on the reference engine; onnxruntime (the same
    file, optimizations off) agrees within a level."""
    ort = pytest.importorskip("onnxruntime")
    from palmbrush.media.yuv import PLANES_OUT, wrap_yuv
    from palmbrush.runtime.onnx_io import graph_from_proto
    from palmbrush.runtime.passes import optimize

    model = wrap_yuv(onnx.load(SAMPLE))
    graph = graph_from_proto(model)
    counts = optimize(graph, check=True)
    ops = [n.op for n in graph.nodes]
    assert counts["fuse_yuv_in"] == counts["fuse_yuv_out"] == 1
    assert counts["fuse_yuv_gathers"] == 2 and ops.count("FromYUV") == ops.count("ToYUV") == 1
    assert not {"YUVToImage", "ImageToYUV", "FromImage", "ToImage", "Squeeze"} & set(ops)
    rng = np.random.default_rng(3)
    feeds = {"y": rng.integers(0, 256, (1, 40, 58), dtype=np.uint8),
             "u": rng.integers(0, 256, (1, 20, 29), dtype=np.uint8),
             "v": rng.integers(0, 256, (1, 20, 29), dtype=np.uint8)}  # fmt: skip
    blob = model.SerializeToString()
    fused = load(blob, engines="reference").run(feeds)
    plain = load(blob, engines="reference", optimize=False).run(feeds)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    theirs = ort.InferenceSession(blob, options).run(PLANES_OUT, feeds)
    for name, other in zip(PLANES_OUT, theirs):
        assert np.array_equal(fused[name], plain[name])
        assert np.abs(fused[name].astype(int) - other).max() <= 1


def _by_hand(y, u, v, stylize) -> tuple[np.ndarray, ...]:
    """The YUV path's arithmetic written out: BT.601 limited range, chroma repeated 2x2 in,
    averaged over 2 columns and [1, 3, 3, 1] / 8 over rows (edge rows repeated) out."""
    up = np.stack([y, *(c.repeat(2, 0).repeat(2, 1) for c in (u, v))], -1).astype(np.float64)
    to_rgb = np.array([[1.164383, 0, 1.596027], [1.164383, -0.391762, -0.812968],
                       [1.164383, 2.017232, 0]])  # fmt: skip
    rgb = np.clip(np.rint((up - [16, 128, 128]) @ to_rgb.T), 0, 255).astype(np.uint8)
    out = stylize(rgb).astype(np.float64)
    to_yuv = np.array([[0.256788, 0.504129, 0.097906], [-0.148223, -0.290993, 0.439216],
                       [0.439216, -0.367788, -0.071427]])  # fmt: skip
    full = out @ to_yuv.T + [16, 128, 128]
    rows = np.concatenate([full[:1], full, full[-1:]])  # edge rows
    chroma = sum(w * rows[k : k + full.shape[0] : 2] for k, w in enumerate([1, 3, 3, 1])) / 8
    chroma = (chroma[:, 0::2] + chroma[:, 1::2]) / 2
    levels = [np.clip(np.rint(p), 0, 255).astype(np.uint8) for p in
              (full[..., 0], chroma[..., 1], chroma[..., 2])]  # fmt: skip
    return tuple(levels)


@pytest.mark.parametrize("engines", ["reference", None])
def test_the_yuv_path_is_the_arithmetic_written_out(tmp_path, clip, engines):
    """A real clip through the tiny style on the YUV path, lossless out: each decoded plane
    within a level of the NumPy version above (on the RGB model run by the reference)."""
    from palmbrush.media.filters import load_style
    from palmbrush.media.streams import Encoding
    from palmbrush.media.video import stylize_video

    def load(kind):
        return load_style(SAMPLE, engines, 1, colour=kind)

    result = stylize_video(clip, tmp_path / "o.mkv", load, encoding=Encoding(crf=0))
    assert result.colour == "yuv420p"
    rgb_model = load_style(SAMPLE, "reference", 1)
    inputs, outputs = _planes_of(clip), _planes_of(tmp_path / "o.mkv")
    for (y, u, v), got in zip(inputs, outputs):
        for mine, theirs in zip(_by_hand(y, u, v, rgb_model), got):
            diff = np.abs(mine.astype(int) - theirs)
            assert diff.max() <= 1 and (diff == 0).mean() > 0.99


def test_the_yuv_path_and_the_rgb_path_agree(tmp_path, clip):
    """The same clip and style both ways, lossless out. FFmpeg's RGB conversion (swscale's fast
    path) is itself up to 3 levels from exact BT.601, and the style network passes such input
    differences on: the planes agree within a level on most pixels and never far apart."""
    from palmbrush.media.filters import load_style
    from palmbrush.media.streams import Encoding
    from palmbrush.media.video import stylize_video

    outs = {}
    for yuv in (True, False):
        outs[yuv] = tmp_path / f"{yuv}.mkv"
        stylize_video(clip, outs[yuv], lambda kind: load_style("starry-night", None, 1,
                      colour=kind), yuv=yuv, encoding=Encoding(crf=0))  # fmt: skip
    for got, want in zip(_planes_of(outs[True]), _planes_of(outs[False])):
        for a, b in zip(got, want):
            diff = np.abs(a.astype(int) - b)
            assert (diff <= 1).mean() > 0.95 and diff.mean() < 0.5 and diff.max() <= 12


def test_the_preset_and_the_colour_path_are_the_users_choice(tmp_path):
    """--preset reaches x264 (its settings are written into the stream), superfast by default;
    --rgb takes the RGB path and the JSON record says so."""
    import json

    from conftest import run_cli

    _clip(tmp_path / "in.mp4", frames=8, audio=False)
    model = tmp_path / "m.onnx"
    onnx.save(onnx.load(SAMPLE), model)
    written = {}
    for name, extra in {"default": [], "ultrafast": ["--preset", "ultrafast", "--rgb"]}.items():
        out = tmp_path / f"{name}.mp4"
        done = run_cli("stylize", str(tmp_path / "in.mp4"), "--style", str(model), "-o",
                       str(out), "--engine", "reference", "--json", *extra)  # fmt: skip
        assert done.returncode == 0, done.stderr
        [record] = json.loads(done.stdout)
        written[name] = (record["colour"], out.read_bytes())
    assert written["default"][0] == "yuv420p" and b"subme=1 " in written["default"][1]  # superfast
    assert written["ultrafast"][0] == "rgb (asked for)" and b"subme=0 " in written["ultrafast"][1]
    bad = run_cli("stylize", str(tmp_path / "in.mp4"), "--preset", "warp", "-o", "x.mp4")
    assert bad.returncode == 2 and "invalid choice: 'warp'" in bad.stderr
