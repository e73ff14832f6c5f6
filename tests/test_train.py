"""Training, resuming and exporting, on small generated images (and real photos when present)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from itertools import pairwise

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
from conftest import REPO, SHARED, run_cli  # noqa: E402
from PIL import Image  # noqa: E402

from palmbrush.models import StyleNet  # noqa: E402
from palmbrush.models.loss_nets import squeezenet  # noqa: E402
from palmbrush.runtime import PalmbrushError, load  # noqa: E402
from palmbrush.train import checkpoint  # noqa: E402
from palmbrush.train.export import Portable, export_net, metadata  # noqa: E402
from palmbrush.train.loop import train  # noqa: E402
from palmbrush.train.settings import TrainSettings  # noqa: E402

KERAS = SHARED / "weights/squeezenet_v1.1_notop_keras_tf.h5"


def _photo(rng, h=80, w=96) -> np.ndarray:
    """A synthetic photo: a smooth gradient with a few bright discs and rectangles."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    image = np.stack([yy, xx, 1 - yy], -1) * rng.uniform(0.4, 1, 3)
    for _ in range(4):
        (cy, cx), r = rng.uniform(0, 1, 2) * (h, w), rng.uniform(5, 20)
        disc = (yy * max(h, w) - cy) ** 2 + (xx * max(h, w) - cx) ** 2 < r**2
        image[disc] = rng.uniform(0, 1, 3)
    return (image * 255).astype(np.uint8)


@pytest.fixture
def data(tmp_path):
    """A content folder (with one corrupt file), a striped 'painting', and loss-net weights."""
    rng = np.random.default_rng(0)
    content = tmp_path / "content" / "nested"
    content.mkdir(parents=True)
    for i in range(10):
        Image.fromarray(_photo(rng)).save(content / f"photo{i}.png")
    (content / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    stripes = np.zeros((64, 64, 3), np.uint8)
    stripes[:, ::8] = (250, 200, 40)
    stripes[::8] = (30, 60, 200)
    Image.fromarray(stripes).save(tmp_path / "painting.png")
    if KERAS.is_file():
        loss_net = f"squeezenet:{KERAS}"
    else:  # a user's clone: seeded random SqueezeNet weights in torchvision's layout
        torch.manual_seed(0)
        net = squeezenet()
        state = {
            f"features.{k}": torch.randn_like(v) * 0.1 for k, v in net.features.state_dict().items()
        }
        torch.save(state, tmp_path / "squeezenet.pth")
        loss_net = f"squeezenet:{tmp_path / 'squeezenet.pth'}"
    return tmp_path, loss_net


def _settings(root, loss_net, **kw) -> TrainSettings:
    # Small and quick: no stability term, a constant rate (the defaults train with both;
    # test_lab_metrics and the stability tests cover that path).
    base = dict(style=root / "painting.png", content=root / "content", out=root / "style.onnx",
                preset="pico", size=48, batch=2, steps=30, lr=1e-2, lr_floor=1.0, style_size=64,
                temporal_weight=0.0, loss_net=loss_net, workers=0, checkpoint_every=10,
                preview_every=0)  # fmt: skip
    return TrainSettings(**{**base, **kw})


def _assert_contract(path, net):
    model = onnx.load(path)
    assert model.opset_import[0].version >= 17
    (inp,), (out,) = model.graph.input, model.graph.output
    assert (inp.name, out.name) == ("frame", "stylized")
    for info in (inp, out):
        assert info.type.tensor_type.elem_type == onnx.TensorProto.UINT8
        dims = [d.dim_value or d.dim_param for d in info.type.tensor_type.shape.dim]
        assert dims[0] == 1 and dims[3] == 3 and all(isinstance(d, str) for d in dims[1:3])
    props = {p.key: p.value for p in model.metadata_props}
    assert {"style", "painting", "painter", "preset", "architecture", "training", "licence"} <= set(
        props
    )
    ours, session = load(path), ort.InferenceSession(str(path))
    for h, w in [(32, 32), (45, 61), (70, 33)]:
        frame = np.random.default_rng(h).integers(0, 256, (1, h, w, 3), np.uint8)
        a = ours.run({"frame": frame})["stylized"]
        b = session.run(None, {"frame": frame})[0]
        with torch.no_grad():
            c = Portable(net)(torch.from_numpy(frame)).numpy()
        assert a.shape == (1, h, w, 3) and a.dtype == np.uint8
        assert np.abs(a.astype(int) - b).max() <= 1 and np.abs(a.astype(int) - c).max() <= 1


def test_a_tiny_training_run_lowers_the_loss_and_exports_a_valid_model(data):
    root, loss_net = data
    logs = []
    net, history = train(_settings(root, loss_net, preview_every=15), log=logs.append)
    assert any("skipped 1 content images" in line for line in logs)
    assert np.mean(history[-5:]) < 0.85 * np.mean(history[:5]), history
    assert sorted(p.name for p in (root / "style-previews").iterdir()) == [
        "000015.png",
        "000030.png",
    ]
    export_net(net, root / "style.onnx", metadata("pico", {"style": "painting.png"}))
    _assert_contract(root / "style.onnx", net)
    umask = os.umask(0)
    os.umask(umask)
    assert (root / "style.onnx").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_real_photos_train_too(data, shared_data):
    root, loss_net = data
    photos = root / "photos"
    photos.mkdir()
    for path in sorted((shared_data / "content/bsds500/train").glob("*.jpg"))[:6]:
        shutil.copy(path, photos)
    _, history = train(
        _settings(root, loss_net, content=photos, steps=12, size=64), log=lambda _: None
    )
    assert np.mean(history[-3:]) < np.mean(history[:3])


@pytest.mark.parametrize("cfg", ["transpose", "shuffle", "batch-replicate-x8", "head-upsamples",
                                 "skip-head", "skip-three-levels", "detail",
                                 "stride-4-head"])  # fmt: skip
def test_exported_variants_give_the_same_picture_everywhere(tmp_path, cfg):
    from palmbrush.models import StyleNetConfig

    configs = {
        "transpose": StyleNetConfig(widths=(8, 16), up="transpose", down="pool", pad="zero"),
        "shuffle": StyleNetConfig(widths=(8, 12, 16), up="shuffle", act="leaky"),
        "batch-replicate-x8": StyleNetConfig(widths=(8, 8, 8, 8), norm="batch", pad="replicate"),
        "head-upsamples": StyleNetConfig(widths=(8, 16), first_stride=2, last_up="head"),
        "skip-head": StyleNetConfig(widths=(8, 16), first_stride=2, last_up="head", skip=True),
        "skip-three-levels": StyleNetConfig(widths=(8, 12, 16), first_stride=2, skip=True),
        "detail": StyleNetConfig(widths=(8, 16), first_stride=2, last_up="head", detail=True),
        "stride-4-head": StyleNetConfig(widths=(8, 16), first_stride=4, last_up="head"),
    }
    torch.manual_seed(0)
    net = StyleNet(configs[cfg]).eval()
    if cfg == "detail":  # it starts at zero: give it weights that push pixels past 0 and 1
        torch.nn.init.normal_(net.detail[-1].weight, std=0.3)
    export_net(net, tmp_path / "m.onnx", metadata("custom", {}))
    _assert_contract(tmp_path / "m.onnx", net)


def test_skips_carry_the_photo_around_the_bottleneck():
    """With the lowest encoder level's output zeroed, a plain net's picture no longer depends on
    the photo; a skip net's still does, through the finer levels added to the decoder's."""
    from dataclasses import replace

    from palmbrush.models import PRESETS

    torch.manual_seed(0)
    a, b = torch.rand(1, 3, 48, 64), torch.rand(1, 3, 48, 64)
    for widths in [(8, 16), (8, 12, 16)]:
        cfg = replace(PRESETS["femto"], widths=widths)
        for skip in (False, True):
            net = StyleNet(replace(cfg, skip=skip)).eval()
            net.encoder[-1].register_forward_hook(lambda m, i, out: out * 0)
            with torch.no_grad():
                differ = (net(a) - net(b)).abs().max().item()
            assert (differ > 1e-3) if skip else (differ < 1e-6), (widths, skip, differ)


def test_the_learning_rate_falls_on_a_cosine_to_its_floor():
    from palmbrush.train.loop import learning_rate

    s = TrainSettings(style="p", content="c", out="o", steps=101, lr=1e-2, lr_floor=0.1)
    rates = [learning_rate(s, step) for step in range(1, 102)]
    assert rates[0] == pytest.approx(1e-2) and rates[-1] == pytest.approx(1e-3)
    assert rates[50] == pytest.approx(5.5e-3) and all(a > b for a, b in pairwise(rates))
    constant = TrainSettings(style="p", content="c", out="o", steps=10, lr=1e-2, lr_floor=1.0)
    assert {learning_rate(constant, step) for step in range(1, 11)} == {1e-2}


def test_training_sets_the_scheduled_rate_on_the_optimizer(data):
    root, loss_net = data
    train(_settings(root, loss_net, steps=3, lr=1e-2, lr_floor=0.5), log=lambda _: None)
    groups = checkpoint.load(root / "style.ckpt")["optimizer"]["param_groups"]
    assert [g["lr"] for g in groups] == [pytest.approx(5e-3)]  # the last step's: lr x floor


def test_excluded_sub_folders_are_held_aside(data):
    from palmbrush.train.data import find_images

    root, _ = data
    held = root / "content" / "held"
    held.mkdir()
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(held / "judge-me.png")
    assert held / "judge-me.png" in find_images(root / "content")
    kept = find_images(root / "content", ["held"])
    assert len(kept) == 11 and not [p for p in kept if p.is_relative_to(held)]
    with pytest.raises(PalmbrushError, match="--exclude helt: no such folder"):
        find_images(root / "content", ["helt"])
    assert find_images(root / "content", ["nested/../held"]) == kept  # the folder it reaches
    for outside in ("..", ".", "/tmp"):
        with pytest.raises(PalmbrushError, match="not a sub-folder"):
            find_images(root / "content", [outside])


def test_export_leaves_nothing_computable_from_constants(tmp_path):
    """The exporter's reflection pads arrive as shape arithmetic on constants; export folds
    them, so every node left depends on the frame."""
    from palmbrush.train.export import export_preset

    model = onnx.load(export_preset("femto", tmp_path / "f.onnx"))
    constant = {i.name for i in model.graph.initializer}
    assert not [n for n in model.graph.node if n.op_type == "Constant"]
    assert not [n.name for n in model.graph.node if n.input and set(n.input) <= constant]
    assert (tmp_path / "f.onnx").stat().st_size < 70 * 1024


def test_init_starts_from_another_runs_weights(data):
    """--init loads the weights and nothing else: with lr 0 the result is the init model."""
    root, loss_net = data
    first, _ = train(_settings(root, loss_net, steps=3), log=lambda _: None)
    other = root / "other.onnx"
    logs = []
    second, _ = train(_settings(root, loss_net, steps=2, lr=0.0, out=other,
                                init=root / "style.ckpt"), log=logs.append)  # fmt: skip
    assert any("starting from the weights in" in line for line in logs)
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key]), key
    assert checkpoint.load(root / "other.ckpt")["step"] == 2  # a run of its own, from step 0
    with pytest.raises(PalmbrushError, match="was trained with preset 'pico'"):
        train(_settings(root, loss_net, preset="nano", steps=1, init=root / "style.ckpt",
                        out=root / "third.onnx"), log=lambda _: None)  # fmt: skip


def test_init_from_a_shipped_style_continues_its_picture(data, tmp_path):
    """--init takes a style model or a built-in style's name: at a rate of 1e-9 the new model
    paints the shipped one's picture (compared on the reference engine); a foreign or broken
    model file is one clear line."""
    from palmbrush.styles import catalogue

    root, loss_net = data
    shipped = catalogue()["starry-night"].model
    preset = json.loads(_props(shipped)["training"])["preset"]
    out = tmp_path / "again.onnx"
    result = run_cli("train", "--style", str(root / "painting.png"), "--content",
                     str(root / "content"), "--out", str(out), "--init", "starry-night",
                     "--preset", preset, "--steps", "1", "--lr", "1e-9", "--size", "64",
                     "--batch", "1", "--loss-net", loss_net, "--workers", "0",
                     "--preview-every", "0", "--style-size", "64")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "starting from the weights in" in result.stderr + result.stdout
    frame = np.asarray(Image.open(REPO / "src/palmbrush/samples/bunny.jpg"))[None, :96, :160]
    a = load(shipped, engines="reference").run({"frame": frame})["stylized"]
    b = load(out, engines="reference").run({"frame": frame})["stylized"]
    assert np.abs(a.astype(int) - b).max() <= 1
    other = "nano" if preset != "nano" else "pico"
    with pytest.raises(PalmbrushError, match=f"was trained with preset '{preset}'"):
        train(_settings(root, loss_net, preset=other, steps=1, init=shipped,
                        out=tmp_path / "x.onnx"), log=lambda _: None)  # fmt: skip
    foreign = REPO / "src/palmbrush/samples/tiny_stylenet.onnx"  # a style model, not ours
    with pytest.raises(PalmbrushError, match="not a style model palmbrush exported"):
        train(_settings(root, loss_net, init=foreign, out=tmp_path / "f.onnx"), log=print)
    broken = onnx.load(shipped)
    tensor = next(i for i in broken.graph.initializer if i.name.startswith("net."))
    tensor.raw_data = tensor.raw_data[:-4]  # one element short of its dims
    onnx.save(broken, tmp_path / "short.onnx")
    with pytest.raises(PalmbrushError, match=f"tensor '{tensor.name}' declares"):
        train(_settings(root, loss_net, preset=preset, init=tmp_path / "short.onnx",
                        out=tmp_path / "s.onnx"), log=print)  # fmt: skip
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    result = run_cli("train", "--style", str(root / "painting.png"), "--content",
                     str(root / "content"), "--out", str(tmp_path / "y.onnx"),
                     "--init", str(junk))  # fmt: skip
    assert result.returncode == 2 and "junk.onnx" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "y.onnx").exists()


def _props(path) -> dict:
    return {p.key: p.value for p in onnx.load(path).metadata_props}


def test_a_checkpoint_from_before_a_config_field_existed_still_resumes(data):
    """Checkpoints written before `last_up` existed lack it; they mean its default."""
    root, loss_net = data
    train(_settings(root, loss_net, steps=2, checkpoint_every=2), log=lambda _: None)
    state = checkpoint.load(root / "style.ckpt")
    del state["config"]["last_up"]
    checkpoint.save(root / "old.ckpt", **{k: v for k, v in state.items() if k != "format"})
    _, history = train(_settings(root, loss_net, steps=3, out=root / "o.onnx"),
                       resume=root / "old.ckpt", log=lambda _: None)  # fmt: skip
    assert len(history) == 1  # steps 3 of 3: only the last one ran


def _run_train(root, loss_net, out, *extra):
    args = ["train", "--style", str(root / "painting.png"), "--content", str(root / "content"),
            "--out", str(out), "--preset", "pico", "--size", "48", "--batch", "2", "--steps", "14",
            "--lr", "5e-3", "--style-size", "64", "--loss-net", loss_net, "--workers", "1",
            "--checkpoint-every", "2", "--preview-every", "0", *extra]  # fmt: skip
    return [sys.executable, "-m", "palmbrush.cli.main", *args]


def test_a_killed_run_resumes_to_the_same_weights_as_an_uninterrupted_one(data):
    root, loss_net = data
    straight = subprocess.run(
        _run_train(root, loss_net, root / "a.onnx"), capture_output=True, text=True
    )
    assert straight.returncode == 0, straight.stderr
    killed = subprocess.Popen(
        _run_train(root, loss_net, root / "b.onnx"), stderr=subprocess.DEVNULL
    )
    ckpt = root / "b.ckpt"
    deadline = time.time() + 120
    while not ckpt.exists() and killed.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    stopped_at = checkpoint.load(ckpt)["step"]
    assert stopped_at < 14, "the run finished before it could be killed"
    resumed = subprocess.run(_run_train(root, loss_net, root / "b.onnx", "--resume", str(ckpt)),
                             capture_output=True, text=True)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    a, b = checkpoint.load(root / "a.ckpt"), checkpoint.load(ckpt)
    assert a["step"] == b["step"] == 14
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key


def test_a_checkpoint_from_one_preset_is_refused_by_another(data):
    root, loss_net = data
    train(_settings(root, loss_net, steps=2, checkpoint_every=2), log=lambda _: None)
    with pytest.raises(PalmbrushError, match="was trained with preset 'pico'"):
        train(
            _settings(root, loss_net, preset="nano", steps=4), resume=root / "style.ckpt", log=print
        )


def test_user_mistakes_are_one_line_errors(data):
    root, loss_net = data
    (root / "bad.jpg").write_bytes(b"GIF89a broken")
    (root / "empty").mkdir()
    (root / "file.txt").write_text("x")
    base = [
        "--content",
        str(root / "content"),
        "--out",
        str(root / "o.onnx"),
        "--loss-net",
        loss_net,
    ]
    cases = {
        "cannot read image": ["--style", str(root / "bad.jpg"), *base],
        "no images": ["--style", str(root / "painting.png"), *base[:0], "--content",
                      str(root / "empty"), "--out", str(root / "o.onnx"), "--loss-net", loss_net],
        "is a file, not a folder": ["--style", str(root / "painting.png"), "--content",
                                         str(root / "content"), "--out",
                                         str(root / "file.txt" / "o.onnx"), "--loss-net", loss_net],
        "unknown preset": ["--style", str(root / "painting.png"), *base, "--preset", "huge"],
        "--exclude nope: no such folder": ["--style", str(root / "painting.png"), *base,
                                           "--exclude", "nope"],
        "unknown tap 'fire99'": ["--style", str(root / "painting.png"), *base, "--style-layers",
                                 "conv1,fire99", "--steps", "1"],
        "is a folder": ["--style", str(root / "painting.png"), *base[:2], "--out", str(root),
                        "--loss-net", loss_net],
    }  # fmt: skip
    for fragment, args in cases.items():
        result = run_cli("train", *args)
        assert result.returncode == 2, (fragment, result.stderr)
        assert fragment in result.stderr and len(result.stderr.strip().splitlines()) == 1, (
            result.stderr
        )
    assert not (root / "o.onnx").exists()


def test_resuming_a_finished_run_into_a_new_model_writes_the_checkpoint_it_names(data):
    root, loss_net = data
    train(_settings(root, loss_net, steps=2, checkpoint_every=2), log=lambda _: None)
    _, history = train(_settings(root, loss_net, steps=2, out=root / "copy.onnx"),
                       resume=root / "style.ckpt", log=lambda _: None)  # fmt: skip
    assert history == []  # nothing left to train ...
    copied, original = checkpoint.load(root / "copy.ckpt"), checkpoint.load(root / "style.ckpt")
    assert copied["step"] == original["step"] == 2  # ... and the named checkpoint holds it
    for key, value in original["model"].items():
        assert torch.equal(value, copied["model"][key]), key
