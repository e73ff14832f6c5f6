"""Loss-network weights: from a local file, or (for users who are online) a cached download.

Downloads go to ~/.cache/palmbrush (or $PALMBRUSH_CACHE) and are checked against the SHA-256
prefix that torchvision puts in each file name. Nothing is ever fetched in tests.
"""

from __future__ import annotations

import hashlib
import shutil
import urllib.request
from pathlib import Path

import torch

from palmbrush.atomic import atomic_path
from palmbrush.cache import cache_dir
from palmbrush.errors import PalmbrushError

from .loss_nets import CAFFE, TORCHVISION, TappedFeatures, squeezenet, vgg

URLS = {
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "vgg19": "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
    "squeezenet": "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth",
}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cached_download(url: str, prefix: str | None = None) -> Path:
    """Fetch `url` once into the cache; verify the SHA-256 prefix (torchvision's `-<hash>.pth`)."""
    name = url.rsplit("/", 1)[-1]
    prefix = prefix or name.rsplit("-", 1)[-1].split(".")[0]
    target = cache_dir() / name
    if target.is_file() and _sha256(target).startswith(prefix):
        return target
    try:
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
                shutil.copyfileobj(response, out)
            if not _sha256(Path(tmp)).startswith(prefix):
                raise PalmbrushError(
                    f"download of {url} failed its checksum (expected {prefix}...)"
                )
    except OSError as exc:
        raise PalmbrushError(f"cannot download {url}: {exc}") from None
    return target


def load_loss_net(spec: str) -> TappedFeatures:
    """'squeezenet:PATH', 'vgg16', 'vgg16:PATH', 'vgg19[:PATH]' -> a frozen TappedFeatures."""
    name, _, path = spec.partition(":")
    if name not in URLS:
        raise PalmbrushError(f"unknown loss network '{name}' (choose from {', '.join(URLS)})")
    source = Path(path) if path else cached_download(URLS[name])
    if not source.is_file():
        raise PalmbrushError(f"loss network weights not found: {source}")
    if source.suffix in (".h5", ".hdf5"):
        if name != "squeezenet":
            raise PalmbrushError("only SqueezeNet weights can be read from Keras HDF5")
        net = squeezenet(CAFFE)
        net.features.load_state_dict(keras_squeezenet_state(source))
        return net
    net = squeezenet(TORCHVISION) if name == "squeezenet" else vgg(name)
    _load_torchvision(net, source)
    return net


def _load_torchvision(net: TappedFeatures, source: Path) -> None:
    try:
        state = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise PalmbrushError(f"cannot read weights {source}: {exc}") from None
    features = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    missing = set(net.features.state_dict()) - set(features)
    if missing:
        raise PalmbrushError(f"{source} lacks {len(missing)} feature weights, e.g. {min(missing)}")
    try:
        net.features.load_state_dict(features, strict=False)
    except RuntimeError as exc:
        raise PalmbrushError(f"{source} does not fit this network: {str(exc)[:200]}") from None


def keras_squeezenet_state(path: Path) -> dict[str, torch.Tensor]:
    """Keras SqueezeNet 1.1 HDF5 (kernels kh, kw, in, out) -> torchvision `features` keys.

    Datasets are named like 'conv1/conv1_3/kernel:0' and
    'fire2/squeeze1x1/fire2/squeeze1x1_3/bias:0'.
    """
    import h5py

    found: list[tuple[str, object]] = []
    try:
        with h5py.File(path, "r") as f:
            f.visititems(
                lambda name, obj: found.append((name, obj[()])) if hasattr(obj, "shape") else None
            )
    except OSError as exc:
        raise PalmbrushError(f"cannot read Keras weights {path}: {exc}") from None
    return {_torch_key(name): _to_torch(name, array) for name, array in found}


FIRE_INDEX = {f"fire{n}": i for n, i in zip(range(2, 10), [3, 4, 6, 7, 9, 10, 11, 12])}


def _torch_key(name: str) -> str:
    parts = name.split("/")
    suffix = "weight" if parts[-1].startswith("kernel") else "bias"
    if parts[0] == "conv1":
        return f"0.{suffix}"
    part = {"squeeze1x1": "squeeze"}.get(parts[1], parts[1])
    return f"{FIRE_INDEX[parts[0]]}.{part}.{suffix}"


def _to_torch(name: str, array) -> torch.Tensor:
    tensor = torch.from_numpy(array.copy())
    is_kernel = name.rsplit("/", 1)[-1].startswith("kernel")
    return tensor.permute(3, 2, 0, 1).contiguous() if is_kernel else tensor
