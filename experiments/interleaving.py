"""Team-draft interleaving (Radlinski, Kurup and Joachims, 2008). Pure: no Django.

Each request merges the rankers' lists into one: in every round the teams pick in an
order drawn by a coin flip (a random permutation with more than two teams, which is
team-draft multileaving, Schuth et al. 2014), and each team adds its highest-ranked
item not yet taken, until k items. Every item keeps the label of the team that placed
it, so an engagement on it credits that team.

The coin is seeded by the request id: replaying a request gives the same list and the
same labels, and no state is kept between requests.
"""

import hashlib
import random
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Placed:
    item: Hashable
    team: str
    score: float  # the placing team's own score of the item (None-free: 0.0 when it gave none)


def request_seed(request_id: str) -> int:
    """A stable 64-bit seed of the request id (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.blake2b(request_id.encode(), digest_size=8).digest(), "big")


def team_draft(rankings: Mapping[str, Sequence[tuple[Hashable, float]]], k: int, seed: int) -> list[Placed]:
    """Merge the teams' rankings ([(item, score)], best first) into k labelled items.

    Each round every team still holding an unplaced item picks once, in a random order;
    a team that has run out sits the round out, so the list still fills from the others.
    Teams are ordered by name before the draws, so the merge does not depend on the
    mapping's order."""
    if k <= 0:
        return []
    rng = random.Random(seed)
    teams = sorted(rankings)
    cursor = dict.fromkeys(teams, 0)
    taken: set = set()
    merged: list[Placed] = []
    while len(merged) < k:
        order = teams[:]
        rng.shuffle(order)
        picked = False
        for team in order:
            if len(merged) >= k:
                break
            ranking, i = rankings[team], cursor[team]
            while i < len(ranking) and ranking[i][0] in taken:
                i += 1
            cursor[team] = i + 1
            if i < len(ranking):
                item, score = ranking[i]
                taken.add(item)
                merged.append(Placed(item, team, float(score or 0.0)))
                picked = True
        if not picked:
            break
    return merged
