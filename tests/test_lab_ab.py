"""`palmbrush lab ab`, the blind A/B judging server: its scores against published numbers and
simulated judges, its votes database across a SIGKILL, its HTTP API and hardening, the CLI's
mistakes, and the page in Debian's Chromium judged by keyboard with a known preference."""

from __future__ import annotations

import json
import os
import random
import re
import select
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, stop_process

from palmbrush.lab import ab, scores
from palmbrush.lab.votes import Store, Vote

Image = pytest.importorskip("PIL.Image")
pytest.importorskip("aiohttp")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Folder names no random token could contain by chance: none may reach the judge's browser.
ALPHA, BETA, GAMMA = "system_alpha_zq", "system_beta_zq", "system_gamma_zq"
COLOURS = {ALPHA: (0, 2), BETA: (2, 0), GAMMA: (1, 1)}  # (strong, weak) channel: red, blue, green
ITEMS = ["frame-001.png", "frame-002.png", "photo.png"]


def picture(system: str, item: int, size=(96, 64)) -> Image.Image:
    """The system's colour (red, blue or green) over a gradient that differs per item."""
    strong, weak = COLOURS[system]
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    rgb = np.zeros((size[1], size[0], 3), np.uint8)
    rgb[..., strong] = 200
    rgb[..., weak] = (x * 40 // size[0]) + 10 * item
    rgb[..., 3 - strong - weak] = y * 60 // size[1]
    return Image.fromarray(rgb)


def make_folders(root: Path, systems=(ALPHA, BETA, GAMMA), items=ITEMS) -> list[Path]:
    folders = []
    for system in systems:
        folder = root / system
        folder.mkdir(parents=True)
        for i, item in enumerate(items):
            picture(system, i).save(folder / item)
        folders.append(folder)
    return folders


def system_of(data: bytes) -> str:
    """Which system drew this picture, from its colour (what the judge sees)."""
    import io

    mean = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).reshape(-1, 3).mean(0)
    return {0: ALPHA, 2: BETA, 1: GAMMA}[int(mean.argmax())]


def count_votes(db: Path) -> int:
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT count(*) FROM votes").fetchone()[0]


# Scores -----------------------------------------------------------------------------------------

# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Stat. Med. 17,
# Table I, method 3 (Wilson score, no continuity correction); 8/10 is the textbook example.
PUBLISHED_WILSON = [(8, 10, 0.4902, 0.9433), (81, 263, 0.2553, 0.3662),
                    (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718),
                    (29, 29, 0.8830, 1.0)]  # fmt: skip


@pytest.mark.parametrize(("successes", "n", "low", "high"), PUBLISHED_WILSON)
def test_wilson_intervals_match_published_values(successes, n, low, high):
    assert scores.wilson(successes, n) == pytest.approx((low, high), abs=6e-5)


def test_wilson_with_no_votes_is_the_whole_range():
    assert scores.wilson(0, 0) == (0.0, 1.0)


def simulated(strengths: dict[str, float], n: int, seed: int = 0) -> list[scores.Outcome]:
    """Votes of a Bradley-Terry judge: i beats j with probability s_i / (s_i + s_j)."""
    rng = random.Random(seed)
    names = list(strengths)
    outcomes = []
    for _ in range(n):
        a, b = rng.sample(names, 2)
        won = rng.random() < strengths[a] / (strengths[a] + strengths[b])
        outcomes.append(scores.Outcome(a, b, 1.0 if won else 0.0))
    return outcomes


def test_bradley_terry_recovers_known_strengths():
    truth = {"w": 8.0, "x": 4.0, "y": 2.0, "z": 1.0}
    fitted = scores.bradley_terry(simulated(truth, 6000), list(truth))
    assert sorted(fitted, key=fitted.get, reverse=True) == ["w", "x", "y", "z"]
    assert sum(fitted.values()) == pytest.approx(1.0)
    for name, strength in truth.items():  # the ratios, within sampling error
        assert fitted[name] / fitted["z"] == pytest.approx(strength, rel=0.2)


def test_bradley_terry_keeps_an_unbeaten_system_finite_and_first():
    outcomes = [scores.Outcome("a", other, 1.0) for other in "bc" for _ in range(20)]
    outcomes += [scores.Outcome("b", "c", 0.5)] * 4  # ties: half a win each way
    fitted = scores.bradley_terry(outcomes, ["c", "b", "a"])
    assert all(np.isfinite(list(fitted.values()))) and min(fitted.values()) > 0
    assert fitted["a"] > 0.9 and fitted["b"] == pytest.approx(fitted["c"])


def test_the_table_counts_ties_half_and_ranks_three_systems_by_bradley_terry():
    two = scores.table([scores.Outcome("a", "b", 1.0), scores.Outcome("b", "a", 0.5)], ["b", "a"])
    assert [(r.name, r.score, r.votes, r.strength) for r in two] == [
        ("a", 0.75, 2, None),
        ("b", 0.25, 2, None),
    ]
    three = scores.table(simulated({"p": 1.0, "q": 3.0, "r": 9.0}, 900), ["p", "q", "r"])
    assert [r.name for r in three] == ["r", "q", "p"]
    assert all(r.low < r.score < r.high for r in three)


def test_consistency_is_the_share_of_repeats_answered_alike():
    checks = [("a", "a"), (None, None), ("a", "b"), ("b", None)]
    assert scores.consistency(checks) == {"votes": 4, "consistent": 2, "share": 0.5}
    assert scores.consistency([])["share"] is None


# Pair choice and attention checks (in process) --------------------------------------------------


def judging(tmp_path, repeat_every=0, **folders) -> ab.Judging:
    systems = ab.find_systems(make_folders(tmp_path / "pictures", **folders))
    return ab.Judging(systems, Store(tmp_path / "votes.sqlite"), repeat_every, random.Random(1))


def test_pairs_balance_comparisons_and_sides(tmp_path):
    j = judging(tmp_path)
    assert len(j.known) == 9  # 3 pictures x 3 pairs of systems
    sides = []
    for _ in range(4 * 9):
        pair_id, shown = j.next_pair()
        sides.append(shown.left == shown.comparison.a)
        j.vote(pair_id, "left")
    assert set(j.shown.values()) == {4}  # every comparison judged 4 times
    assert set(j.pair_shown.values()) == {12}  # every two systems 12 times
    assert 8 < sum(sides) < 28  # sides at random


def test_an_attention_check_repeats_a_vote_sides_swapped_and_is_not_scored(tmp_path):
    j = judging(tmp_path, repeat_every=3)
    repeats = []
    for served in range(1, 10):
        pair_id, shown = j.next_pair()
        if shown.original is None:
            j.vote(pair_id, "left")
            continue
        repeats.append(served)
        assert (shown.left, shown.right) == (shown.original.right, shown.original.left)
        assert shown.comparison == j.comparison(shown.original)
        j.vote(pair_id, "right" if len(repeats) == 1 else "left")  # consistent, then not
        assert j.store.votes()[-1].repeat_of == shown.original.id
    assert repeats == [6, 9]  # the 3rd pair came before REPEAT_AFTER (5) votes were in
    result = j.scores()
    assert result["votes"] == 7 and sum(s["votes"] for s in result["systems"]) == 14
    assert result["repeats"] == {"votes": 2, "consistent": 1, "share": 0.5}


def test_a_pair_pushed_out_by_newer_ones_expires(tmp_path):
    j = judging(tmp_path)
    first, shown = j.next_pair()
    for _ in range(ab.MAX_PENDING):
        j.next_pair()
    assert j.vote(first, "left") is None
    assert not set(shown.tokens) & set(j.images)  # its pictures are gone too
    assert len(j.pending) == ab.MAX_PENDING and sum(j.shown.values()) == ab.MAX_PENDING


def test_the_store_continues_and_refuses_other_files(tmp_path):
    store = Store(tmp_path / "votes.sqlite")
    store.add(Vote("photo.png", ALPHA, BETA, "tie"))
    store.close()
    assert [v.winner for v in Store(tmp_path / "votes.sqlite").votes()] == [None]
    with pytest.raises(ValueError):
        Store(tmp_path / "votes.sqlite").add(Vote("photo.png", ALPHA, BETA, "both"))


# The server in another process -------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    db: Path
    log: Path

    def stop(self) -> None:
        stop_process(self.process)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def start(folders: list[Path], db: Path, *args: str, seconds: float = 60) -> Server:
    """`palmbrush lab ab FOLDERS --port 0 --db DB ARGS`; waits for the line with its address."""
    log = db.with_suffix(".log")
    command = [sys.executable, "-m", "palmbrush.cli.main", "lab", "ab", *map(str, folders),
               "--port", "0", "--db", str(db), *args]  # fmt: skip
    with open(log, "w") as err:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if select.select([process.stdout], [], [], 0.5)[0]:
            match = re.search(r"http://127\.0\.0\.1:(\d+)/", process.stdout.readline())
            if match:
                return Server(process, int(match.group(1)), db, log)
        if process.poll() is not None:
            pytest.fail(f"palmbrush lab ab exited: {log.read_text()}")
    process.kill()
    pytest.fail(f"palmbrush lab ab printed no address in {seconds} s: {log.read_text()}")


def http(server: Server, method: str, path: str, body: bytes = b"",
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:  # fmt: skip
    """A raw HTTP/1.1 request (any Host header, unlike urllib): the status and the body."""
    headers = {"Host": f"127.0.0.1:{server.port}", "Content-Length": str(len(body)),
               **(headers or {}), "Connection": "close"}  # fmt: skip
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items() if v is not None)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(f"{method} {path} HTTP/1.1\r\n{head}\r\n".encode() + body)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    status, _, rest = reply.partition(b"\r\n")
    return int(status.split()[1]), rest.partition(b"\r\n\r\n")[2]


def get(server: Server, path: str) -> dict:
    status, body = http(server, "GET", path)
    assert status == 200, body
    return json.loads(body)


def vote(server: Server, pair_id, choice, headers=None) -> tuple[int, bytes]:
    body = json.dumps({"id": pair_id, "choice": choice}).encode()
    return http(
        server, "POST", "/vote", body, {"Content-Type": "application/json", **(headers or {})}
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab-ab")
    running = start(make_folders(root / "pictures"), root / "votes.sqlite", "--repeat-every", "0")
    yield running
    running.stop()


@pytest.fixture
def own_server(tmp_path):
    running = start(make_folders(tmp_path / "pictures"), tmp_path / "votes.sqlite",
                    "--repeat-every", "0")  # fmt: skip
    yield running
    running.stop()


def test_the_api_ranks_a_known_preference(own_server):
    """A judge who prefers alpha to beta to gamma, told apart by colour as a person would."""
    server, rank = own_server, [ALPHA, BETA, GAMMA]
    for _ in range(27):
        pair = get(server, "/pair")
        left, right = (system_of(http(server, "GET", pair[side])[1]) for side in ("left", "right"))
        status, body = vote(
            server, pair["id"], "left" if rank.index(left) < rank.index(right) else "right"
        )
        assert status == 200, body
    assert count_votes(server.db) == 27
    result = get(server, "/scores")
    assert result["ranking"] == "bradley-terry"
    assert [s["name"] for s in result["systems"]] == rank
    best, _, worst = result["systems"]
    assert best["score"] == 1.0 and best["low"] > 0.7 and worst["score"] == 0.0
    assert best["strength"] > 0.8 and sum(
        s["strength"] for s in result["systems"]
    ) == pytest.approx(1)


FOREIGN = {"Host": "evil.example:80"}


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b'{"id": "ID", "choice": "up"}', {}, 400),
        (b'{"id": "not-a-pair-id", "choice": "left"}', {}, 404),
        (b'{"id": 7, "choice": "left"}', {}, 400),
        (b'{"id": "ID", "choice": "left", "extra": 1}', {}, 400),
        (b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", {}, 400),
        (b'{"id": "ID", "choice": "left"}', {"Content-Type": "text/plain"}, 415),
        (b'{"id": "ID", "choice": "left"}' + b" " * 4096, {}, 413),
        (b'{"id": "ID", "choice": "left"}', {"Origin": "http://evil.example"}, 403),
        (b'{"id": "ID", "choice": "left"}', {"Origin": "null"}, 403),
        (b'{"id": "ID", "choice": "left"}', FOREIGN, 403),
    ],
)
def test_a_bad_vote_is_refused_and_not_recorded(server, body, headers, status):
    pair = get(server, "/pair")
    before = count_votes(server.db)
    body = body.replace(b"ID", pair["id"].encode())
    answer = http(server, "POST", "/vote", body, {"Content-Type": "application/json", **headers})
    assert answer[0] == status, answer
    assert count_votes(server.db) == before
    assert vote(server, pair["id"], "tie")[0] == 200  # the pair was still open
    assert count_votes(server.db) == before + 1


@pytest.mark.parametrize("path", ["/", "/pair", "/scores", "/image/x"])
def test_a_foreign_host_or_origin_is_refused_on_every_route(server, path):
    """DNS rebinding sends the attacker's name as Host; another site's page sends its Origin."""
    assert http(server, "GET", path, headers=FOREIGN)[0] == 403
    assert http(server, "GET", path, headers={"Origin": "http://evil.example"})[0] == 403
    assert http(server, "GET", path, headers={"Origin": server.url("").lower()})[0] in (200, 404)


def test_oversized_headers_are_refused(server):
    assert 400 <= http(server, "GET", "/pair", headers={"X-Padding": "x" * 5000})[0] < 500


def test_a_vote_counts_once_and_pictures_go_with_it(server):
    pair = get(server, "/pair")
    assert vote(server, pair["id"], "left")[0] == 200
    assert vote(server, pair["id"], "left")[0] == 404
    assert http(server, "GET", pair["left"])[0] == 404


@pytest.mark.parametrize("path", ["/image/..%2Fsystem_alpha_zq%2Fphoto.png", "/image/photo.png",
                                  "/system_alpha_zq/photo.png", "/image/"])  # fmt: skip
def test_no_file_is_served_by_its_name(server, path):
    assert http(server, "GET", path)[0] == 404


def test_no_system_name_reaches_the_page_the_pairs_or_the_pictures(server):
    seen = [http(server, "GET", "/")[1]]
    for _ in range(12):
        pair = get(server, "/pair")
        seen += [json.dumps(pair).encode(), http(server, "GET", pair["left"])[1]]
    text = b"".join(seen).lower()
    for name in (ALPHA, BETA, GAMMA, "system_", "alpha", "pictures"):
        assert name.encode() not in text


def test_a_vote_survives_sigkill_and_a_rerun_continues(tmp_path):
    folders = make_folders(tmp_path / "pictures", systems=(ALPHA, BETA))
    db = tmp_path / "votes.sqlite"
    first = start(folders, db)
    for choice in ["left", "right", "tie", "left", "left"]:
        assert vote(first, get(first, "/pair")["id"], choice)[0] == 200
    stale = get(first, "/pair")["id"]
    first.process.kill()  # SIGKILL: no chance to flush anything
    first.process.wait(timeout=10)
    assert count_votes(db) == 5
    again = start(folders, db)
    try:
        assert get(again, "/pair")["votes"] == 5
        assert get(again, "/scores")["votes"] == 5
        assert vote(again, stale, "left")[0] == 404  # ids do not outlive their server
    finally:
        again.stop()


# CLI mistakes -----------------------------------------------------------------------------------


def _mistakes(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    alpha, beta = make_folders(tmp_path / "p", systems=(ALPHA, BETA))
    (tmp_path / "q" / ALPHA).mkdir(parents=True)
    (tmp_path / "other" / "x.png").parent.mkdir()
    picture(GAMMA, 0).save(tmp_path / "other" / "x.png")
    (tmp_path / "text.sqlite").write_text("not a database\n")
    with sqlite3.connect(tmp_path / "foreign.sqlite") as connection:
        connection.execute("CREATE TABLE songs (title TEXT)")
    two = [str(alpha), str(beta)]
    return {
        "one folder": ([str(alpha)], "at least two folders"),
        "missing folder": ([str(alpha), str(tmp_path / "nope")], "no such folder"),
        "a file": ([str(alpha), str(alpha / "photo.png")], "is not a folder"),
        "same name": ([str(alpha), str(tmp_path / "q" / ALPHA)], "must be distinct"),
        "nothing common": ([str(alpha), str(tmp_path / "other")], "no picture file name"),
        "db is a picture": ([*two, "--db", str(beta / "photo.png")], "is also an input"),
        "db is a folder": ([*two, "--db", str(beta)], "is a folder"),
        "db not sqlite": ([*two, "--db", str(tmp_path / "text.sqlite")], "not an SQLite"),
        "db of another app": ([*two, "--db", str(tmp_path / "foreign.sqlite")], "something else"),
        "lan host": ([*two, "--host", "0.0.0.0"], "add --lan"),
        "bad port": ([*two, "--port", "70000"], "above the maximum"),
    }


CASES = ["one folder", "missing folder", "a file", "same name", "nothing common",
         "db is a picture", "db is a folder", "db not sqlite", "db of another app", "lan host",
         "bad port"]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_a_mistake_is_one_line_and_exit_2(tmp_path, case):
    args, words = _mistakes(tmp_path)[case]
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    base = ["--port", "0", "--db", str(tmp_path / "votes.sqlite")]  # a case may override them
    result = run_cli("lab", "ab", *base, *args, timeout=60)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert words in lines[0] and "Traceback" not in result.stderr
    assert {p: p.stat().st_mtime_ns for p in before} == before  # nothing written over


# The page in Chromium ---------------------------------------------------------------------------

KEYS = [("ArrowLeft", "ArrowRight", "ArrowDown"), ("1", "2", "3"), ("a", "d", "s")]
SIDE_COLOUR = """(id) => {
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 8;
    const context = canvas.getContext("2d");
    context.drawImage(document.getElementById(id), 0, 0, 8, 8);
    const d = context.getImageData(0, 0, 8, 8).data, sum = [0, 0, 0];
    for (let i = 0; i < d.length; i += 4) for (let c = 0; c < 3; c++) sum[c] += d[i + c];
    return sum.indexOf(Math.max(...sum));
}"""
CHANNEL_SYSTEM = {0: ALPHA, 2: BETA, 1: GAMMA}
PROGRESS_IS = "(text) => document.getElementById('progress').textContent === text"


def judge(page, rank: list[str], steps: int) -> list[tuple[str, str, str]]:
    """Vote `steps` pairs on the page for the system first in `rank`, told by its colour: keys of
    every kind, one button click, and a tie last. (left system, right system, choice) each."""
    votes = []
    for step in range(steps):
        page.wait_for_selector("body[data-state=ready]", timeout=20000)
        left, right = (
            CHANNEL_SYSTEM[page.evaluate(SIDE_COLOUR, side)] for side in ("left", "right")
        )
        choice = "left" if rank.index(left) < rank.index(right) else "right"
        choice = "tie" if step == steps - 1 else choice
        if step == 6:
            page.click(f"button[data-choice={choice}]")
        else:
            page.keyboard.press(KEYS[step % 3][["left", "right", "tie"].index(choice)])
        votes.append((left, right, choice))
        page.wait_for_function(PROGRESS_IS, arg=f"{step + 1} vote{'s' if step else ''}")
    return votes


@pytest.mark.skipif(not os.path.exists(CHROMIUM),
                    reason="needs Debian's chromium (apt-get install chromium)")  # fmt: skip
def test_keyboard_votes_in_chromium_reach_the_database_and_rank_a_first(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    served = start(make_folders(tmp_path / "pictures"), tmp_path / "votes.sqlite",
                   "--repeat-every", "4")  # fmt: skip
    rank, console = [ALPHA, BETA, GAMMA], []
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM)
            try:
                page = browser.new_page()
                page.on("console", lambda message: console.append(message.text))
                response = page.goto(served.url())
                assert "script-src 'sha256-" in response.headers["content-security-policy"]
                expected = judge(page, rank, 14)
                html = page.content().lower()
            finally:
                browser.close()
        result = json.loads(http(served, "GET", "/scores")[1])
    finally:
        served.stop()
    assert not [m for m in console if "Content Security Policy" in m], console
    assert not any(name in html for name in (ALPHA, BETA, GAMMA, "system_"))
    with sqlite3.connect(served.db) as connection:
        rows = connection.execute("SELECT left, right, choice, repeat_of FROM votes ORDER BY id")
        rows = rows.fetchall()
    assert [row[:3] for row in rows] == expected  # every vote, its sides as shown
    assert [i for i, row in enumerate(rows) if row[3] is not None] == [7, 11]  # pairs 8 and 12
    assert [s["name"] for s in result["systems"]] == rank
    assert result["votes"] == 12 and result["repeats"]["share"] == 1.0  # repeats not scored
    assert result["systems"][0]["score"] > 0.9 and result["systems"][2]["score"] < 0.1
