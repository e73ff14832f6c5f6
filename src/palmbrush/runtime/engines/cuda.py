"""The cuda engine: the network on an NVIDIA GPU through PyTorch (cuDNN convolutions,
channels-last), chosen before the CPU engines whenever a GPU is present.

Its values live in GPU memory (PLACE): its kernels take torch tensors on its device (or NumPy
arrays, which they upload) and return tensors on the device, so a chain of its nodes never
crosses the bus. The executor moves a value between places where a node of another place
reads it (transfer steps, which `profile` shows with their cost), and always hands the caller
NumPy arrays. A frame enters as uint8 (FromImage) and leaves as uint8 (ToImage): the bus
carries a quarter of the float bytes.

Precision: fp32 (TF32 off: cuDNN's default for convolutions would round the inputs to 10
mantissa bits, not what "fp32" promises), or fp16 / bf16 convolutions with the instance norm,
activations and residual in fp32, as options of `load(..., precision=)`; never silently.

`on_device(device)` builds the same engine on any torch device: the tests run it on torch's
CPU device where no GPU is present, so the code path (uploads, transfers, the kernels) is
tested everywhere, and its parity against the reference on a real GPU where there is one.
Nothing here imports another engine; the window geometry comes from ops/ and _numba/tables.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import os
import threading
import weakref
from types import SimpleNamespace

import numpy as np

from ..errors import PalmbrushError, Unsupported
from ..ops.rules import slice_range
from ..registry import declines
from . import _checks, _torch_ops
from ._numba.tables import check_nearest, nearest_factors

NAME = "cuda"
PRIORITY = 20  # before cpu and torch: registry.PREFERENCES gives it every node it accepts
PLACE = "torch:cuda"  # where its values live: the executor moves them to and from the host
COMPILES = False
PRECISIONS = ("fp32", "fp16", "bf16")
STARTUP_S = 3.5  # importing PyTorch; paid before any timing (it is available() already)


@functools.cache
def available() -> bool:
    """A CUDA device PyTorch can use. Machines with no NVIDIA driver answer without importing
    PyTorch (3 s); on the others, PyTorch is asked."""
    if importlib.util.find_spec("torch") is None:
        return False
    if not _driver_present():
        return False
    import torch

    return bool(torch.cuda.is_available())


def _driver_present() -> bool:
    """An NVIDIA driver on Linux, a WSL2 GPU, or Windows (where only PyTorch can tell)."""
    linux = os.path.exists("/proc/driver/nvidia/version") or glob.glob("/dev/nvidia[0-9]*")
    return bool(linux) or os.path.exists("/dev/dxg") or os.name == "nt"


def unavailable_reason() -> str:
    if importlib.util.find_spec("torch") is None:
        return "PyTorch is not installed (pip install palmbrush[train])"
    return "no NVIDIA GPU that PyTorch can use (no driver, or a CPU-only PyTorch build)"


def started() -> bool:
    return True  # available() imported PyTorch and asked for the device


def start() -> None:
    pass


def _torch():
    import torch

    return torch


class _Device:
    """The kernels' state on one torch device: uploaded weights, the compute precision."""

    def __init__(self, device: str, precision: str):
        if precision not in PRECISIONS:
            raise PalmbrushError(
                f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}"
            )
        self.device = device  # as given; target() is the normalized torch.device
        self.place = f"torch:{device}"
        self.precision = precision
        self.weights: dict[tuple, tuple] = {}  # (id(array), dtype) -> (weakref, device tensor)

    def download(self, tensor) -> np.ndarray:
        return tensor.detach().cpu().numpy()

    def synchronize(self) -> None:
        if self.device.startswith("cuda"):
            _torch().cuda.synchronize(self.device)

    @functools.cached_property
    def target(self):
        """The torch.device, with the current index filled in ("cuda" -> cuda:0)."""
        torch = _torch()
        device = torch.device(self.device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        return device

    @functools.cached_property
    def dtype(self):
        torch = _torch()
        return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[
            self.precision
        ]

    def tensor(self, x):
        """A tensor on this device: torch tensors already there pass, other tensors are moved;
        a NumPy array here is a constant (the executor uploads every computed value before the
        kernel runs: places.py), uploaded once and kept."""
        torch = _torch()
        if isinstance(x, torch.Tensor):
            return x if x.device == self.target else x.to(self.target)
        return self.constant(x)

    def upload(self, array):
        """A computed value's upload: a copy on the device (on the CPU device too, where a
        tensor would otherwise share the memory of an arena buffer that is reused later)."""
        torch = _torch()
        return torch.from_numpy(np.array(array)).to(self.target)

    def constant(self, array):
        """A constant array on the device in its own dtype, uploaded once per array."""
        return self._cached(array, None, keep_dtype=True)

    def weight(self, array, dtype=None):
        """A constant (weight, bias, scale) on the device, float32 or `dtype`, 4-D ones
        channels-last, uploaded once and forgotten with its array (one input size's plan may
        own it)."""
        return self._cached(array, dtype, keep_dtype=False)

    def _cached(self, array, dtype, keep_dtype: bool):
        if array is None:
            return None
        key = (id(array), dtype, keep_dtype)
        cached = self.weights.get(key)
        if cached is None or cached[0]() is not array:
            torch = _torch()
            host = np.array(array) if keep_dtype else np.array(array, np.float32)
            tensor = torch.from_numpy(host).to(self.target)  # a copy: writable, owned
            if dtype is not None:
                tensor = tensor.to(dtype)
            if tensor.ndim == 4 and not keep_dtype:
                tensor = tensor.contiguous(memory_format=torch.channels_last)
            cached = (weakref.ref(array), tensor)
            self.weights[key] = cached
            weakref.finalize(array, self.weights.pop, key, None)
        return cached[1]


_CUDNN = threading.Lock()  # cudnn.flags sets process-wide settings and restores them


def _cudnn():
    """cuDNN for this call only (the caller's own settings are restored after it): its
    autotuner (the fastest algorithm per shape, once per shape), and no TF32 (module
    docstring). Callers hold _CUDNN, so two runs in two threads never interleave the saving
    and restoring of the settings; PyTorch code of the caller's running in another thread at
    that moment sees them."""
    cudnn = _torch().backends.cudnn
    return cudnn.flags(enabled=True, benchmark=True, benchmark_limit=cudnn.benchmark_limit,
                       deterministic=cudnn.deterministic, allow_tf32=False)  # fmt: skip


TORCH_PAD = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}


def _check_conv(ctx) -> None:
    _checks.conv_2d(ctx)
    if any(ctx.has(i) and ctx.const(i) is None for i in (1, 2, 3, 4)):
        raise Unsupported("weights, bias or norm parameters computed at run time")


def _fused_conv(dev: _Device, X, W, B, scale, bias, residual, *, upsample=None, pad_mode="constant",
                pre_pads=None, norm="none", epsilon=0.0, activation="none", alpha=0.0,
                pads=None, strides=None, dilations=None, group=1, **_):  # fmt: skip
    """Nearest upsample -> pad -> conv (cuDNN) -> instance norm -> activation -> + residual,
    as engines/_reference/fused.py composes them."""
    torch = _torch()
    F = torch.nn.functional
    with torch.inference_mode():
        x = dev.tensor(X).float().contiguous(memory_format=torch.channels_last)
        if upsample:
            x = F.interpolate(x, scale_factor=tuple(float(u) for u in upsample), mode="nearest")
        if pre_pads and any(pre_pads):
            top, left, bottom, right = (int(p) for p in pre_pads)
            x = F.pad(x, (left, right, top, bottom), mode=TORCH_PAD[pad_mode])
        pads = [int(p) for p in pads or [0, 0, 0, 0]]
        padding = (pads[0], pads[1])
        if pads[0] != pads[2] or pads[1] != pads[3]:  # conv2d pads symmetrically only
            x, padding = F.pad(x, (pads[1], pads[3], pads[0], pads[2])), (0, 0)
        w, b = dev.weight(W, dev.dtype), dev.weight(B, dev.dtype)
        with _CUDNN, _cudnn():
            y = F.conv2d(x.to(dev.dtype), w, b, stride=strides or 1, padding=padding,
                         dilation=dilations or 1, groups=group).float()  # fmt: skip
        extra = None if residual is None else dev.tensor(residual)
        return _torch_ops.finish(y, dev.weight(scale), dev.weight(bias), extra, norm=norm,
                                 epsilon=epsilon, activation=activation, alpha=alpha)  # fmt: skip


def _check_pad(ctx) -> None:
    _checks.spatial_pad(ctx, TORCH_PAD)


def _pad(dev: _Device, data, pads, constant_value=None, axes=None, *, mode="constant"):
    torch = _torch()
    top, left, bottom, right = (int(p) for p in np.asarray(pads)[[2, 3, 6, 7]])
    with torch.inference_mode():
        x = dev.tensor(data)
        return torch.nn.functional.pad(x, (left, right, top, bottom), mode=TORCH_PAD[mode])


def _resize(dev: _Device, X, roi=None, scales=None, sizes=None, **attrs):
    torch = _torch()
    factor = tuple(float(f) for f in nearest_factors(attrs, scales))
    with torch.inference_mode():
        return torch.nn.functional.interpolate(dev.tensor(X), scale_factor=factor, mode="nearest")


def _check_from_image(ctx) -> None:
    if ctx.rank(0) != 4 or ctx.attrs["perm"] != [0, 3, 1, 2]:
        raise Unsupported("NHWC uint8 frames to NCHW tensors only")


def _from_image(dev: _Device, x, *, perm, scale):
    """Transpose(Cast(x, float32), perm) / scale: the uint8 frame crosses the bus, 1 byte a
    channel."""
    torch = _torch()
    with torch.inference_mode():
        frame = dev.tensor(x).permute(0, 3, 1, 2).float()  # channels-last memory, NCHW logical
        divisor = torch.tensor(scale, dtype=torch.float32, device=frame.device)
        return frame / divisor  # true division (a Python scalar is a reciprocal on CUDA)


def _check_to_image(ctx) -> None:
    if ctx.dtype(0) != np.float32 or ctx.rank(0) != 4 or ctx.attrs["perm"] != [0, 2, 3, 1]:
        raise Unsupported("float32 NCHW tensors to NHWC frames only")


def _to_image(dev: _Device, x, *, perm, scale, low, high):
    """Cast(Transpose(Clip(Round(x * scale), low, high), perm), uint8); torch.round rounds
    half to even, as ONNX Round."""
    torch = _torch()
    with torch.inference_mode():
        y = torch.round(dev.tensor(x) * float(scale))
        y = y.clamp_(float(low), float(high)).permute(0, 2, 3, 1)
        return y.to(torch.uint8).contiguous()


def _check_float(ctx) -> None:
    if any(ctx.has(i) and ctx.dtype(i) != np.float32 for i in range(len(ctx.node.inputs))):
        raise Unsupported("float32 tensors only (shape arithmetic stays on the host)")


def _check_slice(ctx) -> None:
    if ctx.dtype(0) != np.float32:
        raise Unsupported("float32 data only (shape arithmetic stays on the host)")
    if ctx.has(4) and (ctx.const(4) is None or (ctx.const(4) <= 0).any()):
        raise Unsupported("steps not constant and positive")
    if ctx.has(3) and ctx.const(3) is None:
        raise Unsupported("axes computed at run time")


def _slice(dev: _Device, data, starts, ends, axes=None, steps=None):
    """ONNX Slice with positive steps; starts and ends are read on the host (host_inputs)."""
    x = dev.tensor(data)
    axes = range(len(starts)) if axes is None else [int(a) % x.ndim for a in axes]
    steps = [1] * len(starts) if steps is None else steps
    index = [slice(None)] * x.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps):
        first, last = slice_range(x.shape[axis], int(start), int(end), int(step))
        index[axis] = slice(first, max(first, last), int(step))
    return x[tuple(index)]


def _kernels(dev: _Device) -> dict:
    def bind(function, check):
        return declines(check)(functools.partial(function, dev))

    def conv(X, W, B=None, **attrs):
        return _fused_conv(dev, X, W, B, None, None, None, **attrs)

    def fused_conv(X, W, B=None, scale=None, bias=None, residual=None, **attrs):
        return _fused_conv(dev, X, W, B, scale, bias, residual, **attrs)

    def elementwise(function):
        def kernel(*inputs):
            torch = _torch()
            with torch.inference_mode():
                return function(torch, *(dev.tensor(x) for x in inputs))

        return declines(_check_float)(kernel)

    sliced = bind(_slice, _check_slice)
    sliced.host_inputs = (1, 2, 3, 4)  # index arguments: never uploaded
    return {
        "Add": elementwise(lambda torch, a, b: a + b),
        "Mul": elementwise(lambda torch, a, b: a * b),
        "Relu": elementwise(lambda torch, x: torch.relu(x)),
        "Sigmoid": elementwise(lambda torch, x: torch.sigmoid(x)),
        "Tanh": elementwise(lambda torch, x: torch.tanh(x)),
        "Conv": declines(_check_conv)(conv),
        "FusedConv": declines(_check_conv)(fused_conv),
        "Pad": bind(_pad, _check_pad),
        "Resize": bind(_resize, check_nearest),
        "FromImage": bind(_from_image, _check_from_image),
        "ToImage": bind(_to_image, _check_to_image),
        "Slice": sliced,
    }


def on_device(device: str = "cuda", precision: str = "fp32", name: str | None = None):
    """This engine computing on a torch `device` ("cuda", "cuda:1", or "cpu" for tests)."""
    dev = _Device(device, precision)
    return SimpleNamespace(
        NAME=name or (NAME if device == "cuda" else f"{NAME}@{device}"), PRIORITY=PRIORITY,
        PLACE=dev.place, KERNELS=_kernels(dev), available=lambda: True, started=started,
        start=start, STARTUP_S=STARTUP_S, COMPILES=False, PRECISIONS=PRECISIONS,
        configured=lambda other: on_device(device, other, name), upload=dev.upload,
        download=dev.download, synchronize=dev.synchronize, set_threads=set_threads,
        precision=precision,
    )  # fmt: skip


_DEFAULT = _Device("cuda", "fp32")
KERNELS = _kernels(_DEFAULT)  # building them imports nothing: PyTorch loads on the first call
upload, download, synchronize = _DEFAULT.upload, _DEFAULT.download, _DEFAULT.synchronize


def configured(precision: str) -> SimpleNamespace:
    """This engine with its convolutions computing in `precision` (fp32, fp16 or bf16)."""
    return on_device("cuda", precision, NAME)


def set_threads(n: int) -> None:
    pass  # a GPU's threads are not the CPU's; the host side of a run is one thread
