"""Scores of a blind A/B judging: pure functions of the votes, no server, no database.

A system's score is the share of its comparisons it won, a tie counting half, with a Wilson
95% interval; with more than two systems a Bradley-Terry fit (Hunter 2004's MM iteration) ranks
them on one scale even when not every pair was judged equally often.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054  # the normal quantile of 0.975: a two-sided 95% interval
PRIOR = 0.1  # virtual games between every two systems, split evenly: an unbeaten one stays finite


@dataclass(frozen=True)
class Outcome:
    """One judged comparison of system a with system b."""

    a: str
    b: str
    a_share: float  # 1: a won, 0: b won, 0.5: a tie


@dataclass(frozen=True)
class SystemScore:
    name: str
    score: float  # share of its comparisons won, ties half
    low: float  # Wilson 95% interval of the score
    high: float
    votes: int  # comparisons it took part in
    strength: float | None  # Bradley-Terry strength (all systems' sum to 1); None for two systems


def wilson(successes: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval (1927) for the proportion successes / n; (0, 1) with no data."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    spread = z * z / n
    centre = (p + spread / 2) / (1 + spread)
    half = z * math.sqrt(p * (1 - p) / n + spread / (4 * n)) / (1 + spread)
    return max(0.0, centre - half), min(1.0, centre + half)


def bradley_terry(outcomes: Iterable[Outcome], names: Sequence[str], prior: float = PRIOR,
                  iterations: int = 10_000, tolerance: float = 1e-12
                  ) -> dict[str, float]:  # fmt: skip
    """Strengths s (summing to 1) such that P(i beats j) = s_i / (s_i + s_j), by the MM update
    s_i <- W_i / sum_j N_ij / (s_i + s_j) (Hunter 2004, eq. 3). A tie is half a win each way;
    `prior` virtual games between every two systems, half won by each, keep every W_i > 0."""
    index = {name: i for i, name in enumerate(names)}
    k = len(names)
    wins = np.full(k, prior * (k - 1) / 2)
    games = prior * (1 - np.eye(k))  # N_ij: games between i and j
    for o in outcomes:
        a, b = index[o.a], index[o.b]
        wins[a] += o.a_share
        wins[b] += 1 - o.a_share
        games[a, b] += 1
        games[b, a] += 1
    strength = np.full(k, 1 / k)
    for _ in range(iterations):
        updated = wins / (games / (strength[:, None] + strength[None, :])).sum(axis=1)
        updated /= updated.sum()
        done = np.abs(updated - strength).max() < tolerance
        strength = updated
        if done:
            break
    return {name: float(strength[i]) for name, i in index.items()}


def table(outcomes: Sequence[Outcome], names: Sequence[str]) -> list[SystemScore]:
    """Every system's score and interval, best first: by Bradley-Terry strength when there are
    more than two systems, by score otherwise."""
    points = dict.fromkeys(names, 0.0)
    votes = dict.fromkeys(names, 0)
    for o in outcomes:
        points[o.a] += o.a_share
        points[o.b] += 1 - o.a_share
        votes[o.a] += 1
        votes[o.b] += 1
    strengths = bradley_terry(outcomes, names) if len(names) > 2 else {}
    rows = []
    for name in names:
        score = points[name] / votes[name] if votes[name] else 0.5
        low, high = wilson(points[name], votes[name])
        rows.append(SystemScore(name, score, low, high, votes[name], strengths.get(name)))
    return sorted(rows, key=lambda r: -(r.strength if r.strength is not None else r.score))


def consistency(pairs: Iterable[tuple[str | None, str | None]]) -> dict:
    """Attention checks: (system chosen first, system chosen on the repeat), None for a tie.
    Consistent: the same system both times, or a tie both times."""
    pairs = list(pairs)
    consistent = sum(first == again for first, again in pairs)
    share = consistent / len(pairs) if pairs else None
    return {"votes": len(pairs), "consistent": consistent, "share": share}
