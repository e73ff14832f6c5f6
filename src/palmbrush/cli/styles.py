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
    rivals = sorted({r for e in measured["styles"].values() for r in e.get("ab", {})})
    rows = [[s.name + (" (default)" if s.name == DEFAULT else ""), s.painting, s.painter, s.year,
             f"{s.model.stat().st_size / 1024:.0f} KB",
             *_numbers(measured["styles"].get(s.name), rivals)] for s in styles]  # fmt: skip
    headers = ["style", "painting", "painter", "year", "model", "flicker"]
    print(table(rows, headers + [f"A/B vs {r}" for r in rivals]))
    print("\nUse one with --style NAME (stylize, camera, sheet); licence: public-domain "
          "paintings, CC0 model weights.\nflicker: warping error over the input's own on the "
          "shared clips (1 = as steady as the video); A/B: blind votes won-lost-tied "
          f"(docs/styles.md); measured on {measured['machine'] or '-'}.")  # fmt: skip
    return 0


def _numbers(entry: dict | None, rivals: list[str]) -> list[str]:
    """The flicker and one won-lost-tied cell per rival ("-" where not measured or judged)."""
    if not entry:
        return ["-"] * (1 + len(rivals))
    votes = entry.get("ab", {})
    cells = ["{won}-{lost}-{tied}".format(**votes[r]) if r in votes else "-" for r in rivals]
    return [f"{entry['flicker_mean']:.2f}x", *cells]
