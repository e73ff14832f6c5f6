"""`palmbrush models`: the style-network presets, their size and cost per 1280x720 frame."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list the style-network presets (needs palmbrush[train])")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from palmbrush.models import PRESETS, StyleNet, macs, parameter_count

    from .common import table

    johnson = parameter_count(StyleNet(PRESETS["johnson"]))
    rows = []
    for name, cfg in PRESETS.items():
        params = parameter_count(StyleNet(cfg))
        rows.append([
            name, f"{params:,}", f"{params / johnson:.4f}", f"{macs(cfg) / 1e9:.2f}",
            "x".join(map(str, cfg.widths)), str(cfg.blocks), f"/{cfg.factor} {cfg.down}",
            cfg.up + (" (head)" if cfg.first_stride > 1 and cfg.last_up == "head" else ""),
        ])  # fmt: skip
    header = ["preset", "parameters", "of johnson", "GMACs @1280x720", "widths", "blocks",
              "down", "up"]  # fmt: skip
    print(table(rows, header))
    return 0
