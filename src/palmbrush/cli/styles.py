"""`palmbrush styles`: the built-in styles, their paintings and model files."""

from __future__ import annotations

import argparse
import json


def add_parser(sub) -> None:
    p = sub.add_parser("styles", help="list the built-in styles (use a name with --style)")
    p.add_argument("--json", action="store_true", help="print the catalogue as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from palmbrush.styles import DEFAULT, catalogue

    from .common import table

    styles = catalogue().values()
    if args.json:
        records = [
            {
                **vars(s),
                "model": str(s.model),
                "thumbnail": str(s.thumbnail),
                "model_kb": round(s.model.stat().st_size / 1024, 1),
            }
            for s in styles
        ]
        print(json.dumps(records, indent=1))
        return 0
    rows = [[s.name + (" (default)" if s.name == DEFAULT else ""), s.painting, s.painter, s.year,
             f"{s.model.stat().st_size / 1024:.0f} KB"] for s in styles]  # fmt: skip
    print(table(rows, ["style", "painting", "painter", "year", "model"]))
    print("\nUse one with --style NAME (stylize, camera, sheet); licence: public-domain "
          "paintings, CC0 model weights.")  # fmt: skip
    return 0
