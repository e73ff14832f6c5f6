"""`palmbrush lab report --study NAME --storage URL -o DIR`: a sweep's page, DIR/index.html.

The trials table by Pareto rank, speed-quality plots with the front, and each complete trial's
sheet on the same photos (default: the sweep's held-aside ones; --photos for others, e.g.
pictures that may be published).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from palmbrush.cli.args import POSITIVE
from palmbrush.cli.lab.options import add_engine


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="a sweep's page: trials, Pareto plots, sheets")
    p.add_argument("--study", required=True, help="the study's name")
    p.add_argument(
        "--storage", required=True, help="journal:FILE, sqlite:///FILE or postgresql://..."
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="folder of the page")
    p.add_argument("--photos", nargs="+", type=Path, metavar="DIR|FILE",
                   help="the sheets' photos: files, folders or videos (a few frames each); "
                        "default: the sweep's held-aside photos")  # fmt: skip
    p.add_argument("--count", type=POSITIVE, default=4, help="at most this many photos")
    p.add_argument("--out", type=Path, help="the sweep's --out as this machine sees it")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report")
    add_engine(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from palmbrush.cli.lab.worker import quiet
    from palmbrush.errors import PalmbrushError
    from palmbrush.lab import report, sweep
    from palmbrush.lab.storage import open_storage

    quiet()
    if args.output.exists() and not args.output.is_dir():
        raise PalmbrushError(f"{args.output}: is a file; the report needs a folder")
    storage = open_storage(args.storage, create=False)
    study, fixed = sweep.join_study(args.study, storage, args.out)
    sources = args.photos or [Path(p) for p in fixed.photos]
    photos = report.read_photos(sources, args.count)
    engine = {"engines": args.engine, "threads": args.threads}
    page = report.write(study, fixed, args.output, photos, inputs=sources,
                        overwrite=args.overwrite, **engine)  # fmt: skip
    print(f"wrote {page}")
    return 0
