"""A traffic simulator with a known ground truth, driving Pinpoint over HTTP as a
client app would: assignment, closeup request (which logs the served impressions),
then clicks, saves, closeup opens and hides for what was shown.

Each simulated person is a user of the synthetic world (`recommenders.synthetic`),
with its latent topic interests; the chance of a click on a shown pin is the world's
`engagement_probability` (interest × pin quality) times a position bias that decays
down the grid (1 / log2(position + 2)), times the injected lift of the user's variant.
So the truth of every variant is known. No Django import: it is a client.

Without a lift the clicks depend only on each pin's relevance to the person and its
position, so two real rankers compete on their merits: that is how an interleaving
experiment is driven. On an interleaved list (items carrying a `team`), a lift given
for a team's variant applies to that team's items only, and the clicks are tallied per
team as well (`by_team`).
"""

import asyncio
import math
import random
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from demo.http import ApiClient

SAVE_GIVEN_CLICK = 0.3
CLOSEUP_GIVEN_CLICK = 0.5
HIDE_BASE = 0.01


def position_bias(position: int) -> float:
    return 1.0 / math.log2(position + 2)


@dataclass
class Config:
    base_url: str
    api_key: str
    users: int = 1000  # visits; each is one person opening one pin
    rate: float = 0.0  # visits per second; 0: as fast as it goes
    duration: float | None = None  # seconds; stops early when reached
    k: int = 25
    lift: dict[str, float] = field(default_factory=dict)  # variant key -> multiplier of engagement
    drop: float = 0.0  # share of engagement events not sent (a lossy client)
    duplicate: float = 0.0  # share sent twice (a retrying client)
    threads: int = 4  # visits in flight at once
    seed: int = 1
    user_prefix: str = "sim"


def _tally() -> dict:
    return {"users": 0, "impressions": 0, "clicks": 0, "expected_clicks": 0.0}


@dataclass
class Stats:
    visits: int = 0
    errors: int = 0
    events_sent: int = 0
    events_dropped: int = 0
    duplicates_sent: int = 0
    accepted: int = 0
    rejected: int = 0
    by_variant: dict = field(default_factory=lambda: defaultdict(_tally))
    # Per EXPERIMENT:VARIANT of every experiment that shaped a response: with a retrieval and
    # a ranking experiment composing, each one's truth is read from its own arms.
    by_assignment: dict = field(default_factory=lambda: defaultdict(_tally))
    # Per EXPERIMENT:TEAM of an interleaved list: impressions and clicks of each team's items.
    by_team: dict = field(default_factory=lambda: defaultdict(_tally))

    def summary(self) -> dict:
        return {"visits": self.visits, "errors": self.errors, "events_sent": self.events_sent,
                "events_dropped": self.events_dropped, "duplicates_sent": self.duplicates_sent,
                "accepted": self.accepted, "rejected": self.rejected,
                "by_variant": {k: dict(v) for k, v in self.by_variant.items()},
                "by_assignment": {k: dict(v) for k, v in self.by_assignment.items()},
                "by_team": {k: dict(v) for k, v in self.by_team.items()}}


class Simulator:
    def __init__(self, world, config: Config):
        self.world = world
        self.config = config
        self.pin_index = {int(p): i for i, p in enumerate(world.data.pin_ids)}
        self.stats = Stats()

    def person(self, i: int) -> tuple[str, int]:
        """(user id, world user index): the world's users first, then more with their tastes."""
        n = len(self.world.data.user_ids)
        if i < n:
            return str(self.world.data.user_ids[i]), i
        return f"{self.config.user_prefix}-{i}", i % n

    def opened_pin(self, rng: random.Random, u: int) -> int:
        topic = rng.choices(range(self.world.n_topics), weights=self.world.user_interest[u])[0]
        candidates = np.flatnonzero(self.world.data.pin_topic == topic)
        return int(self.world.data.pin_ids[rng.choice(candidates)])

    def _lift(self, experiment: str, variant: str) -> float:
        return self.config.lift.get(f"{experiment}:{variant}", self.config.lift.get(variant, 1.0))

    def interleaved_by(self, shown: dict) -> str | None:
        """The experiment whose teams merged the list, if it was interleaved."""
        teams = {item["team"] for item in shown.get("items", ()) if item.get("team")}
        return next((a["experiment"] for a in shown.get("assignments", ()) if a["variant"] in teams), None) \
            if teams else None

    def lift_of(self, shown: dict) -> float:
        """The injected lift of a closeup response: the product over the experiments that
        shaped it (a retrieval and a ranking experiment compose) of the lift given for
        EXPERIMENT:VARIANT, else for VARIANT; an interleaving experiment's is per item
        (item_lift)."""
        interleaved = self.interleaved_by(shown)
        lift = 1.0
        for a in shown.get("assignments", ()):
            if a["experiment"] != interleaved:
                lift *= self._lift(a["experiment"], a["variant"])
        return lift

    def item_lift(self, interleaved: str | None, item: dict) -> float:
        return self._lift(interleaved, item["team"]) if interleaved and item.get("team") else 1.0

    async def visit(self, client: ApiClient, rng: random.Random, i: int) -> None:
        c = self.config
        user_id, u = self.person(i)
        # The closeup assigns the user itself and records exposures only for the experiments
        # that shaped the list; a separate POST /assignments would expose the user to every
        # experiment it is in, and dilute a retrieval or ranking experiment's effect.
        pin = self.opened_pin(rng, u)
        status, shown = await client.request("GET", f"/api/v1/closeup/{pin}?user_id={user_id}&k={c.k}")
        if status != 200 or not shown:
            self._error()
            return
        variant = shown.get("variant") or "(none)"
        lift = self.lift_of(shown)
        interleaved = self.interleaved_by(shown)
        items = shown["items"]
        pins = np.array([self.pin_index.get(int(x["pin_id"]), 0) for x in items])
        base = self.world.engagement_probability(u, pins) if len(pins) else np.array([])
        now = datetime.now(UTC).isoformat()
        events, clicks, expected = [], 0, 0.0
        for item, p0 in zip(items, base, strict=True):
            p_click = min(1.0, float(p0) * position_bias(item["position"]) * lift * self.item_lift(interleaved, item))
            expected += p_click
            team = self.stats.by_team[f"{interleaved}:{item['team']}"] if interleaved and item.get("team") else None
            if team is not None:
                team["impressions"] += 1
                team["expected_clicks"] += p_click
            common = {"user_id": user_id, "pin_id": item["pin_id"], "request_id": shown["request_id"],
                      "position": item["position"], "timestamp": now}
            if rng.random() < p_click:
                clicks += 1
                if team is not None:
                    team["clicks"] += 1
                events.append({"type": "click", **common})
                if rng.random() < CLOSEUP_GIVEN_CLICK:
                    events.append({"type": "closeup", **common})
                if rng.random() < SAVE_GIVEN_CLICK:
                    events.append({"type": "save", **common})
            elif rng.random() < HIDE_BASE * (1.5 - self.world.pin_quality[self.pin_index.get(int(item["pin_id"]), 0)]):
                events.append({"type": "hide", **common})
        sent, dropped, dup = [], 0, 0
        for e in events:
            e["event_id"] = str(uuid.uuid4())
            if rng.random() < c.drop:
                dropped += 1
                continue
            sent.append(e)
            if rng.random() < c.duplicate:
                sent.append(dict(e))
                dup += 1
        accepted = rejected = 0
        if sent:
            status, body = await client.request("POST", "/api/v1/events", {"events": sent})
            if status == 202 and body:
                accepted, rejected = body["accepted"], len(body["rejected"])
            else:
                self._error()
        s = self.stats
        s.visits += 1
        s.events_sent += len(sent)
        s.events_dropped += dropped
        s.duplicates_sent += dup
        s.accepted += accepted
        s.rejected += rejected
        for v in [s.by_variant[variant]] + [s.by_assignment[f"{a['experiment']}:{a['variant']}"]
                                            for a in shown.get("assignments", ())]:
            v["users"] += 1
            v["impressions"] += len(items)
            v["clicks"] += clicks
            v["expected_clicks"] += expected

    def _error(self):
        self.stats.errors += 1

    def run(self, progress=lambda n: None) -> Stats:
        """Drive `users` visits (or until `duration`), `threads` at a time, paced at `rate`."""
        return asyncio.run(self._run(progress))

    async def _run(self, progress) -> Stats:
        c = self.config
        counter = iter(range(c.users))
        started = time.monotonic()

        async def next_visit():
            i = next(counter, None)
            if i is None or (c.duration and time.monotonic() - started > c.duration):
                return None
            if c.rate > 0:  # pace: visit i is due at i / rate seconds
                delay = started + i / c.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            return i

        async def visitor(seed):
            rng = random.Random(seed)
            client = ApiClient(c.base_url, c.api_key, timeout=30)
            while (i := await next_visit()) is not None:
                await self.visit(client, rng, i)
                progress(1)

        await asyncio.gather(*(visitor(c.seed * 1000 + t) for t in range(c.threads)))
        return self.stats
