"""`palmbrush stylize` as a user runs it: photos, folders, stdin/stdout, videos, bad input."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLE, run_cli

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

STYLE = ["--style", str(SAMPLE), "--engine", "reference"]


def _photo(path, width=64, height=48, exif_orientation=None):
    """A smooth, colourful test picture (a gradient with a disc), saved losslessly unless JPEG."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([255 * x / width, 255 * y / height, 128 + 100 * np.sin(x / 5.0)], -1)
    rgb[(x - width / 2) ** 2 + (y - height / 2) ** 2 < (height / 4) ** 2] = [240, 40, 40]
    image = Image.fromarray(rgb.astype(np.uint8))
    exif = Image.Exif()
    if exif_orientation:
        exif[0x0112] = exif_orientation
    image.save(path, exif=exif.tobytes()) if exif_orientation else image.save(path)
    return np.asarray(image)


def _read(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_a_photo_is_stylized_next_to_itself(tmp_path):
    original = _photo(tmp_path / "photo.png")
    result = run_cli("stylize", str(tmp_path / "photo.png"), *STYLE)
    assert result.returncode == 0, result.stderr
    out = _read(tmp_path / "photo.tiny_stylenet.png")
    assert out.shape == original.shape
    assert np.abs(out.astype(int) - original).mean() > 10  # it is a different picture
    assert "photo.tiny_stylenet.png" in result.stdout


def test_exif_orientation_is_honoured(tmp_path):
    _photo(tmp_path / "turned.jpg", 64, 48, exif_orientation=6)  # stored 64x48, shown 48x64
    result = run_cli("stylize", str(tmp_path / "turned.jpg"), *STYLE, "-o", str(tmp_path / "o.png"))
    assert result.returncode == 0, result.stderr
    # Orientation 6: the stored picture is shown turned 90 degrees clockwise.
    upright = np.rot90(np.asarray(Image.open(tmp_path / "turned.jpg")), k=-1)
    Image.fromarray(upright).save(tmp_path / "upright.png")
    args = ["stylize", str(tmp_path / "upright.png"), *STYLE, "-o", str(tmp_path / "u.png")]
    assert run_cli(*args).returncode == 0
    assert _read(tmp_path / "o.png").shape == (64, 48, 3)
    np.testing.assert_array_equal(_read(tmp_path / "o.png"), _read(tmp_path / "u.png"))


def test_strength_zero_gives_back_the_original(tmp_path):
    original = _photo(tmp_path / "p.png")
    out = tmp_path / "o.png"
    result = run_cli("stylize", str(tmp_path / "p.png"), *STYLE, "--strength", "0", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert np.abs(_read(out).astype(int) - original).max() <= 1


def _chroma(rgb: np.ndarray) -> np.ndarray:
    r, g, b = (rgb[..., i].astype(float) for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    return np.stack([b - y, r - y], -1)


def test_preserve_color_keeps_the_chroma_and_changes_the_luma(tmp_path):
    original = _photo(tmp_path / "p.png")
    plain, kept = tmp_path / "plain.png", tmp_path / "kept.png"
    assert run_cli("stylize", str(tmp_path / "p.png"), *STYLE, "-o", str(plain)).returncode == 0
    args = ["stylize", str(tmp_path / "p.png"), *STYLE, "--preserve-color", "-o", str(kept)]
    assert run_cli(*args).returncode == 0
    kept_rgb, plain_rgb = _read(kept), _read(plain)
    unclipped = (kept_rgb > 2).all(-1) & (kept_rgb < 253).all(-1)  # clipping bends chroma
    drift = np.abs(_chroma(kept_rgb) - _chroma(original))[unclipped].mean()
    assert drift < 1.5 and unclipped.mean() > 0.5
    assert np.abs(_chroma(plain_rgb) - _chroma(original)).mean() > 5 * drift
    luma = np.abs(kept_rgb.astype(int).mean(-1) - original.astype(int).mean(-1)).mean()
    assert luma > 5  # the painting is still there, in the luma


def _area(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BOX)).astype(int)


def test_max_size_runs_small_and_returns_full_size(tmp_path):
    original = _photo(tmp_path / "p.png", 160, 120)
    small = tmp_path / "p64.png"
    Image.fromarray(_area(original, (64, 48)).astype(np.uint8)).save(small)
    outs = {name: tmp_path / f"{name}.png" for name in ("max", "full", "small")}
    for name, source, extra in [("max", "p.png", ["--max-size", "64"]), ("full", "p.png", []),
                                ("small", "p64.png", [])]:  # fmt: skip
        args = ["stylize", str(tmp_path / source), *STYLE, *extra, "-o", str(outs[name])]
        assert run_cli(*args).returncode == 0
    assert _read(outs["max"]).shape == original.shape
    # The network saw the photo at 64x48: shrunk back, the result is the small photo's painting,
    # and not the painting of the full-size photo.
    shrunk = _area(_read(outs["max"]), (64, 48))
    to_small = np.abs(shrunk - _read(outs["small"])).mean()
    to_full = np.abs(shrunk - _area(_read(outs["full"]), (64, 48))).mean()
    assert to_small < 12 and to_full > 3 * to_small, (to_small, to_full)


def test_stdin_to_stdout(tmp_path):
    _photo(tmp_path / "p.png")
    command = [sys.executable, "-m", "palmbrush.cli.main", "stylize", "-", *STYLE]
    data = (tmp_path / "p.png").read_bytes()
    result = subprocess.run(command, input=data, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    by_name = run_cli("stylize", str(tmp_path / "p.png"), *STYLE, "-o", str(tmp_path / "o.png"))
    assert by_name.returncode == 0, by_name.stderr
    piped = np.asarray(Image.open(io.BytesIO(result.stdout)))
    np.testing.assert_array_equal(piped, _read(tmp_path / "o.png"))


def test_a_folder_goes_on_past_bad_files_and_says_which(tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    _photo(folder / "a.png")
    _photo(folder / "sub" / "b.jpg")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "empty.png").write_bytes(b"")
    _photo(folder / "tiny.png", 8, 8)
    result = run_cli("stylize", str(folder), *STYLE, "-o", str(tmp_path / "out"))
    assert result.returncode == 1
    assert (tmp_path / "out" / "a.png").exists() and (tmp_path / "out" / "sub" / "b.jpg").exists()
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")) == ["a.png", "b.jpg", "sub"]
    errors = [line for line in result.stderr.splitlines() if line.startswith("palmbrush:")]
    assert len(errors) == 3 and "Traceback" not in result.stderr
    assert any("broken.jpg" in e for e in errors) and any(
        "tiny.png" in e and "8x8" in e for e in errors
    )
    assert "2 stylized, 3 failed" in result.stdout


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims to be width x height, with only the first bytes of its pixel data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 1000)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: None, "no such file"),
        (lambda d: (d / "x.png").write_bytes(b"hello"), "not an image"),
        (lambda d: _photo(d / "x.png", 1, 1), "at least 32x32"),
        (lambda d: (d / "x.png").write_bytes(_png_header(20000, 20000)), "20000x20000 (400 MP)"),
    ],
)
def test_bad_images_are_one_line_errors(tmp_path, make, message):
    make(tmp_path)
    result = run_cli("stylize", str(tmp_path / "x.png"), *STYLE)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / "x.tiny_stylenet.png").exists()


def test_an_existing_output_is_kept_without_overwrite(tmp_path):
    _photo(tmp_path / "p.png")
    (tmp_path / "o.png").write_bytes(b"precious")
    result = run_cli("stylize", str(tmp_path / "p.png"), *STYLE, "-o", str(tmp_path / "o.png"))
    assert result.returncode == 2 and "--overwrite" in result.stderr
    assert (tmp_path / "o.png").read_bytes() == b"precious"
    again = run_cli("stylize", str(tmp_path / "p.png"), *STYLE, "-o", str(tmp_path / "o.png"),
                    "--overwrite")  # fmt: skip
    assert again.returncode == 0 and _read(tmp_path / "o.png").shape == (48, 64, 3)


def test_a_model_that_is_not_a_style_model_is_refused(tmp_path):
    from conftest import relu_model

    (tmp_path / "relu.onnx").write_bytes(relu_model().SerializeToString())
    _photo(tmp_path / "p.png")
    result = run_cli("stylize", str(tmp_path / "p.png"), "--style", str(tmp_path / "relu.onnx"))
    assert result.returncode == 2 and "not a style model" in result.stderr


# ---- video ----------------------------------------------------------------------------------

av = pytest.importorskip("av")


def _clip(path, frames=24, rate=12, size=(64, 48), audio=True):
    """An H.264 clip with a moving square and (optionally) an AAC sine tone."""
    width, height = size
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = out.add_stream("aac", rate=22050) if audio else None
        for i in range(frames):
            rgb = np.full((height, width, 3), 40, np.uint8)
            rgb[10:30, 2 * i % width : 2 * i % width + 16] = [250, 200, 20]
            out.mux(video.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(video.encode(None))
        if sound is not None:
            samples = int(22050 * frames / rate)
            tone = (0.3 * np.sin(np.arange(samples) * 2 * np.pi * 440 / 22050)).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = tone[None, start : start + 1024]
                frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
                frame.sample_rate, frame.pts = 22050, start
                out.mux(sound.encode(frame))
            out.mux(sound.encode(None))


def _streams(path):
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        rate, time_base = video.average_rate, video.time_base
        times = [frame.pts for frame in container.decode(video=0)]
    with av.open(str(path)) as container:
        audio = [(s.codec_context.name, s.rate) for s in container.streams.audio]
        audio_packets = sum(1 for p in container.demux(audio=0) if p.size) if audio else 0
    return {"frames": len(times), "rate": rate, "audio": audio, "audio_packets": audio_packets,
            "duration": round(float((max(times) - min(times)) * time_base), 3)}  # fmt: skip


def test_a_video_keeps_its_frames_rate_duration_and_audio(tmp_path):
    _clip(tmp_path / "in.mp4")
    result = run_cli("stylize", str(tmp_path / "in.mp4"), *STYLE, "-o", str(tmp_path / "out.mp4"))
    assert result.returncode == 0, result.stderr
    before, after = _streams(tmp_path / "in.mp4"), _streams(tmp_path / "out.mp4")
    assert after == before and before["frames"] == 24 and before["rate"] == Fraction(12)
    assert before["audio"] == [("aac", 22050)] and before["audio_packets"] > 0
    assert "24 frames" in result.stdout and "fps sustained" in result.stdout


def test_json_reports_each_result(tmp_path):
    import json

    _clip(tmp_path / "in.mp4", audio=False)
    _photo(tmp_path / "p.png")
    args = ["stylize", str(tmp_path / "in.mp4"), str(tmp_path / "p.png"), *STYLE, "--json"]
    result = run_cli(*args, "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    rows = {Path(r["input"]).name: r for r in json.loads(result.stdout)}
    assert rows["in.mp4"]["frames"] == 24 and rows["in.mp4"]["kind"] == "video"
    assert rows["p.png"]["ok"] and rows["p.png"]["output"].endswith("p.tiny_stylenet.png")


@pytest.mark.parametrize("keep", [0, 2000])
def test_unreadable_videos_are_one_line_errors_and_leave_nothing(tmp_path, keep):
    _clip(tmp_path / "good.mp4")
    (tmp_path / "bad.mp4").write_bytes((tmp_path / "good.mp4").read_bytes()[:keep])
    result = run_cli("stylize", str(tmp_path / "bad.mp4"), *STYLE, "-o", str(tmp_path / "o.mp4"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "bad.mp4" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mp4", "good.mp4"]


def test_an_interrupted_video_leaves_no_output(tmp_path):
    _clip(tmp_path / "long.mp4", frames=600, size=(320, 240), audio=False)
    command = [sys.executable, "-X", "faulthandler", "-m", "palmbrush.cli.main", "stylize",
               str(tmp_path / "long.mp4"), *STYLE, "-o", str(tmp_path / "out.mp4")]  # fmt: skip
    # As at a terminal: a test run started in the background inherits SIGINT ignored, and
    # Python keeps it ignored; Ctrl-C must reach the child.
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 60
    while time.time() < deadline and not any(
        p.name.startswith(".out.mp4") for p in tmp_path.iterdir()
    ):
        time.sleep(0.05)  # the temporary output exists: frames are being written
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # say where every thread of the stuck process is
        process.send_signal(signal.SIGABRT)
        _, err = process.communicate(timeout=30)
        pytest.fail("no exit 60 s after SIGINT; stacks:\n" + err.decode(errors="replace")[-6000:])
    assert process.returncode == 130, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mp4"]


def test_a_real_clip_keeps_its_audio(tmp_path, shared_data):
    clip = shared_data / "video" / "bigbuckbunny.mp4"
    args = ["stylize", str(clip), *STYLE, "--max-size", "128", "-o", str(tmp_path / "o.mp4")]
    result = run_cli(*args, timeout=600)
    assert result.returncode == 0, result.stderr
    before, after = _streams(clip), _streams(tmp_path / "o.mp4")
    assert after["frames"] == before["frames"] and after["rate"] == before["rate"]
    assert after["audio"] == before["audio"] and after["audio_packets"] == before["audio_packets"]
    assert after["duration"] == before["duration"]


def test_a_stream_that_breaks_midway_is_an_error_and_leaves_nothing(tmp_path):
    _clip(tmp_path / "whole.mkv", frames=48)  # Matroska: readable up to where it is cut
    data = (tmp_path / "whole.mkv").read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[: len(data) // 2])
    result = run_cli("stylize", str(tmp_path / "cut.mkv"), *STYLE, "-o", str(tmp_path / "o.mkv"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "cut.mkv: the video stream breaks after frame" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.mkv", "whole.mkv"]


def test_a_rotated_video_comes_out_upright(tmp_path):
    """Display rotation metadata (as phones write it) is applied to the pixels, so the output,
    which has none, shows the same way. FFmpeg's convention: degrees counter-clockwise."""
    rgb = np.full((48, 64, 3), 30, np.uint8)
    rgb[:16, :24] = [250, 250, 250]  # a bright block in the top-left corner as stored
    with av.open(str(tmp_path / "phone.mp4"), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.set_display_rotation(90)
        for _ in range(5):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode(None))
    args = ["stylize", str(tmp_path / "phone.mp4"), *STYLE, "--strength", "0"]
    result = run_cli(*args, "-o", str(tmp_path / "upright.mp4"))
    assert result.returncode == 0, result.stderr
    with av.open(str(tmp_path / "upright.mp4")) as container:
        frame = next(container.decode(video=0))
        assert not frame.rotation
        shown = frame.to_ndarray(format="rgb24")
    want = np.rot90(rgb, 1)  # 90 degrees counter-clockwise: the block ends up bottom-left
    assert shown.shape == want.shape == (64, 48, 3)
    assert np.abs(shown.astype(int) - want).mean() < 8


OUTPUTS = [(".webm", "vp9", []), (".mkv", "h264", ["aac"]), (".mov", "h264", ["aac"])]


@pytest.mark.parametrize(("suffix", "codec", "audio"), OUTPUTS)
def test_the_output_type_picks_the_codec_and_what_audio_it_can_carry(
    tmp_path, suffix, codec, audio
):
    _clip(tmp_path / "in.mp4", frames=12, size=(66, 50))
    out = tmp_path / f"out{suffix}"
    result = run_cli("stylize", str(tmp_path / "in.mp4"), *STYLE, "-o", str(out))
    assert result.returncode == 0, result.stderr
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == codec
        assert [s.codec_context.name for s in container.streams.audio] == audio
        assert sum(1 for _ in container.decode(video=0)) == 12
    if not audio:
        assert "not copied: audio aac" in result.stdout


def test_an_unknown_codec_is_one_line_and_leaves_nothing(tmp_path):
    """The encoder stage fails after decoding started: the pipeline stops, nothing hangs."""
    _clip(tmp_path / "in.mp4")
    args = ["stylize", str(tmp_path / "in.mp4"), *STYLE, "--codec", "nosuchcodec"]
    result = run_cli(*args, "-o", str(tmp_path / "o.mp4"), timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "unknown or unusable codec 'nosuchcodec'" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


@pytest.mark.parametrize("style", ["nothere.onnx", "starry-night"])
def test_a_missing_style_is_one_line(tmp_path, style):
    _photo(tmp_path / "p.png")
    result = run_cli("stylize", str(tmp_path / "p.png"), "--style", str(tmp_path / style))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert style in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png"]
