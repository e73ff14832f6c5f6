"""The training loop: one readable function, plus the setup it needs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from palmbrush.atomic import Inputs, check_target
from palmbrush.errors import PalmbrushError
from palmbrush.lab.warp import Motion, smooth_flow
from palmbrush.models import StyleNet
from palmbrush.models.weights import load_loss_net

from . import checkpoint
from .data import StepBatches, decodable, find_images, hold_aside, loader, read_rgb, to_tensor
from .export import check_model_target
from .losses import content_loss, gram_matrix, loss_view, stability_loss, style_loss, tv_loss
from .preview import fit, write_preview
from .progress import Progress
from .settings import TrainSettings


def style_targets(loss_net, style_rgb: np.ndarray, s: TrainSettings, device) -> dict:
    """Gram matrices of the painting at style_size, seen the way outputs will be seen."""
    style = to_tensor(fit(style_rgb, s.style_size, 1))[None].to(device)  # (1, 3, h, w)
    with torch.no_grad():
        feats = loss_net(loss_view(style, s.loss_scale, (0, 0)), s.style_layers)
    return {k: gram_matrix(v) for k, v in feats.items()}


def check_outputs(s: TrainSettings, resume: Path | None, overwrite: bool) -> None:
    """The model, checkpoint and preview folder may be written: none is an input (the painting,
    --init, --resume), none exists unless `overwrite` (the checkpoint being resumed may)."""
    inputs = Inputs([s.style, *(p for p in (s.init, resume) if p is not None)])
    check_model_target(s.out, inputs, overwrite)
    resuming_here = resume is not None and resume.exists() and s.checkpoint in Inputs([resume])
    if not resuming_here:
        check_target(s.checkpoint, inputs, overwrite)
    previews = preview_folder(s)
    made = s.preview_every and previews.is_dir() and any(previews.iterdir())
    if made and not (overwrite or resuming_here):
        raise PalmbrushError(f"{previews}: exists (pass --overwrite to replace it)")
    if previews.exists() and not previews.is_dir():
        raise PalmbrushError(f"{previews}: is a file; the previews need a folder there")


def preview_folder(s: TrainSettings) -> Path:
    """Where a run's contact sheets go: OUT-previews/ beside the model."""
    return s.out.with_name(s.out.stem + "-previews")


def prepare(s: TrainSettings, resume: Path | None = None, overwrite: bool = False):
    """Everything a run needs, checked before the first step: a mistake fails in seconds."""
    s.network_config()  # a known preset, and arch fields it has
    if s.device == "cuda" and not torch.cuda.is_available():
        raise PalmbrushError("--device cuda asked for, but PyTorch sees no CUDA device")
    check_outputs(s, resume, overwrite)
    style_rgb = read_rgb(s.style)
    paths, failed = decodable(find_images(s.content, s.exclude))
    if not paths:
        raise PalmbrushError(f"none of the images in {s.content} could be decoded")
    train_paths, preview_paths = hold_aside(paths)
    return style_rgb, train_paths, preview_paths, failed


def step_loss(net, loss_net, batch, targets, s: TrainSettings, step: int):
    """The weighted perceptual loss of one batch, and its parts for the progress line."""
    shift = tuple(np.random.default_rng([s.seed, step, 1]).integers(0, s.loss_scale, 2))
    out = net(batch)  # (B, 3, S, S)
    feats = loss_net(loss_view(out, s.loss_scale, shift), [*s.content_layers, *s.style_layers])
    with torch.no_grad():
        wanted = loss_net(loss_view(batch, s.loss_scale, shift), s.content_layers)
    c, st, tv = content_loss(feats, wanted), style_loss(feats, targets), tv_loss(out)
    loss = s.content_weight * c + s.style_weight * st + s.tv_weight * tv
    parts = {"content": c.item(), "style": st.item(), "tv": tv.item()}
    if s.temporal_weight:
        flow, noise = synthetic_motion(batch.shape, np.random.default_rng([s.seed, step, 2]))
        temporal = stability_loss(net, batch, out, flow, noise)
        loss = loss + s.temporal_weight * temporal
        parts["temporal"] = temporal.item()
    return loss, parts


def learning_rate(s: TrainSettings, step: int) -> float:
    """Cosine decay from s.lr at step 1 to s.lr * s.lr_floor at s.steps: a pure function of
    the step, so a resumed run follows the same schedule."""
    progress = min(1.0, (step - 1) / max(1, s.steps - 1))
    return s.lr * (s.lr_floor + (1 - s.lr_floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def synthetic_motion(shape: tuple, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A random smooth flow per image and Gaussian noise: the lab's stability perturbation."""
    b, c, h, w = shape
    motion = Motion()
    flows = np.stack([smooth_flow(rng, h, w, motion) for _ in range(b)])  # (B, H, W, 2)
    noise = rng.normal(0.0, motion.noise, (b, c, h, w)).astype(np.float32)
    return torch.from_numpy(flows), torch.from_numpy(noise)


def _load_weights(path: Path, s: TrainSettings, net, keys=checkpoint.WEIGHTS) -> dict:
    """A checkpoint's (or, for --init, an exported model's) weights into `net` (the same
    preset and config, or a clear error)."""
    model = path.suffix.lower() == ".onnx" and keys == checkpoint.WEIGHTS
    state = checkpoint.from_model(path) if model else checkpoint.load(path, keys)
    checkpoint.check_preset(state, s.preset, net.cfg.to_dict(), path)
    checkpoint.load_weights(net, state, path)
    return state


def _resume(path: Path, s: TrainSettings, net, optimizer, log) -> int:
    state = _load_weights(path, s, net, checkpoint.RESUMABLE)
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"])
    log(f"resuming {path} at step {state['step']}")
    return state["step"]


def loss_network(s: TrainSettings, device):
    """The loss network of `s`, with a clear error for a tap it does not have."""
    loss_net = load_loss_net(s.loss_net).to(device)
    unknown = [t for t in [*s.content_layers, *s.style_layers] if t not in loss_net.taps]
    if unknown:
        raise PalmbrushError(f"unknown tap {unknown[0]!r} (taps: {', '.join(loss_net.taps)})")
    return loss_net


def train(s: TrainSettings, resume: Path | None = None, log=print, overwrite: bool = False
          ) -> tuple[StyleNet, list[float]]:  # fmt: skip
    """Train a style network, checkpointing as it goes; returns it and the loss of every step.
    Existing outputs are replaced only with `overwrite` (see check_outputs)."""
    s = s.resolved()
    style_rgb, paths, previews, failed = prepare(s, resume, overwrite)
    if failed:
        log(f"skipped {failed} content images that do not decode")
    torch.manual_seed(s.seed)
    device = torch.device(s.device)
    net = StyleNet(s.network_config()).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), lr=s.lr)
    start = _resume(resume, s, net, optimizer, log) if resume is not None else 0
    if resume is None and s.init is not None:  # warm start: weights only, fresh optimizer
        _load_weights(s.init, s, net)
        log(f"starting from the weights in {s.init}")
    loss_net = loss_network(s, device)
    targets = style_targets(loss_net, style_rgb, s, device)
    batches = StepBatches(paths, s.size, s.batch, s.seed)
    progress = Progress(start, s.steps, log)

    def save(step: int) -> None:
        checkpoint.save(s.checkpoint, model=net.state_dict(), optimizer=optimizer.state_dict(),
                        step=step, preset=s.preset, config=net.cfg.to_dict(),
                        settings=s.to_dict(), rng=torch.get_rng_state())  # fmt: skip

    history: list[float] = []
    net.train()
    for step, batch in enumerate(loader(batches, start, s.steps, s.workers), start + 1):
        batch = batch.to(device).contiguous(memory_format=torch.channels_last)  # (B, 3, S, S)
        loss, parts = step_loss(net, loss_net, batch, targets, s, step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(s, step)
        optimizer.step()
        history.append(loss.item())
        progress.update(step, loss=history[-1], **parts)
        if step % s.checkpoint_every == 0 or step == s.steps:
            save(step)
        if s.preview_every and (step % s.preview_every == 0 or step == s.steps):
            sheet = preview_folder(s) / f"{step:06d}.png"
            write_preview(net, previews, style_rgb, sheet)
    if start >= s.steps:  # resumed at or past the end: nothing trained, but the named
        save(start)  # checkpoint holds these weights (it may not be the one resumed)
    progress.done()
    return net.eval(), history
