"""The lab's metrics: synthetic motion, flicker (warping error), stability, quality, speed, and
the `palmbrush lab metrics / flicker / render` commands."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
from conftest import SAMPLE, SHARED, run_cli  # noqa: E402
from PIL import Image  # noqa: E402

from palmbrush.lab import flicker as fl  # noqa: E402
from palmbrush.lab import metrics  # noqa: E402
from palmbrush.lab.warp import Motion, inside, perturbed, smooth_flow, warp  # noqa: E402

KERAS = SHARED / "weights/squeezenet_v1.1_notop_keras_tf.h5"


def texture(rng, h: int, w: int) -> np.ndarray:
    """A smooth random texture: noise at 1/8 size, enlarged bicubically (flow can follow it)."""
    small = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(small).resize((w + 8, h + 8), Image.Resampling.BICUBIC))


def translated(rng, frames: int = 5, step=(2, 3), h: int = 192, w: int = 256) -> list:
    """A texture moving by whole pixels: frame t is the window at (t * dy, t * dx)."""
    big = texture(rng, h + frames * step[0], w + frames * step[1])
    return [
        big[t * step[0] : t * step[0] + h, t * step[1] : t * step[1] + w] for t in range(frames)
    ]


def test_warp_matches_pytorch_grid_sample():
    torch = pytest.importorskip("torch")
    from palmbrush.train.losses import warp as torch_warp

    rng = np.random.default_rng(1)
    image = rng.random((37, 53, 3))
    flow = smooth_flow(rng, 37, 53, Motion(shift=6.0, local=3.0))
    ours = warp(image, flow)
    theirs = torch_warp(torch.from_numpy(image).permute(2, 0, 1)[None].float(),
                        torch.from_numpy(flow)[None])[0].permute(1, 2, 0).numpy()  # fmt: skip
    assert np.abs(ours - theirs).max() < 1e-5


def test_warp_by_whole_pixels_is_a_shift():
    image = np.random.default_rng(2).random((20, 30, 1))
    flow = np.zeros((20, 30, 2), np.float32)
    flow[..., 0], flow[..., 1] = 3, -2  # sample 3 px right, 2 px up
    moved = warp(image, flow)
    np.testing.assert_array_equal(moved[2:, :-3], image[:-2, 3:])
    assert inside(flow)[2:, :-3].all() and not inside(flow)[:2].any()


def test_perturbation_is_small_smooth_and_seeded():
    frame = texture(np.random.default_rng(3), 120, 160)[:120, :160]
    a, flow_a = perturbed(frame, np.random.default_rng([7, 0]))
    b, flow_b = perturbed(frame, np.random.default_rng([7, 0]))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(flow_a, flow_b)
    m = Motion()
    assert np.abs(flow_a).max() <= m.shift + m.local
    assert np.abs(np.diff(flow_a, axis=1)).max() < 0.1  # smooth: no pixel-to-pixel jumps
    assert 0 < np.abs(a.astype(int) - frame).mean() < 40


def test_dis_flow_against_middlebury_ground_truth(shared_data):
    """Our flow convention and DIS medium against RubberWhale's true flow (frame 10 -> 11)."""
    root = shared_data / "flow/middlebury/rubberwhale"
    f10, f11 = (np.asarray(Image.open(root / f"frame1{i}.png").convert("RGB")) for i in (0, 1))
    raw = np.fromfile(root / "flow10.flo", np.float32)
    w, h = raw[1:3].view(np.int32)
    truth = raw[3:].reshape(h, w, 2)
    known = np.abs(truth).max(-1) < 1e9
    back_and_ahead = fl.pairs([f10, f11])[0]
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (f10, f11)]
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    ahead = dis.calc(grey[0], grey[1], None)
    epe = np.linalg.norm(ahead - truth, axis=-1)[known]
    assert np.median(epe) < 0.5, np.median(epe)
    # warping frame 11 by the true flow gives frame 10 (the convention warp() documents)
    moved = warp(f11.astype(np.float32), truth)
    assert np.abs(moved - f10)[known & inside(truth)].mean() < 4.0
    assert 0.8 < back_and_ahead.valid.mean() < 1.0  # occlusions and borders are found


def test_forward_backward_check():
    back = np.full((10, 12, 2), 1.5, np.float32)
    assert fl.consistent(back, -back)[:8, :10].all()  # flows that undo each other: valid
    assert not fl.consistent(back, back).any()  # flows that agree in direction: occluded
    # a varying flow: frame t+1 is frame t stretched, x_t = 1.25 x_{t+1} (b = 0.25 x); the
    # forward flow must be read where b leads (x_t), not at x_{t+1}: f(x_t) = -0.2 x_t
    xs = np.arange(40, dtype=np.float32)
    back = np.zeros((4, 40, 2), np.float32)
    back[..., 0] = 0.25 * xs
    ahead = np.zeros_like(back)
    ahead[..., 0] = -0.2 * xs
    valid = fl.consistent(back, ahead)
    assert valid[:, :31].all()  # x_t = 1.25 x inside the frame: consistent everywhere
    unwarped = np.sum((back + ahead) ** 2, -1) < 0.01 * np.sum(back**2 + ahead**2, -1) + 0.5
    assert not unwarped[:, 20:31].any()  # reading f at x_{t+1} instead would call them occluded


def test_flicker_of_a_translated_texture():
    """A stylization that commutes with the motion scores the floor (~0 for whole-pixel motion);
    one that adds fresh noise every frame scores far above it."""
    rng = np.random.default_rng(4)
    frames = translated(rng)
    flows = fl.pairs(frames)
    for pair in flows:  # DIS finds the motion: frame t+1 at x is frame t at (x + 3, y + 2)
        np.testing.assert_allclose(np.median(pair.back[pair.valid], 0), [3, 2], atol=0.05)
    invert = fl.flicker(frames, lambda f: 255 - f, flows)
    assert invert["warping_error"] < 0.004 and invert["floor"] < 0.004
    assert invert["ratio"] == pytest.approx(1.0, abs=0.05)
    noisy = fl.flicker(frames, lambda f: np.clip(f + rng.normal(0, 12, f.shape), 0, 255).astype(
        np.uint8), flows)  # fmt: skip
    assert noisy["warping_error"] > 0.03 and noisy["ratio"] > 10
    assert noisy["frames"] == 5 and noisy["floor"] == invert["floor"]


def test_stability_separates_stable_and_unstable_maps():
    photos = [texture(np.random.default_rng(5), 96, 128)[:96, :128]]
    same = metrics.stability(lambda f: f, photos)
    assert same["stability"] == same["stability_floor"] and same["stability_ratio"] == 1.0
    pattern = np.random.default_rng(6).integers(-40, 41, (96, 128, 3))
    fixed = metrics.stability(lambda f: np.clip(f + pattern, 0, 255).astype(np.uint8), photos)
    assert fixed["stability_ratio"] > 5  # a pattern tied to the pixel grid does not move along
    assert metrics.stability(lambda f: 255 - f, photos)["stability_ratio"] == pytest.approx(1, 0.1)
    assert metrics.stability(lambda f: f, photos, seed=1) != same  # the seed picks the motion


def _loss_net(tmp_path) -> str:
    if KERAS.is_file():
        return f"squeezenet:{KERAS}"
    torch = pytest.importorskip("torch")
    from palmbrush.models.loss_nets import squeezenet

    torch.manual_seed(0)  # a user's clone: seeded random weights in torchvision's layout
    state = {f"features.{k}": torch.randn_like(v) * 0.1
             for k, v in squeezenet().features.state_dict().items()}  # fmt: skip
    torch.save(state, tmp_path / "squeezenet.pth")
    return f"squeezenet:{tmp_path / 'squeezenet.pth'}"


def test_quality_errors(tmp_path):
    pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    photos = [texture(rng, 64, 96)[:64, :96] for _ in range(2)]
    painting = texture(rng, 80, 80)
    spec = _loss_net(tmp_path)
    same = metrics.quality(lambda f: f, photos, painting, spec)
    assert same["content_error"] == 0.0
    flat = metrics.quality(lambda f: np.full_like(f, 128), photos, painting, spec)
    assert flat["content_error"] > 0.1
    stripes = np.zeros((96, 96, 3), np.uint8)  # a painting unlike the photos
    stripes[:, ::8], stripes[::8] = (250, 200, 40), (30, 60, 200)
    same = metrics.quality(lambda f: f, photos, stripes, spec, style_size=96)
    painted = metrics.quality(lambda f: stripes[: f.shape[0], : f.shape[1]], photos, stripes,
                              spec, style_size=96)  # fmt: skip
    assert painted["style_error"] < 0.2 * same["style_error"]  # the painting has its own style
    assert "style_error" not in metrics.quality(lambda f: f, photos, None, spec)
    assert flat["colourfulness"] == 0.0 and same["colourfulness"] > 0
    assert same["colourfulness"] == pytest.approx(np.mean([metrics.colourfulness(p)
                                                           for p in photos]))  # fmt: skip


def test_colourfulness_is_hasler_and_suesstrunks():
    """Worked by hand: half pure red, half pure blue. R-G is 255 or 0 (mean 127.5, spread
    127.5), (R+G)/2-B is 127.5 or -255 (mean -63.75, spread 191.25), so M = hypot(127.5,
    191.25) + 0.3 hypot(127.5, 63.75) = 272.62; any grey is 0; the order of pixels is moot."""
    two = np.zeros((4, 6, 3), np.uint8)
    two[:2, :, 0], two[2:, :, 2] = 255, 255
    assert metrics.colourfulness(two) == pytest.approx(272.62, abs=0.01)
    assert metrics.colourfulness(np.full((5, 7, 3), 93, np.uint8)) == 0.0
    rng = np.random.default_rng(3)
    photo = rng.integers(0, 256, (16, 16, 3), np.uint8)
    shuffled = rng.permutation(photo.reshape(-1, 3)).reshape(photo.shape)
    assert metrics.colourfulness(shuffled) == pytest.approx(metrics.colourfulness(photo))
    washed = (photo.astype(int) + 3 * photo.mean(-1, keepdims=True)) // 4  # toward its grey
    assert metrics.colourfulness(washed.astype(np.uint8)) < 0.3 * metrics.colourfulness(photo)


def test_speed_and_size_of_a_model_file():
    pytest.importorskip("onnxruntime")
    out = metrics.speed(SAMPLE, threads=1, repeat=1, sizes=((48, 64),))
    assert set(out) == {"fps_64x48", "ort_ratio_64x48"} and min(out.values()) > 0
    size = metrics.size(SAMPLE)
    assert size["bytes"] == SAMPLE.stat().st_size and size["parameters"] > 100


def test_training_with_the_stability_term(tmp_path):
    torch = pytest.importorskip("torch")
    from palmbrush.train.loop import step_loss, synthetic_motion
    from palmbrush.train.losses import stability_loss
    from palmbrush.train.settings import TrainSettings

    identity = torch.nn.Identity()
    images = torch.rand(2, 3, 32, 40)
    flow, noise = synthetic_motion(images.shape, np.random.default_rng(0))
    # the identity commutes with the warp: only the noise remains, where the motion stays inside
    loss = stability_loss(identity, images, images, flow, noise)
    keep = np.stack([inside(f) for f in flow.numpy()])[:, None]  # (B, 1, H, W)
    expected = float((noise.numpy() ** 2 * keep).sum() / (keep.sum() * 3))
    assert 0.9 < keep.mean() < 1 and loss.item() == pytest.approx(expected, rel=1e-4)
    from palmbrush.models import PRESETS, StyleNet

    s = TrainSettings(style=tmp_path, content=tmp_path, out=tmp_path / "x.onnx", preset="pico",
                      temporal_weight=2.0, loss_net=_loss_net(tmp_path)).resolved()  # fmt: skip
    from palmbrush.train.loop import loss_network, style_targets

    net, loss_net = StyleNet(PRESETS["pico"]), loss_network(s, "cpu")
    targets = style_targets(loss_net, texture(np.random.default_rng(0), 40, 40), s, "cpu")
    _, parts = step_loss(net, loss_net, torch.rand(2, 3, 32, 32), targets, s, 1)
    assert parts["temporal"] > 0
    _, without = step_loss(net, loss_net, torch.rand(2, 3, 32, 32), targets,
                           TrainSettings(**{**vars(s), "temporal_weight": 0.0}), 1)  # fmt: skip
    assert "temporal" not in without


def test_arch_overrides_the_preset(tmp_path):
    from palmbrush.errors import PalmbrushError
    from palmbrush.train.settings import TrainSettings

    s = TrainSettings(style=tmp_path, content=tmp_path, out=tmp_path / "x.onnx", preset="femto",
                      arch={"widths": (8, 24), "blocks": 3})  # fmt: skip
    cfg = s.network_config()
    assert cfg.widths == (8, 24) and cfg.blocks == 3 and cfg.last_up == "head"
    with pytest.raises(PalmbrushError, match="architecture"):
        TrainSettings(**{**vars(s), "arch": {"wings": 2}}).network_config()


# --- the commands -------------------------------------------------------------------------------


def _frames_folder(tmp_path, frames) -> object:
    folder = tmp_path / "clip"
    folder.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{i:05d}.png")
    return folder


def test_flicker_command_json(tmp_path):
    folder = _frames_folder(tmp_path, translated(np.random.default_rng(8), frames=4))
    done = run_cli("lab", "flicker", str(folder), "--style", str(SAMPLE), "--json", "--engine",
                   "reference")  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["frames"] == 4 and result["pairs"] == 3 and 0 < result["floor"] < 0.01
    assert result["warping_error"] > result["floor"] and result["ratio"] > 1  # a real network
    assert result["style"] == SAMPLE.stem


@pytest.mark.parametrize(
    "args, words",
    [
        (["lab", "flicker", "missing.mp4", "--style", "starry-night"], "no such file"),
        (["lab", "flicker", "notes.txt", "--style", "starry-night"], "not a video"),
        (["lab", "flicker", "one", "--style", "starry-night"], "1 frame(s)"),
        (["lab", "flicker", "one", "--style", "nope"], "unknown style"),
        (["lab", "flicker", "one", "--style", "udnie", "--frames", "1"], "below the minimum"),
        (["lab", "metrics", "notes.txt"], "notes.txt"),
        (["lab", "metrics", "udnie", "--photos", "nowhere"], "no such file or folder"),
        (["lab", "metrics", "udnie", "--painting", "a.png", "--paintings", "."], "give one"),
        (["lab", "render", "udnie", "udnie", "-o", "out"], "share a folder name"),
        (["lab"], "required"),
    ],
)
def test_command_mistakes(tmp_path, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "one").mkdir()
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "one" / "0.png")
    (tmp_path / "notes.txt").write_text("not a model")
    done = run_cli(*args)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and words in done.stderr, done.stderr


def test_render_makes_comparable_folders_and_keeps_what_exists(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(9)
    for name in ("a", "b"):
        Image.fromarray(texture(rng, 40, 56)).save(photos / f"{name}.png")
    out = tmp_path / "ab"
    done = run_cli("lab", "render", "udnie", str(SAMPLE), "-o", str(out), "--photos", str(photos))
    assert done.returncode == 0, done.stderr
    for system in ("udnie", SAMPLE.stem):
        assert sorted(p.name for p in (out / system).iterdir()) == ["a.png", "b.png"]
    before = hashlib.sha256((out / "udnie" / "a.png").read_bytes()).hexdigest()
    again = run_cli("lab", "render", "udnie", "-o", str(out), "--photos", str(photos))
    assert again.returncode == 2 and "exists" in again.stderr
    assert hashlib.sha256((out / "udnie" / "a.png").read_bytes()).hexdigest() == before


def test_metrics_command_on_a_built_in_style(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    done = run_cli("lab", "metrics", "udnie", "--loss-net", _loss_net(tmp_path), "--json",
                   "--repeat", "1", "--painting", str(SAMPLE.with_name("bunny.jpg")),
                   timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout)["models"]["udnie"]
    for key in (
        "content_error",
        "style_error",
        "colourfulness",
        "stability",
        "stability_ratio",
        "fps_640x480",
        "fps_1280x720",
        "ort_ratio_640x480",
        "ort_ratio_1280x720",
        "bytes",
        "parameters",
    ):
        assert key in row and np.isfinite(row[key]) and row[key] >= 0, key
    assert row["stability_ratio"] > 1  # a real style network is less stable than the identity
