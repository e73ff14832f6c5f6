"""The torch engine: convolutions through PyTorch (oneDNN on CPU, cuDNN on a GPU).

Kernels take and return NumPy arrays (zero-copy views of torch tensors on CPU). Only float32
4-D convolutions are claimed so far; anything else is declined with a reason, and the next
engine in the preference (ultimately the reference) runs it.
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from ..errors import PalmbrushError, Unsupported
from ..registry import declines

NAME = "torch"
PRIORITY = 10  # preferred over the reference engine when installed


def available() -> bool:
    return importlib.util.find_spec("torch") is not None


def unavailable_reason() -> str:
    return "PyTorch is not installed (pip install palmbrush[train])"


def set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


PRECISIONS = ("fp32", "bf16")


@dataclass
class Compute:
    """The precision one configured engine computes in, and its converted weights."""

    precision: str
    weights: dict[int, tuple[np.ndarray, object]] = field(default_factory=dict)  # id -> copy


def _weight(array, compute: Compute):
    """Weights in the compute precision; bf16 copies are made once per weight array."""
    import torch

    if array is None or compute.precision == "fp32":
        return _tensor(array)
    cached = compute.weights.get(id(array))
    if cached is None or cached[0] is not array:
        tensor = _tensor(array).bfloat16()
        if tensor.ndim == 4:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        cached = (array, tensor)
        compute.weights[id(array)] = cached
    return cached[1]


def _check_conv(ctx) -> None:
    x = ctx.shape(0)
    if ctx.dtype(0) != np.float32:
        raise Unsupported(f"{ctx.dtype(0)} input (float32 only)")
    if x is None or len(x) != 4:
        raise Unsupported("only 2-D convolutions (4-D input)")
    if ctx.attrs.get("auto_pad", "NOTSET") != "NOTSET":
        raise Unsupported(f"auto_pad={ctx.attrs['auto_pad']}")
    pads = ctx.attrs.get("pads") or [0, 0, 0, 0]
    if pads[0] != pads[2] or pads[1] != pads[3]:
        raise Unsupported(f"asymmetric pads {pads}")
    if ctx.has(5) and ctx.shape(5) is not None and len(ctx.shape(5)) != 4:
        raise Unsupported("residual of another rank")


def _conv(x, w, b, attrs, compute: Compute):
    import torch
    import torch.nn.functional as F

    pads = attrs.get("pads") or [0, 0, 0, 0]
    w, b = _weight(w, compute), _weight(b, compute)
    if w.dtype == torch.bfloat16:  # oneDNN's fast bf16 path wants channels-last
        x = x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    y = F.conv2d(x, w, b, stride=attrs.get("strides") or 1, padding=(pads[0], pads[1]),
                 dilation=attrs.get("dilations") or 1, groups=attrs.get("group", 1))  # fmt: skip
    return y.float()  # norms and activations run faster in float32 than bf16 in eager CPU torch


class TorchValue:
    """A tensor passed between torch kernels as it is (layout and dtype kept); other engines
    and the caller see it through __array__ as float32 NumPy, converted once."""

    __slots__ = ("_array", "tensor")

    def __init__(self, tensor):
        self.tensor, self._array = tensor, None

    def __array__(self, dtype=None, copy=None):
        if self._array is None:
            self._array = self.tensor.float().numpy()
        return self._array if dtype is None else self._array.astype(dtype)


def _tensor(array):
    import torch

    if array is None:
        return None
    if isinstance(array, TorchValue):
        return array.tensor
    with warnings.catch_warnings():  # weights are read-only views of the model; never written
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(array)  # strides kept: channels-last stays channels-last


def _instance_norm(y, scale, bias, epsilon):
    """Two-pass instance norm; several times faster than F.instance_norm on CPU."""
    import torch

    centred = y - y.mean(dim=(2, 3), keepdim=True)
    var = (centred * centred).mean(dim=(2, 3), keepdim=True)
    gain = scale.view(1, -1, 1, 1) * torch.rsqrt(var + epsilon)
    return centred.mul_(gain).add_(bias.view(1, -1, 1, 1))


TORCH_PAD = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}


def _fused_conv(X, W, B, scale, bias, residual, *, compute, pad_mode, pre_pads, norm, epsilon,
                activation, alpha, **attrs):  # fmt: skip
    """Pad -> conv -> instance norm -> activation -> + residual, all inside PyTorch."""
    import torch
    import torch.nn.functional as F

    with torch.inference_mode():
        x = _tensor(X)
        if pre_pads is not None and any(pre_pads):
            top, left, bottom, right = pre_pads
            x = F.pad(x, (left, right, top, bottom), mode=TORCH_PAD[pad_mode])
        y = _conv(x, W, B, attrs, compute)
        if norm == "instance":
            y = _instance_norm(y, _tensor(scale), _tensor(bias), epsilon)
        if activation == "relu":
            y = torch.relu_(y)
        elif activation == "leaky_relu":
            y = F.leaky_relu_(y, alpha)
        elif activation == "sigmoid":
            y = torch.sigmoid_(y)
        if residual is not None:
            y = y.add_(_tensor(residual))
        return TorchValue(y)


def _check_resize(ctx) -> None:
    """Claim only nearest resizes whose ONNX coordinates equal PyTorch's floor(x / s)."""
    a = ctx.attrs
    if ctx.dtype(0) != np.float32 or ctx.rank(0) != 4:
        raise Unsupported("float32 4-D input only")
    if a["mode"] != "nearest" or a.get("axes") or a.get("antialias"):
        raise Unsupported(f"mode {a['mode']} (nearest only)")
    scales = ctx.const(2) if ctx.has(2) else None
    if scales is None or scales.size != 4 or any(scales[:2] != 1):
        raise Unsupported("needs constant scales on H and W")
    if any(s != int(s) or s < 1 for s in scales[2:]):
        raise Unsupported(f"non-integer scales {list(scales)}")
    floor_like = {("asymmetric", "floor"), ("half_pixel", "round_prefer_floor"),
                  ("pytorch_half_pixel", "round_prefer_floor")}  # fmt: skip
    if (a["coordinate_transformation_mode"], a["nearest_mode"]) not in floor_like:
        raise Unsupported(f"{a['coordinate_transformation_mode']}/{a['nearest_mode']} coordinates")


@declines(_check_resize)
def resize(X, roi=None, scales=None, sizes=None, **attrs):
    import torch
    import torch.nn.functional as F

    with torch.inference_mode():
        factor = (int(scales[2]), int(scales[3]))
        return TorchValue(F.interpolate(_tensor(X), scale_factor=factor, mode="nearest"))


def _kernels(precision: str) -> dict:
    """The engine's kernels, with convolutions computing in `precision`."""
    compute = Compute(precision)

    @declines(_check_conv)
    def conv(X, W, B=None, **attrs):
        import torch

        with torch.inference_mode():
            return TorchValue(_conv(_tensor(X), W, B, attrs, compute))

    @declines(_check_conv)
    def fused_conv(X, W, B=None, scale=None, bias=None, residual=None, **attrs):
        return _fused_conv(X, W, B, scale, bias, residual, compute=compute, **attrs)

    for kernel in (conv, fused_conv, resize):
        kernel.native = True  # accepts TorchValue inputs as they are
    return {"Conv": conv, "FusedConv": fused_conv, "Resize": resize}


KERNELS = _kernels("fp32")


def configured(precision: str) -> SimpleNamespace:
    """This engine with its convolutions computing in `precision` ("fp32" or "bf16")."""
    if precision not in PRECISIONS:
        raise PalmbrushError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    return SimpleNamespace(NAME=NAME, PRIORITY=PRIORITY, KERNELS=_kernels(precision),
                           available=available, set_threads=set_threads)  # fmt: skip
