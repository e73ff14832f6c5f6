"""The torch engine: convolutions through PyTorch (oneDNN on CPU, cuDNN on a GPU).

Kernels take and return NumPy arrays in channels-last memory (zero-copy views of torch
tensors). Only float32 4-D convolutions and nearest upsampling are claimed; anything else is
declined with a reason, and the next engine in the preference runs it. Around each
convolution, the one-pass Numba kernels of engines/_numba do the padding/upsampling gather and
the instance norm, activation and residual; without Numba, PyTorch ops do.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import warnings
import weakref
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from ..errors import PalmbrushError, Unsupported
from ..layout import CHANNELS_LAST
from ..registry import declines
from . import _checks, _numba, _torch_ops
from ._numba import ops as nb
from ._numba import tables

NAME = "torch"
COMPILES = _numba.available()  # its gathers and norms are Numba kernels (interim.py)
PRIORITY = 10  # after cpu; with no flags, measured.py gives it the nodes it runs fastest
STARTUP_S = 3.5  # importing PyTorch on a 2-core Zen 3; measured.py times it where it is paid
_threads: list[int] = []  # the thread count asked for before PyTorch was imported
_starting = threading.Lock()


def available() -> bool:
    return importlib.util.find_spec("torch") is not None


def unavailable_reason() -> str:
    return "PyTorch is not installed (pip install palmbrush[train])"


def started() -> bool:
    """Whether PyTorch is imported in this process (by anyone): then this engine costs
    nothing to start."""
    return "torch" in sys.modules


def start() -> None:
    """Import PyTorch and apply the thread count asked for before (kernels call it first)."""
    if _threads or not started():
        import torch

        with _starting:
            if _threads:
                torch.set_num_threads(_threads.pop())


compile_count = _numba.compile_count  # its Numba kernels' compiles (interim.py); importing
# PyTorch is not one: the first run waits for it rather than run johnson on the reference


def set_threads(n: int) -> None:
    """Threads for PyTorch's pool; applied when PyTorch is imported (it takes 3 s), not before."""
    if started():
        import torch

        if torch.get_num_threads() != n:  # called before each run: cheap when nothing changes
            torch.set_num_threads(n)
    else:
        _threads[:] = [n]


PRECISIONS = ("fp32", "bf16")
INPUT = "torch-input"  # the scratch buffer of a convolution's gathered input


@dataclass
class Compute:
    """The precision one configured engine computes in, and its converted weights."""

    precision: str
    weights: dict[int, tuple] = field(default_factory=dict)  # id -> (weakref, converted copy)
    merged: dict[tuple, tuple] = field(default_factory=dict)  # (id W, id B) -> 2x2 phase form


def _remember(cache: dict, key, arrays: list, value: tuple) -> tuple:
    """cache[key] = value until one of `arrays` is freed: weights may belong to one input size's
    plan, and the engine's caches are shared by every Predictor, so none may keep them alive."""
    cache[key] = value
    for array in arrays:
        weakref.finalize(array, cache.pop, key, None)
    return value


def _weight(array, compute: Compute):
    """Weights in the compute precision, 4-D ones channels-last as oneDNN wants them;
    converted once per weight array, and forgotten with it."""
    import torch

    if array is None:
        return None
    cached = compute.weights.get(id(array))
    if cached is None or cached[0]() is not array:
        tensor = _tensor(array).clone()  # a copy: a view would keep the array alive
        if compute.precision == "bf16":
            tensor = tensor.bfloat16()
        if tensor.ndim == 4:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        cached = _remember(compute.weights, id(array), [array], (weakref.ref(array), tensor))
    return cached[1]


def _check_conv(ctx) -> None:
    _checks.conv_2d(ctx)
    pads = ctx.attrs.get("pads") or [0, 0, 0, 0]
    if (pads[0] != pads[2] or pads[1] != pads[3]) and not _numba.available():
        raise Unsupported(f"asymmetric pads {pads} (needs Numba)")


def _conv_input(X, attrs):
    """The convolution's input as a channels-last tensor, upsampled and padded as the node
    says (one pass through engines/_numba's index tables, or PyTorch ops without Numba), and
    the zero padding left for conv2d."""
    import torch
    import torch.nn.functional as F

    up, pre = attrs.get("upsample"), attrs.get("pre_pads")
    pads = attrs.get("pads") or [0, 0, 0, 0]
    if _numba.available():
        if up or (pre and any(pre)) or any(pads):
            X = nb.gather_hwc(X, *tables.input_tables(X.shape, attrs), tag=INPUT)
        return _tensor(nb.nhwc(X).transpose(0, 3, 1, 2)), (0, 0)
    x = _tensor(X)
    if up:
        x = F.interpolate(x, scale_factor=tuple(up), mode="nearest")
    if pre and any(pre):
        top, left, bottom, right = pre
        x = F.pad(x, (left, right, top, bottom), mode=TORCH_PAD[attrs["pad_mode"]])
    return x.contiguous(memory_format=torch.channels_last), (pads[0], pads[1])


def _conv(X, W, B, attrs, compute: Compute):
    """Channels-last float32 output of the convolution (oneDNN), computed in compute.precision."""
    import torch
    import torch.nn.functional as F

    x, padding = _conv_input(X, attrs)
    w, b = _weight(W, compute), _weight(B, compute)
    if w.dtype == torch.bfloat16:
        x = x.to(torch.bfloat16)
    y = F.conv2d(x, w, b, stride=attrs.get("strides") or 1, padding=padding,
                 dilation=attrs.get("dilations") or 1, groups=attrs.get("group", 1))  # fmt: skip
    return y.float().contiguous(memory_format=torch.channels_last)


def _tensor(array):
    import torch

    if array is None:
        return None
    with warnings.catch_warnings():  # weights are read-only views of the model; never written
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(np.asarray(array))  # strides kept: channels-last stays so


TORCH_PAD = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}


def _torch_finish(y, scale, bias, residual, *, norm, epsilon, activation, alpha):
    """Instance norm, activation and residual in PyTorch ops (when Numba is missing)."""
    y = _torch_ops.finish(y, _tensor(scale), _tensor(bias), _tensor(residual), norm=norm,
                          epsilon=epsilon, activation=activation, alpha=alpha)  # fmt: skip
    return y.numpy()


def _fused_conv(X, W, B, scale, bias, residual, *, compute, norm, epsilon, activation, alpha,
                out=None, **attrs):  # fmt: skip
    """Upsample/pad -> conv (oneDNN) -> instance norm -> activation -> + residual; all but the
    convolution in engines/_numba's one-pass kernels when Numba is installed, which write the
    result into the executor's planned buffer `out` (channels-last in its bytes): a stream of
    frames then allocates only PyTorch's own convolution output."""
    start()
    import torch

    with torch.inference_mode():
        if _numba.available() and tables.phased(W, attrs):
            return _upsample_conv(X, W, B, scale, bias, residual, compute, norm=norm,
                                  epsilon=epsilon, activation=activation, alpha=alpha,
                                  mode=attrs["pad_mode"], out=out)  # fmt: skip
        y = _conv(X, W, B, attrs, compute)
        if not _numba.available():
            return _torch_finish(y, scale, bias, residual, norm=norm, epsilon=epsilon,
                                 activation=activation, alpha=alpha)  # fmt: skip
        if norm == "none" and activation == "none" and residual is None:
            return y.numpy()  # nothing to finish: a copy into `out` would be a wasted pass
        into = None if out is None else nb.hwc_target(out, tuple(y.shape))
        return nb.finish_hwc(y.numpy(), scale, bias, residual, norm=norm, epsilon=epsilon,
                             activation=activation, alpha=alpha, into=into)  # fmt: skip


def _upsample_conv(X, W, B, scale, bias, residual, compute, *, norm, epsilon, activation, alpha,
                   mode, out):  # fmt: skip
    """Nearest upsampling by 2 and a 3x3 convolution as one 2x2 convolution of the source with
    the four phase kernels (4 multiply-adds per output instead of 9); the shared Numba kernel
    interleaves the phases while it normalizes."""
    import torch
    import torch.nn.functional as F

    x = _tensor(nb.gather_hwc(X, *tables.source_tables(X.shape, mode), tag=INPUT))
    key = (id(W), id(B))
    found = compute.merged.get(key)
    if found is None or found[0]() is not W or (B is not None and found[1]() is not B):
        tiled = None if B is None else np.tile(np.asarray(B, np.float32), 4)
        refs = (weakref.ref(W), None if B is None else weakref.ref(B))
        arrays = [a for a in (W, B) if a is not None]
        found = _remember(compute.merged, key, arrays, (*refs, tables.merged_2x2(W), tiled))
    w, b = _weight(found[2], compute), _weight(found[3], compute)
    if w.dtype != x.dtype:
        x = x.to(w.dtype)
    z = F.conv2d(x, w, b).float().contiguous(memory_format=torch.channels_last)
    return nb.finish_up2_hwc(z.numpy(), scale, bias, residual, norm=norm, epsilon=epsilon,
                              activation=activation, alpha=alpha, out=out)  # fmt: skip


@declines(tables.check_nearest)
def resize(X, roi=None, scales=None, sizes=None, **attrs):
    start()
    import torch
    import torch.nn.functional as F

    with torch.inference_mode():
        factor = (int(scales[2]), int(scales[3]))
        y = F.interpolate(_tensor(X), scale_factor=factor, mode="nearest")
        return y.contiguous(memory_format=torch.channels_last).numpy()


def _kernels(precision: str) -> dict:
    """The engine's kernels, with convolutions computing in `precision`."""
    compute = Compute(precision)

    @declines(_check_conv)
    def conv(X, W, B=None, out=None, **attrs):
        return _fused_conv(X, W, B, None, None, None, compute=compute, norm="none",
                           epsilon=0.0, activation="none", alpha=0.0, out=out,
                           **attrs)  # fmt: skip

    @declines(_check_conv)
    def fused_conv(X, W, B=None, scale=None, bias=None, residual=None, out=None, **attrs):
        return _fused_conv(X, W, B, scale, bias, residual, compute=compute, out=out, **attrs)

    conv.writes_into = fused_conv.writes_into = True  # out: the executor's planned buffer
    conv.layout = fused_conv.layout = resize.layout = CHANNELS_LAST  # what oneDNN writes

    return {"Conv": conv, "FusedConv": fused_conv, "Resize": resize}


KERNELS = _kernels("fp32")


def configured(precision: str) -> SimpleNamespace:
    """This engine with its convolutions computing in `precision` ("fp32" or "bf16")."""
    if precision not in PRECISIONS:
        raise PalmbrushError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    return SimpleNamespace(NAME=NAME, PRIORITY=PRIORITY, KERNELS=_kernels(precision),
                           available=available, set_threads=set_threads, started=started,
                           start=start, STARTUP_S=STARTUP_S, COMPILES=COMPILES,
                           compile_count=compile_count)  # fmt: skip
