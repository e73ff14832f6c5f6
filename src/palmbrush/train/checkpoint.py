"""Checkpoints: weights, optimizer state, step, config, settings and RNG state; atomic writes."""

from __future__ import annotations

from pathlib import Path

import torch

from palmbrush.atomic import atomic_path
from palmbrush.runtime.errors import PalmbrushError

FORMAT = 1


def save(path: Path, **state) -> None:
    """Write a temporary file beside `path`, then rename: a killed run never leaves half a file."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)


def load(path: Path) -> dict:
    if not path.is_file():
        raise PalmbrushError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # never runs pickled code
    except Exception as exc:
        raise PalmbrushError(f"cannot read checkpoint {path}: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise PalmbrushError(f"{path} is not a palmbrush checkpoint")
    return state


def check_preset(state: dict, preset: str, config: dict, path: Path) -> None:
    """A checkpoint resumes only into the network it was trained as. Its config is read through
    StyleNetConfig, so a field added since it was written takes its default."""
    from palmbrush.models import StyleNetConfig

    saved = StyleNetConfig.from_dict(state["config"]).to_dict()
    if state["preset"] != preset or saved != StyleNetConfig.from_dict(config).to_dict():
        raise PalmbrushError(
            f"checkpoint {path} was trained with preset '{state['preset']}' "
            f"({state['config']['widths']}), not '{preset}' ({config['widths']})"
        )
