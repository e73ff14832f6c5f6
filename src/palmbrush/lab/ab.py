"""Blind A/B judging: folders of pictures, one per system, judged two at a time in a browser.

Pictures with the same file name in two folders are one comparison (the same photo or frame by
two systems); a system is named by its folder. The page sees neither names nor paths: a pair is
a random id and two random image tokens, valid until it is voted on or MAX_PENDING newer pairs
push it out. The next pair is the comparison with the fewest votes (pairs on screen counted),
then the two systems compared least, then chance; sides are drawn at random. Every
`repeat_every`-th pair, once REPEAT_AFTER votes exist, repeats an earlier vote with the sides
swapped: an attention check, stored flagged as a repeat and left out of the scores (it feeds
only the consistency share). Scores count the votes on comparisons the given folders still have.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
from collections import Counter, OrderedDict
from dataclasses import asdict, dataclass, field
from importlib import resources
from itertools import combinations
from pathlib import Path

from ..errors import PalmbrushError
from ..media import require
from ..media.camera_guard import Policy, guard, security_headers
from . import scores
from .votes import CHOICES, Store, Vote

PICTURES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
            ".webp": "image/webp", ".gif": "image/gif"}  # fmt: skip
MAX_BODY = 1024  # bytes in a request body: a vote is {"id": ..., "choice": ...}
MAX_PENDING = 256  # pairs handed out and not voted on yet; older ones expire
REPEAT_EVERY = 10  # one pair in this many is an attention check (0: none)
REPEAT_AFTER = 5  # ... once this many votes are in
SHARE = {"left": 1.0, "right": 0.0, "tie": 0.5}  # the left system's share of a vote


@dataclass(frozen=True)
class Comparison:
    item: str  # the pictures' file name
    a: str  # the two systems, in the order their folders were given
    b: str


@dataclass
class Systems:
    names: list[str]  # folder names, in the order given
    pictures: dict[str, dict[str, Path]]  # system -> file name -> the file (resolved)
    comparisons: list[Comparison]

    def files(self) -> list[Path]:
        return [path for pictures in self.pictures.values() for path in pictures.values()]


def find_systems(folders: list[str | Path]) -> Systems:
    """Folders -> systems and comparisons; a PalmbrushError line for any folder mistake."""
    if len(folders) < 2:
        raise PalmbrushError(f"give at least two folders to compare (got {len(folders)})")
    paths = [Path(folder) for folder in folders]
    for path in paths:
        if not path.is_dir():
            raise PalmbrushError(f"{path}: {'is not a' if path.exists() else 'no such'} folder")
    names = [path.resolve().name for path in paths]
    for (i, first), (j, second) in combinations(enumerate(names), 2):
        if first == second:
            raise PalmbrushError(
                f"{paths[i]} and {paths[j]} are both named '{first}': a "
                "system is named by its folder, so the names must be distinct"
            )
    pictures = {name: _pictures(path) for name, path in zip(names, paths)}
    counts = Counter(item for found in pictures.values() for item in found)
    common = sorted(item for item, n in counts.items() if n >= 2)
    if not common:
        kinds = " ".join(PICTURES)
        raise PalmbrushError(f"no picture file name ({kinds}) is in two of the folders; "
                             "pictures are paired by file name")  # fmt: skip
    comparisons = []
    for item in common:
        having = [name for name in names if item in pictures[name]]
        comparisons += [Comparison(item, a, b) for a, b in combinations(having, 2)]
    return Systems(names, pictures, comparisons)


def _pictures(folder: Path) -> dict[str, Path]:
    """The folder's pictures by file name; links that lead out of the folder are left out."""
    root = folder.resolve()
    found = {}
    for entry in sorted(folder.iterdir()):
        target = entry.resolve()
        if (entry.suffix.lower() in PICTURES and not entry.name.startswith(".")
                and target.is_file() and target.is_relative_to(root)):  # fmt: skip
            found[entry.name] = target
    return found


@dataclass
class Shown:
    """A pair on someone's screen, waiting for a vote."""

    comparison: Comparison
    left: str
    right: str
    original: Vote | None = None  # an attention check: the vote it repeats
    tokens: tuple[str, str] = field(default_factory=lambda: (_token(), _token()))


def _token() -> str:
    return secrets.token_urlsafe(16)


class Judging:
    """The state of a judging: what was shown and voted, which pair comes next."""

    def __init__(self, systems: Systems, store: Store, repeat_every: int = REPEAT_EVERY,
                 rng: random.Random | None = None):  # fmt: skip
        self.systems, self.store, self.repeat_every = systems, store, repeat_every
        self.rng = rng or random.Random()
        self.order = {name: i for i, name in enumerate(systems.names)}
        self.known = set(systems.comparisons)
        self.shown: Counter[Comparison] = Counter()  # votes and pairs on screen
        self.pair_shown: Counter[tuple[str, str]] = Counter()  # the same, per two systems
        self.repeatable: dict[int, Vote] = {}  # votes no attention check has repeated yet
        self.pending: OrderedDict[str, Shown] = OrderedDict()  # pair id -> pair, oldest first
        self.images: dict[str, Path] = {}  # image token -> file
        self.served = self.recorded = 0
        for vote in store.votes():
            self._tally(vote)
            if vote.repeat_of is None and (comparison := self.comparison(vote)):
                self._count(comparison, 1)

    def comparison(self, vote: Vote) -> Comparison | None:
        """The vote's comparison, if the folders still have it."""
        a, b = sorted((vote.left, vote.right), key=lambda name: self.order.get(name, -1))
        comparison = Comparison(vote.item, a, b)
        return comparison if comparison in self.known else None

    def _tally(self, vote: Vote) -> None:
        self.recorded += 1
        if vote.repeat_of is not None:
            self.repeatable.pop(vote.repeat_of, None)
        elif self.comparison(vote):
            self.repeatable[vote.id] = vote

    def _count(self, comparison: Comparison, delta: int) -> None:
        self.shown[comparison] += delta
        self.pair_shown[comparison.a, comparison.b] += delta

    def next_pair(self) -> tuple[str, Shown]:
        """A new pair id and the pair it shows."""
        self.served += 1
        due = self.repeat_every and self.served % self.repeat_every == 0
        shown = self._repeat() if due and self.recorded >= REPEAT_AFTER else None
        shown = shown or self._fresh()
        pair_id = _token()
        self.pending[pair_id] = shown
        for token, system in zip(shown.tokens, (shown.left, shown.right)):
            self.images[token] = self.systems.pictures[system][shown.comparison.item]
        while len(self.pending) > MAX_PENDING:
            self._forget(self.pending.popitem(last=False)[1])
        return pair_id, shown

    def _fresh(self) -> Shown:
        def need(c: Comparison) -> tuple:
            return self.shown[c], self.pair_shown[c.a, c.b], self.rng.random()

        comparison = min(self.systems.comparisons, key=need)
        self._count(comparison, 1)
        sides = [comparison.a, comparison.b]
        self.rng.shuffle(sides)
        return Shown(comparison, *sides)

    def _repeat(self) -> Shown | None:
        if not self.repeatable:
            return None
        original = self.repeatable.pop(self.rng.choice(list(self.repeatable)))
        return Shown(self.comparison(original), original.right, original.left, original)

    def _forget(self, shown: Shown) -> None:
        """A pair leaves the screen unvoted: it no longer counts as shown."""
        for token in shown.tokens:
            self.images.pop(token, None)
        if shown.original is None:
            self._count(shown.comparison, -1)
        else:
            self.repeatable[shown.original.id] = shown.original

    def vote(self, pair_id: str, choice: str) -> Vote | None:
        """Store a vote on a pending pair (committed); None for an unknown or expired id."""
        shown = self.pending.pop(pair_id, None)
        if shown is None:
            return None
        repeat_of = shown.original.id if shown.original else None
        vote = Vote(shown.comparison.item, shown.left, shown.right, choice, repeat_of)
        try:
            vote = self.store.add(vote)
        except Exception:
            self.pending[pair_id] = shown  # not recorded: the page may try again
            raise
        for token in shown.tokens:
            self.images.pop(token, None)
        self._tally(vote)
        return vote

    def scores(self) -> dict:
        """Scores, Bradley-Terry ranking (more than two systems) and attention checks."""
        votes = self.store.votes()
        fresh = [v for v in votes if v.repeat_of is None and self.comparison(v)]
        outcomes = [scores.Outcome(v.left, v.right, SHARE[v.choice]) for v in fresh]
        table = scores.table(outcomes, self.systems.names)
        by_id = {v.id: v for v in votes}
        checks = [(by_id[v.repeat_of].winner, v.winner) for v in votes
                  if v.repeat_of in by_id and self.comparison(v)]  # fmt: skip
        return {"systems": [asdict(row) for row in table], "votes": len(fresh),
                "ranking": "bradley-terry" if len(table) > 2 else "score",
                "repeats": scores.consistency(checks)}  # fmt: skip


class ABServer:
    """The HTTP side: the page, pairs, votes, scores and the pictures of pending pairs."""

    def __init__(self, judging: Judging, policy: Policy):
        self.judging, self.policy = judging, policy
        self.page = resources.files("palmbrush.lab").joinpath("web/ab.html").read_text()
        self.web = require("aiohttp.web", "aiohttp")

    def app(self):
        web = self.web
        headers = {**security_headers(self.page), "Cache-Control": "no-store"}

        async def add_headers(request, response):
            response.headers.update(headers)

        app = web.Application(client_max_size=MAX_BODY, middlewares=[guard(self.policy)])
        app.add_routes([web.get("/", self.index), web.get("/pair", self.pair),
                        web.post("/vote", self.vote), web.get("/scores", self.scores),
                        web.get("/image/{token}", self.image)])  # fmt: skip
        app.on_response_prepare.append(add_headers)
        return app

    async def index(self, request):
        return self.web.Response(text=self.page, content_type="text/html")

    async def pair(self, request):
        pair_id, shown = self.judging.next_pair()
        left, right = (f"/image/{token}" for token in shown.tokens)
        return self.web.json_response({"id": pair_id, "left": left, "right": right,
                                       "votes": self.judging.recorded,
                                       "comparisons": len(self.judging.known)})  # fmt: skip

    async def vote(self, request):
        if request.content_type != "application/json":
            return self._error(415, "a vote is JSON (Content-Type: application/json)")
        request_vote = parse_vote(await request.read())  # over MAX_BODY: aiohttp answers 413
        if isinstance(request_vote, str):
            return self._error(400, request_vote)
        vote = self.judging.vote(*request_vote)
        if vote is None:
            return self._error(404, "unknown or expired pair id; ask /pair for another")
        return self.web.json_response({"votes": self.judging.recorded})

    async def scores(self, request):
        return self.web.json_response(self.judging.scores())

    async def image(self, request):
        path = self.judging.images.get(request.match_info["token"])
        if path is None:
            return self._error(404, "unknown or expired picture")
        body = await asyncio.to_thread(path.read_bytes)
        return self.web.Response(body=body, content_type=PICTURES[path.suffix.lower()])

    def _error(self, status: int, message: str):
        return self.web.json_response({"error": message}, status=status)


def parse_vote(body: bytes) -> tuple[str, str] | str:
    """A vote's body -> (pair id, choice), or an error message (the size is already bounded)."""
    hint = 'a vote is {"id": PAIR_ID, "choice": "left" | "right" | "tie"}'
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return hint
    if not isinstance(data, dict) or set(data) != {"id", "choice"}:
        return hint
    if not isinstance(data["id"], str):
        return "id must be the pair's id (a string from /pair)"
    if data["choice"] not in CHOICES:
        return 'choice must be "left", "right" or "tie"'
    return data["id"], data["choice"]


def make_app(systems: Systems, store: Store, policy: Policy | None = None,
             repeat_every: int = REPEAT_EVERY):  # fmt: skip
    """The aiohttp application judging these systems into `store` (default: local only)."""
    return ABServer(Judging(systems, store, repeat_every), policy or Policy()).app()
