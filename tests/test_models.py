"""The style-network family, the loss networks and their weights."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import run_cli  # noqa: E402

from palmbrush.models import PRESETS, StyleNet, StyleNetConfig, macs, parameter_count  # noqa: E402
from palmbrush.models.loss_nets import TAP_CHANNELS, squeezenet, vgg  # noqa: E402
from palmbrush.models.weights import cached_download, load_loss_net  # noqa: E402
from palmbrush.runtime import PalmbrushError  # noqa: E402


def test_johnson_preset_is_the_2016_network_and_the_ladder_goes_below_one_percent():
    counts = {name: parameter_count(StyleNet(cfg)) for name, cfg in PRESETS.items()}
    assert counts["johnson"] == 1_679_235
    assert min(counts.values()) <= 16_792
    assert list(counts.values()) == sorted(counts.values(), reverse=True)


def test_models_command_lists_presets_with_parameters_and_macs():
    result = run_cli("models")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[2:]}
    assert rows["johnson"][1:4] == ["1,679,235", "1.0000", "141.73"]  # params, share, GMACs 720p
    assert rows["femto-skip"][1] == rows["femto"][1] == "12,627"  # the skip adds no weights


def test_the_detail_conv_adds_the_full_size_frame_and_starts_as_the_net_without_it():
    """femto-detail at initialisation computes what femto-skip does with the same weights;
    with its conv made the identity, the picture is femto-skip's plus the frame itself, clamped
    to [0, 1], so a one-pixel checkerboard that nothing at 1/2 size can draw reaches the
    output."""
    torch.manual_seed(0)
    plain = StyleNet(PRESETS["femto-skip"]).eval()
    detail = StyleNet(PRESETS["femto-detail"]).eval()
    detail.load_state_dict({**plain.state_dict(), **{
        k: v for k, v in detail.state_dict().items() if k.startswith("detail.")}})  # fmt: skip
    x = torch.rand(1, 3, 32, 48) * 0.2 + 0.4
    x[..., ::2, ::2] += 0.1  # the checkerboard, at the finest scale
    with torch.no_grad():
        base = plain(x)
        assert torch.equal(detail(x), base)
        conv = detail.detail[-1]
        conv.weight.zero_()
        for c in range(3):
            conv.weight[c, c, 1, 1] = 1.0
        assert torch.allclose(detail(x), (base + x).clamp(0, 1), atol=1e-6)
    assert parameter_count(detail) - parameter_count(plain) == 3 * 3 * 9 + 3


VARIANTS = [
    StyleNetConfig(widths=(8, 16), down="pool", up="transpose", norm="batch", pad="zero"),
    StyleNetConfig(widths=(8, 16, 16, 16), up="shuffle", pad="replicate", act="leaky"),
    StyleNetConfig(widths=(8, 12, 16), first_stride=2, act="elu", norm="none"),
    StyleNetConfig(widths=(8, 16), first_stride=4, up="transpose", last_up="layer"),
    StyleNetConfig(widths=(8, 16), first_stride=4, up="shuffle", last_up="layer"),
    StyleNetConfig(widths=(8, 16), first_stride=4, last_up="head", detail=True),
]


@pytest.mark.parametrize(
    "cfg", VARIANTS, ids=lambda c: f"x{c.factor}-s{c.first_stride}-{c.down}-{c.up}-{c.norm}"
)
def test_every_variant_keeps_the_frame_size_and_counts_macs(cfg):
    assert cfg.factor in (2, 4, 8)  # the first stride is undone at the end, whatever it is
    net = StyleNet(cfg).eval()
    y = net(torch.rand(1, 3, 4 * cfg.factor, 6 * cfg.factor))
    assert y.shape == (1, 3, 4 * cfg.factor, 6 * cfg.factor)
    assert float(y.min()) >= 0 and float(y.max()) <= 1
    assert macs(cfg, 64, 64) > 0


@pytest.mark.parametrize("up", ["nearest", "transpose", "shuffle"])
@pytest.mark.parametrize("scale", [2, 4])
def test_every_upsampled_pixel_sees_the_input(up, scale):
    """An Up by `scale` with positive weights and an all-ones input: no output pixel is left
    with the bias alone (a transposed conv whose kernel is narrower than its stride leaves
    holes)."""
    from palmbrush.models.stylenet import Up

    layer = Up(StyleNetConfig(up=up, norm="none", act="relu"), 2, 2, scale)
    with torch.no_grad():
        for m in layer.modules():
            if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d):
                m.weight.fill_(1.0)
                m.bias.zero_()
        y = layer(torch.ones(1, 2, 5, 7))
    assert y.shape == (1, 2, 5 * scale, 7 * scale)
    assert float(y.min()) > 0


def _random_state(net, seed=0):
    torch.manual_seed(seed)
    return {
        f"features.{k}": torch.randn_like(v) * 0.05 for k, v in net.features.state_dict().items()
    }


@pytest.mark.parametrize("name", ["vgg16", "vgg19", "squeezenet"])
def test_loss_networks_load_torchvision_layout_files_and_taps_have_documented_shapes(
    tmp_path, name
):
    net = squeezenet() if name == "squeezenet" else vgg(name)
    path = tmp_path / f"{name}.pth"
    torch.save({**_random_state(net), "classifier.1.weight": torch.zeros(3)}, path)
    loaded = load_loss_net(f"{name}:{path}")
    taps = list(TAP_CHANNELS[name])
    out = loaded(torch.rand(1, 3, 224, 224), taps)
    for tap in taps:
        size = {"conv1": 111, "fire2": 55, "fire3": 55, "fire4": 27, "fire5": 27}.get(tap, 13)
        if name != "squeezenet":
            size = 224 >> (int(tap[4]) - 1)
        assert tuple(out[tap].shape) == (1, TAP_CHANNELS[name][tap], size, size), tap
    first = next(iter(loaded.features.state_dict()))
    assert torch.equal(loaded.features.state_dict()[first], torch.load(path)[f"features.{first}"])


def test_keras_squeezenet_weights_load_with_the_caffe_convention(shared_data):
    net = load_loss_net(f"squeezenet:{shared_data / 'weights/squeezenet_v1.1_notop_keras_tf.h5'}")
    assert net.convention.bgr and net.convention.scale == 255.0
    out = net(torch.rand(1, 3, 64, 64), ["conv1", "fire9"])
    assert out["conv1"].shape == (1, 64, 31, 31) and out["fire9"].shape[1] == 512
    assert float(out["fire9"].abs().sum()) > 0  # real weights, not zeros


def test_wrong_weights_file_is_a_clear_error(tmp_path):
    path = tmp_path / "vgg16.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, path)
    with pytest.raises(PalmbrushError, match="lacks"):
        load_loss_net(f"vgg16:{path}")
    with pytest.raises(PalmbrushError, match="not found"):
        load_loss_net(f"vgg16:{tmp_path / 'missing.pth'}")
    with pytest.raises(PalmbrushError, match="unknown loss network"):
        load_loss_net("alexnet")


def test_cached_download_checks_the_hash_and_reuses_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PALMBRUSH_CACHE", str(tmp_path / "cache"))
    payload = np.random.default_rng(0).bytes(1000)
    digest = hashlib.sha256(payload).hexdigest()[:8]
    source = tmp_path / f"weights-{digest}.pth"
    source.write_bytes(payload)
    first = cached_download(source.as_uri())
    assert first.read_bytes() == payload and first.parent == tmp_path / "cache"
    source.unlink()  # a second call must not need the network (or the file) again
    assert cached_download(source.as_uri()) == first
    bad = tmp_path / "weights-00000000.pth"
    bad.write_bytes(payload)
    with pytest.raises(PalmbrushError, match="checksum"):
        cached_download(bad.as_uri())
    assert not (tmp_path / "cache" / bad.name).exists()
