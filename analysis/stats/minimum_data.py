"""The minimum-data rule: no verdict on a comparison until both of its arms have enough
users and enough events.

With a handful of users a test can reach p < 0.05 on one outlier, and the normal
approximations every test here relies on are not yet good. Peers refuse to call a
result that early: PostHog waits for 100 exposed users per variant
(FF_DISTRIBUTION_THRESHOLD), GrowthBook for a metric total of 150 per variation (its
metric's "minimum sample size"). Pinpoint takes both, per metric: `users_per_variant`
users and `events_per_variant` of the metric's numerator (clicks, saves, converting
users) in every arm of a comparison.

Below it the comparison keeps its observed lift but shows no interval, no p-value and
no verdict, and says how many more users the experiment needs: each arm's shortfall in
users, or in events at the arm's own event rate per user, scaled by the arm's share of
the traffic (an arm with 10% of the users needs ten new users for each one it lacks).
"""

import math
from dataclasses import dataclass

PEER_USERS_PER_VARIANT = 100  # PostHog: FF_DISTRIBUTION_THRESHOLD
PEER_EVENTS_PER_VARIANT = 150  # GrowthBook: a metric's default minimum sample size
BEYOND = 1e15  # users: more than there are people, by orders of magnitude


@dataclass(frozen=True)
class MinimumData:
    users_per_variant: int = PEER_USERS_PER_VARIANT
    events_per_variant: int = PEER_EVENTS_PER_VARIANT


@dataclass(frozen=True)
class Arm:
    """One arm of a comparison: its users, its numerator total, its share of the traffic."""

    name: str
    users: int
    events: float
    share: float  # of every user entering the experiment (0 < share ≤ 1)


@dataclass(frozen=True)
class Shortfall:
    met: bool
    more_users: int | None  # users the experiment needs before a verdict; None: not yet estimable
    reason: str  # in words; "" when met


def shortfall(rule: MinimumData, arms: list[Arm], events_word: str = "events") -> Shortfall:
    """Whether every arm meets the rule and, if not, how many more users the experiment
    needs at the current split for the arms that lack most to meet it."""
    lacking, needs = [], []
    total_users = sum(a.users for a in arms)
    total_events = sum(max(a.events, 0.0) for a in arms)
    for arm in arms:
        short_users = max(0, rule.users_per_variant - arm.users)
        short_events = max(0.0, rule.events_per_variant - max(arm.events, 0.0))
        if not short_users and not short_events:
            continue
        words = []
        if short_users:
            words.append(f"{arm.users:,} of {rule.users_per_variant:,} users")
        if short_events:
            words.append(f"{_count(arm.events)} of {rule.events_per_variant:,} {events_word}")
        lacking.append(f"{arm.name} has {' and '.join(words)}")
        # Events per user from the arm itself, else from every arm (a treatment with none yet).
        rate = (arm.events / arm.users if arm.users and arm.events > 0
                else total_events / total_users if total_users and total_events > 0 else 0.0)
        users_for_events = short_events / rate if rate > 0 else math.inf if short_events else 0.0
        more = max(short_users, users_for_events) / arm.share if arm.share > 0 else math.inf
        # No event yet anywhere, or so rare that no experiment could gather them: no number.
        needs.append(math.ceil(more) if more < BEYOND else None)
    if not lacking:
        return Shortfall(True, 0, "")
    more = None if any(n is None for n in needs) else max(needs)
    return Shortfall(False, more, "; ".join(lacking))


def _count(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"
