"""PyTorch models: the style-network family and the loss networks (needs palmbrush[train])."""

from .stylenet import PRESETS, StyleNet, StyleNetConfig, macs, parameter_count

__all__ = ["PRESETS", "StyleNet", "StyleNetConfig", "macs", "parameter_count"]
