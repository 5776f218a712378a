"""A mixed client load, as a recommendation service sends it: per simulated user one
assignment, one closeup request and one batch of engagement events.

Used by `bench/load.py` (the soak) and by the fault tests. It keeps an exact account
of every event it sends, so the run can be reconciled with what was stored:

- a 202 tells how many of the batch's events were accepted and which were rejected;
- a 503 (or 429) to a batch says to come back later: the same request, with the same
  event ids, is sent again until it is answered otherwise or `retry_seconds` run out,
  as a client's event queue does (an assignment or a closeup answered 503 is not
  retried: the page goes on without it). Resending
  is what makes the account exact through a database crash: a batch whose commit
  reached the disk just before the crash got a 503, and its resend is stored once;
- any other 4xx means none of the batch was accepted;
- no answer at all (connection refused or reset, a timeout): the same request, with
  the same event ids, is sent again until it gets an answer or `retry_seconds` run
  out; event ids make that safe. A refused connection surely reached nothing; after
  a reset or a timeout the server may have stored the batch, so a later refusal of
  the same batch does not prove it was not stored. Such events, and those never
  answered, are counted apart (`events_unanswered`), and a clean run has none.

It speaks HTTP through `demo/http.py`, the traffic tools' one client, and imports no
Django: it runs wherever a client runs.
"""

import asyncio
import json
import random
import time
import uuid
from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from demo.http import ApiClient

ENGAGEMENT_TYPES = ("click", "closeup", "save", "click", "hide")
ENDPOINTS = ("assignment", "closeup", "events")


@dataclass(frozen=True)
class LoadPlan:
    base_url: str
    api_key: str
    pin_ids: tuple[int, ...]
    concurrency: int = 8
    duration_seconds: float = 30.0
    events_per_user: int = 5
    k: int = 10
    # Every Nth batch carries one event of an unknown type: the API must reject it alone.
    invalid_every: int = 50
    retry_seconds: float = 60.0
    request_timeout: float = 10.0
    retry_wait: float = 1.0
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])


@dataclass
class LoadTally:
    users: int = 0
    statuses: Counter = field(default_factory=Counter)  # (endpoint, status) -> requests; status 0: no answer
    latencies: dict = field(default_factory=lambda: {e: array("d") for e in ENDPOINTS})
    # (whole second since start, endpoint, status) -> requests: what the API said during a fault
    timeline: Counter = field(default_factory=Counter)
    events_sent: int = 0
    events_accepted: int = 0
    events_rejected_as_invalid: int = 0
    events_refused: int = 0  # in batches answered 4xx (or 503 to the end): not accepted, the client was told
    events_unanswered: int = 0  # no answer, or refused after an attempt the server may have stored
    impressions_served: int = 0  # items in closeup answers: the server logs one impression each
    users_assigned: int = 0  # users whose assignment answer put them in an experiment
    retries: int = 0
    # Requests where an attempt may have reached the server without its answer reaching
    # us (a reset, a timeout): a closeup served that way logged impressions we never saw.
    ambiguous_requests: int = 0
    # Of those, closeups: each may have logged up to k impressions that no answer showed.
    impressions_maybe_served: int = 0
    started: float = 0.0
    finished: float = 0.0

    @property
    def seconds(self) -> float:
        return self.finished - self.started

    @property
    def requests(self) -> int:
        return sum(n for (_, status), n in self.statuses.items() if status)

    @property
    def server_errors(self) -> int:
        return sum(n for (_, status), n in self.statuses.items() if status >= 500 and status != 503)

    def answered_statuses(self, endpoint: str | None = None) -> set[int]:
        return {s for (e, s), _ in self.statuses.items() if endpoint in (None, e)}

    def percentile_ms(self, q: float, endpoint: str | None = None) -> float:
        values = sorted(v for e in ENDPOINTS if endpoint in (None, e) for v in self.latencies[e])
        if not values:
            return float("nan")
        return 1000 * values[min(len(values) - 1, int(q / 100 * len(values)))]

    def max_latency_ms(self) -> float:
        return 1000 * max((max(v) for v in self.latencies.values() if v), default=0.0)

    def reconciliation(self, stored_events: int) -> dict:
        """The exact account: accepted by the API = stored = sent - rejected - refused."""
        told_not_accepted = self.events_rejected_as_invalid + self.events_refused
        return {
            "sent": self.events_sent,
            "rejected_as_invalid": self.events_rejected_as_invalid,
            "refused_4xx_503": self.events_refused,
            "unanswered": self.events_unanswered,
            "accepted": self.events_accepted,
            "stored": stored_events,
            "holds": self.events_unanswered == 0
            and self.events_accepted == stored_events == self.events_sent - told_not_accepted,
        }


class LoadGenerator:
    def __init__(self, plan: LoadPlan):
        self.plan = plan
        self.tally = LoadTally()
        self.http = ApiClient(plan.base_url, plan.api_key, plan.request_timeout)
        self._stop = asyncio.Event()
        self._batches = 0
        self._rng = random.Random(plan.run_id)

    def stop(self) -> None:
        self._stop.set()

    async def _request(self, endpoint: str, method: str, path: str, payload=None,
                       retry_unavailable: bool = False) -> tuple[int, bytes, bool]:
        """(status, body, ambiguous): ambiguous when an earlier attempt may have reached
        the server without its answer reaching us."""
        raw = self.http.encode(method, path, payload)
        give_up = time.monotonic() + self.plan.retry_seconds
        ambiguous = False
        while True:
            began = time.perf_counter()
            status, body, maybe_received = await self.http.send(raw)
            elapsed = time.perf_counter() - began
            self.tally.statuses[(endpoint, status)] += 1
            self.tally.timeline[(int(time.monotonic() - self.tally.started), endpoint, status)] += 1
            if status:
                self.tally.latencies[endpoint].append(elapsed)
                if not retry_unavailable or status not in (429, 503) or time.monotonic() >= give_up:
                    return status, body, ambiguous
                # Unavailable for now: as a client should, send the same request again
                # (after `retry_wait`, shorter than the API's Retry-After of 5 s, to keep
                # a fault test short). A 503 to an events
                # batch whose commit was under way when the database went away may not
                # have left it unstored; the same event ids make the resend safe.
                self.tally.retries += 1
                await asyncio.sleep(self.plan.retry_wait)
                continue
            ambiguous = ambiguous or maybe_received
            if time.monotonic() >= give_up:
                return 0, b"", ambiguous
            self.tally.retries += 1
            await asyncio.sleep(0.2)

    def _events(self, user_id: str, closeup: dict | None) -> list[dict]:
        items = (closeup or {}).get("items") or []
        now = datetime.now(UTC).isoformat()
        events = []
        for i in range(self.plan.events_per_user):
            item = items[i % len(items)] if items else {"pin_id": self._rng.choice(self.plan.pin_ids), "position": i}
            event = {"event_id": str(uuid.uuid4()), "user_id": user_id, "type": ENGAGEMENT_TYPES[i % 5],
                     "pin_id": item["pin_id"], "position": item["position"], "timestamp": now}
            if closeup:
                event["request_id"] = closeup["request_id"]
            events.append(event)
        self._batches += 1
        if self.plan.invalid_every and self._batches % self.plan.invalid_every == 0:
            events[-1] = {**events[-1], "type": "bogus"}
        return events

    async def _one_user(self, n: int) -> None:
        t = self.tally
        user_id = f"load-{self.plan.run_id}-{n}"
        status, body, _ = await self._request("assignment", "POST", "/api/v1/assignments",
                                           {"user_id": user_id, "attributes": {}, "surface": "closeup"})
        if status == 200 and json.loads(body).get("assignments"):
            t.users_assigned += 1
        pin = self._rng.choice(self.plan.pin_ids)
        status, body, ambiguous = await self._request("closeup", "GET",
                                                      f"/api/v1/closeup/{pin}?user_id={user_id}&k={self.plan.k}")
        t.ambiguous_requests += ambiguous
        t.impressions_maybe_served += self.plan.k * ambiguous
        closeup = json.loads(body) if status == 200 else None
        if closeup:
            t.impressions_served += len(closeup["items"])
        events = self._events(user_id, closeup)
        t.events_sent += len(events)
        status, body, ambiguous = await self._request("events", "POST", "/api/v1/events", {"events": events},
                                                      retry_unavailable=True)
        t.ambiguous_requests += ambiguous
        if status == 202:
            answer = json.loads(body)
            t.events_accepted += answer["accepted"]
            t.events_rejected_as_invalid += len(answer["rejected"])
        elif status and not ambiguous:
            t.events_refused += len(events)
        else:
            t.events_unanswered += len(events)
        t.users += 1

    async def _virtual_client(self, first: int, step: int, deadline: float) -> None:
        n = first
        while time.monotonic() < deadline and not self._stop.is_set():
            await self._one_user(n)  # a user is finished before stopping: every batch is answered
            n += step

    async def run(self) -> LoadTally:
        self.tally.started = time.monotonic()
        deadline = self.tally.started + self.plan.duration_seconds
        c = self.plan.concurrency
        await asyncio.gather(*(self._virtual_client(i, c, deadline) for i in range(c)))
        self.tally.finished = time.monotonic()
        return self.tally


def run_load(plan: LoadPlan) -> LoadTally:
    """Run a load to its end in this thread (it makes its own event loop)."""
    return asyncio.run(LoadGenerator(plan).run())
