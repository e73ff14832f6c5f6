"""Checkpoints: weights, optimizer state, step, config, settings and RNG state; atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from palmbrush.atomic import atomic_path
from palmbrush.errors import PalmbrushError

FORMAT = 1


def save(path: Path, **state) -> None:
    """Write a temporary file beside `path`, then rename: a killed run never leaves half a file."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)


WEIGHTS = ("model", "config", "preset", "step")  # what export and --init read
RESUMABLE = (*WEIGHTS, "optimizer", "rng")  # and what --resume reads too


def load(path: Path, keys: tuple[str, ...] = WEIGHTS) -> dict:
    """A checkpoint's state, with at least `keys`; anything else is one clear line."""
    if not path.is_file():
        raise PalmbrushError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # never runs pickled code
    except Exception as exc:
        raise PalmbrushError(
            f"{path} is not a palmbrush checkpoint (PyTorch cannot read it: {_reason(exc)})"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise PalmbrushError(f"{path} is not a palmbrush checkpoint")
    missing = [k for k in keys if k not in state]
    if missing or not isinstance(state.get("config"), dict):
        raise PalmbrushError(f"{path}: checkpoint lacks {', '.join(missing) or 'a config'}")
    return state


def from_model(path: Path) -> dict:
    """The weights of an exported style model (.onnx, palmbrush's export: its metadata names
    the preset and architecture, its initializers are the network's under `net.`) as a
    checkpoint's state, so --init can start from a shipped style. The runtime's loader reads
    it: sizes checked, external data only from the model's folder, one line for what is wrong."""
    from palmbrush.runtime.onnx_io import load_model

    graph = load_model(path)
    try:
        config, preset = json.loads(graph.metadata["architecture"]), graph.metadata["preset"]
    except (KeyError, ValueError):
        raise PalmbrushError(
            f"{path}: not a style model palmbrush exported (no architecture in its metadata)"
        ) from None
    weights = {name[4:]: torch.from_numpy(value.const.copy())
               for name, value in graph.values.items()
               if name.startswith("net.") and value.const is not None}  # fmt: skip
    if not weights or not isinstance(config, dict):
        raise PalmbrushError(f"{path}: has no network weights (no 'net.' initializers)")
    return {"format": FORMAT, "model": weights, "config": config, "preset": preset, "step": 0}


def load_weights(net, state: dict, path: Path) -> None:
    """The checkpoint's weights into `net`, or one line saying why they do not fit."""
    try:
        net.load_state_dict(state["model"])
    except (RuntimeError, TypeError, KeyError, AttributeError) as exc:
        raise PalmbrushError(f"{path}: weights do not fit the network ({_reason(exc)})") from None


def config(state: dict, path: Path):
    """The checkpoint's StyleNetConfig (a field added since it was written takes its default)."""
    from palmbrush.models import StyleNetConfig

    try:
        return StyleNetConfig.from_dict(state["config"])
    except (TypeError, ValueError, KeyError) as exc:
        raise PalmbrushError(f"{path}: checkpoint has a broken network config ({exc})") from None


def network(state: dict, path: Path):
    """The StyleNet a checkpoint describes, with its weights."""
    from palmbrush.models import StyleNet

    try:
        net = StyleNet(config(state, path))
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        raise PalmbrushError(f"{path}: checkpoint has a broken network config ({exc})") from None
    load_weights(net, state, path)
    return net


def check_preset(state: dict, preset: str, wanted: dict, path: Path) -> None:
    """A checkpoint resumes only into the network it was trained as."""
    from palmbrush.models import StyleNetConfig

    saved = config(state, path)
    if state["preset"] != preset or saved.to_dict() != StyleNetConfig.from_dict(wanted).to_dict():
        raise PalmbrushError(
            f"{path} was trained with preset '{state['preset']}' "
            f"({saved.widths}), not '{preset}' ({wanted['widths']})"
        )


def _reason(exc: Exception, limit: int = 160) -> str:
    """An exception's message on one line, cut to `limit` characters."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
