"""`palmbrush lab ab DIR_A DIR_B [DIR_C ...] [--port P] [--db votes.sqlite]`: blind A/B judging.

Pictures with the same file name in the folders are one comparison; the page shows one pair at
a time, sides at random, never the folders' names. Votes go to --db (SQLite, one commit per
vote); running again with the same --db continues. GET /scores has each system's share of wins
with a 95% interval (and a Bradley-Terry ranking with more than two systems). Like `palmbrush
camera`, it listens on 127.0.0.1 only unless --lan, and only its own page may vote.
"""

from __future__ import annotations

import argparse

from ..args import add_listen, int_in


def add_parser(sub) -> None:
    p = sub.add_parser("ab", help="judge systems' pictures side by side, blind, in a browser")
    p.add_argument("folders", nargs="+", metavar="DIR",
                   help="one folder per system (two or more); the folder's name is the system's; "
                        "the same file name in several folders is one comparison")  # fmt: skip
    add_listen(p, 8766)
    p.add_argument(
        "--db",
        default="votes.sqlite",
        help="the votes (SQLite); an existing one is continued (default votes.sqlite)",
    )
    p.add_argument("--repeat-every", type=int_in(0), default=10, metavar="N",
                   help="one pair in N repeats an earlier one, sides swapped, as an attention "
                        "check (default 10; 0: none)")  # fmt: skip
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from palmbrush.atomic import check_target
    from palmbrush.errors import PalmbrushError
    from palmbrush.lab import ab
    from palmbrush.lab.votes import Store
    from palmbrush.media.camera_guard import Policy, check_host, serve

    check_host(args.host, args.lan, "palmbrush lab ab", "can vote")
    systems = ab.find_systems(args.folders)
    db = Path(args.db)
    check_target(db, systems.files(), overwrite=True)  # continued, but never a picture
    store = Store(db)
    policy = Policy(args.host)
    app = ab.make_app(systems, store, policy, args.repeat_every)
    try:
        asyncio.run(serve(app, policy, args.port, lambda bound: _ready(bound, systems, db)))
    except OSError as exc:
        raise PalmbrushError(f"cannot listen on {args.host}:{args.port} ({exc.strerror})") from None
    finally:
        store.close()
    return 0


def _ready(bound: list[tuple], systems, db) -> None:
    from palmbrush.media.camera_guard import address

    print(
        f"palmbrush lab ab: {address(bound)}  ({len(systems.names)} systems, "
        f"{len(systems.comparisons)} comparisons, votes in {db}; Ctrl-C to stop)",
        flush=True,
    )
