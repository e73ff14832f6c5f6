"""`palmbrush lab COMMAND`: measure models, sweep architectures and weights, judge by blind A/B.

One module per lab command (`add_parser`, `run`), as for the root; heavy imports inside run().
"""

from __future__ import annotations

import importlib

COMMANDS = ["metrics", "flicker", "render", "sweep", "worker", "report", "ab"]


def add_parser(sub) -> None:
    p = sub.add_parser("lab", help="measure, sweep and compare style models (palmbrush lab -h)")
    lab = p.add_subparsers(dest="lab_command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"palmbrush.cli.lab.{name}").add_parser(lab)
