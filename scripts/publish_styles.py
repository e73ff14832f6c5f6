"""Turn the styles' measurements and blind A/B votes into src/palmbrush/styles/measured.json
(what `palmbrush styles --json` reports) and the tables of docs/styles.md.

python scripts/publish_styles.py --measured styles-work/measured.jsonl --system v1 \
    --other candidate --ab candidate=ab/v1.sqlite --ab stl=ab/stl.sqlite \
    --machine "AMD EPYC (Zen 3), 2 cores"

--system names the shipped models' rows in the measurements (scripts/measure_styles.py),
--other the rows they are compared with (kept beside them); each --ab is one judging
(`palmbrush lab ab` with the shipped models' folder named like --system and one other): its
votes per style (attention-check repeats left out). Each style's entry records its model's
size and SHA-256, so a test can tell numbers that no longer belong to the shipped file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
from collections import defaultdict
from pathlib import Path

from palmbrush.styles import HERE, catalogue

OUT = HERE / "measured.json"
KEEP = ("flicker_mean", "flicker", "style_error", "content_error", "colourfulness",
        "painting_colourfulness", "stability_ratio",
        "reference_ratio_1280x720", "ort_ratio_1280x720", "fps_1280x720", "fps_640x480",
        "bytes", "parameters")  # fmt: skip


def rows(path: Path) -> dict[tuple[str, str], dict]:
    out = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        out[row["system"], row["style"]] = row  # the last measurement of a model wins
    return out


def tallies(db: Path, ours: str) -> dict[str, dict[str, int]]:
    """Per style: the votes for ours ("won"), for the other ("lost") and ties; one vote per
    picture, its first (attention-check repeats, and the page's second round once every pair
    has been shown, judge the judge, not the styles). The page's own /scores counts every
    fresh vote, as it should for several judges; these judgings had one."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: {"won": 0, "lost": 0, "tied": 0})
    with sqlite3.connect(db) as connection:
        votes = connection.execute(
            "SELECT item, left, right, choice FROM votes WHERE repeat_of IS NULL ORDER BY id"
        ).fetchall()
    firsts = {}
    for vote in votes:
        firsts.setdefault((vote[0], frozenset(vote[1:3])), vote)
    for item, left, right, choice in firsts.values():
        if ours not in (left, right):
            raise SystemExit(f"{db}: a vote between {left} and {right}, not {ours}")
        style = item.split("--", 1)[0]
        winner = {"left": left, "right": right}.get(choice)
        out[style]["tied" if winner is None else "won" if winner == ours else "lost"] += 1
    return dict(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measured", type=Path, required=True)
    parser.add_argument("--system", default="v1")
    parser.add_argument("--other", help="the system the tables compare with")
    parser.add_argument("--ab", action="append", default=[], metavar="OTHER=DB")
    parser.add_argument("--machine", required=True, help="the CPU the numbers were taken on")
    args = parser.parse_args()
    measured = rows(args.measured)
    judged = {other: tallies(Path(db), args.system)
              for other, db in (a.partition("=")[::2] for a in args.ab)}  # fmt: skip
    styles = {}
    for name, style in catalogue().items():
        row = measured.get((args.system, name))
        if row is None:
            raise SystemExit(f"no measurement of {name} as {args.system} in {args.measured}")
        data = style.model.read_bytes()
        entry = {k: row[k] for k in KEEP}
        entry["sha256"] = hashlib.sha256(data).hexdigest()
        if row.get("sha256") != entry["sha256"]:
            raise SystemExit(f"{name}: the measured model is not the shipped one (SHA-256)")
        compared = measured.get((args.other, name))
        if compared:
            kept = ("flicker_mean", "flicker", "style_error", "content_error", "colourfulness")
            entry["other"] = {"system": args.other} | {k: compared[k] for k in kept}
        entry["ab"] = {other: votes[name] for other, votes in judged.items() if name in votes}
        styles[name] = entry
    OUT.write_text(json.dumps({"machine": args.machine, "styles": styles}, indent=1) + "\n")
    print(f"wrote {OUT}")
    print_tables(styles, judged)


def print_tables(styles: dict, judged: dict) -> None:
    clips = list(next(iter(styles.values()))["flicker"])
    print("\n| style | " + " | ".join(clips) + " | mean | other's | style error (other's) | "
          "content error (other's) | colourfulness (other's; painting) |")  # fmt: skip
    print("|---" * (len(clips) + 6) + "|")
    for name, e in styles.items():
        before = e.get("other")
        cells = [f"{e['flicker'][c]:.2f}" + (f" ({before['flicker'][c]:.2f})" if before else "")
                 for c in clips]  # fmt: skip
        old = f"{before['flicker_mean']:.2f}" if before else "-"
        error, content, colour = (
            f"{e[k]:{f}}" + (f" ({before[k]:{f}})" if before and k in before else "")
            for k, f in (("style_error", ".3f"), ("content_error", ".3f"), ("colourfulness", ".1f"))
        )
        mean, painted = f"{e['flicker_mean']:.2f}", f"{e['painting_colourfulness']:.1f}"
        print(f"| {name} | " + " | ".join(cells) + f" | {mean} | {old} | {error} | {content} | "
              f"{colour}; {painted} |")  # fmt: skip
    print(
        "\n| style | KB | x femto 1280x720 | x onnxruntime | fps 1280x720 | "
        + " | ".join(f"A/B vs {o} (won-lost-tied)" for o in judged)
        + " |"
    )
    print("|---" * (5 + len(judged)) + "|")
    for name, e in styles.items():
        ab = [("{won}-{lost}-{tied}".format(**e["ab"][o]) if o in e["ab"] else "-") for o in judged]
        print(
            f"| {name} | {e['bytes'] / 1024:.0f} | {e['reference_ratio_1280x720']:.2f} | "
            f"{e['ort_ratio_1280x720']:.2f} | {e['fps_1280x720']:.1f} | " + " | ".join(ab) + " |"
        )
    print("\n| style | painting | flicker (x floor) | fps 1280x720 |\n|---|---|---|---|")
    for name, style in catalogue().items():
        e = styles[name]
        print(
            f"| `{name}` | {style.painting}, {style.painter} ({style.year}) | "
            f"{e['flicker_mean']:.2f} | {e['fps_1280x720']:.0f} |"
        )
    for other in judged:
        total = {k: sum(e["ab"].get(other, {}).get(k, 0) for e in styles.values())
                 for k in ("won", "lost", "tied")}  # fmt: skip
        print(
            f"\nA/B against {other}: won {total['won']}, lost {total['lost']}, tied {total['tied']}"
        )


if __name__ == "__main__":
    main()
