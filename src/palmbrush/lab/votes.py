"""The votes of a blind A/B judging, in SQLite: one row per vote, committed as it arrives.

WAL journal and synchronous=FULL: a vote the server has answered is on disk, so killing the
server (SIGKILL included) loses none. Opening the same file again continues the judging.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import PalmbrushError

FORMAT = "palmbrush-ab-votes-1"  # meta.format: a file this module made
CHOICES = ("left", "right", "tie")
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS votes (
    id INTEGER PRIMARY KEY,
    item TEXT NOT NULL,                      -- the pictures' file name
    left TEXT NOT NULL,                      -- the system (folder name) shown on the left
    right TEXT NOT NULL,                     -- ... and on the right
    choice TEXT NOT NULL CHECK (choice IN ('left', 'right', 'tie')),
    repeat_of INTEGER REFERENCES votes(id),  -- an attention check: the vote it repeats
    at REAL NOT NULL                         -- when (seconds since 1970)
);
"""


@dataclass(frozen=True)
class Vote:
    item: str
    left: str
    right: str
    choice: str  # one of CHOICES
    repeat_of: int | None = None  # the id of the vote this attention check repeats
    id: int | None = None  # set once stored

    @property
    def winner(self) -> str | None:
        """The system chosen; None for a tie."""
        return {"left": self.left, "right": self.right}.get(self.choice)


class Store:
    """One votes file, open for the server's lifetime."""

    def __init__(self, path: Path):
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, isolation_level=None)  # autocommit: one per vote
            self._prepare()
        except sqlite3.DatabaseError as exc:
            problem = "not a database" in str(exc)
            what = "is not an SQLite database" if problem else f"cannot be opened ({exc})"
            raise PalmbrushError(f"{path}: {what}") from None
        except OSError as exc:
            raise PalmbrushError(f"{path}: cannot be opened ({exc.strerror})") from None

    def _prepare(self) -> None:
        tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master")}
        if tables and _format(self.db) != FORMAT:
            raise PalmbrushError(f"{self.path}: is an SQLite database of something else, not "
                                 "votes of palmbrush lab ab; give another --db")  # fmt: skip
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self.db.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (FORMAT,))

    def add(self, vote: Vote) -> Vote:
        """Store `vote` (committed before this returns); the vote with its id."""
        if vote.choice not in CHOICES:
            raise ValueError(f"choice {vote.choice!r} is not one of {CHOICES}")
        row = (vote.item, vote.left, vote.right, vote.choice, vote.repeat_of, time.time())
        cursor = self.db.execute(
            "INSERT INTO votes (item, left, right, choice, repeat_of, at) VALUES (?,?,?,?,?,?)",
            row,
        )
        return Vote(vote.item, vote.left, vote.right, vote.choice, vote.repeat_of, cursor.lastrowid)

    def votes(self) -> list[Vote]:
        """Every vote, oldest first."""
        rows = self.db.execute("SELECT item, left, right, choice, repeat_of, id FROM votes "
                               "ORDER BY id")  # fmt: skip
        return [Vote(*row) for row in rows]

    def close(self) -> None:
        self.db.close()


def _format(db: sqlite3.Connection) -> str | None:
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
    except sqlite3.OperationalError:  # no meta table
        return None
    return row[0] if row else None
