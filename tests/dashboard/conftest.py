"""Helpers of the dashboard's tests."""

import random
import uuid
from datetime import UTC, datetime, timedelta

from analysis.services import run_analysis
from experiments import services
from tests.analysis.conftest import add_events, add_exposures, add_rows


def simulated_experiment(owner, key, ctr, hide, users=1500, seed=3):
    """Users of each variant see 10 pins; each click and hide happens with the variant's
    true probability."""
    rng = random.Random(seed)
    layer = services.create_layer(key=f"layer-{key}", name=key)
    experiment = services.create_experiment(
        actor=owner, layer=layer, key=key, name=key, primary_metric="closeup_ctr", guardrail_metrics=["hide_rate"],
        variants=[{"key": "control", "weight": 50, "is_control": True, "recommender": {"name": "popularity"}},
                  {"key": "treatment", "weight": 50, "recommender": {"name": "pixie"}}])
    services.transition(experiment, "start", actor=owner)
    variants = {v.key: v for v in experiment.variants.all()}
    exposed, seen = datetime.now(UTC) - timedelta(hours=2), datetime.now(UTC) - timedelta(hours=1)
    rows, events = [], []
    for key_, v in variants.items():
        for i in range(users):
            user = f"{key}-{key_}-{i}"  # apart from other experiments' users: events are per user
            rows.append((v, user, exposed, {}, False))
            for _ in range(10):
                events.append((user, "impression", seen))
                if rng.random() < ctr[key_]:
                    events.append((user, "click", seen))
                if rng.random() < hide[key_]:
                    events.append((user, "hide", seen))
    add_exposures("default", experiment, rows)
    add_events("default", events)
    run_analysis(experiment)
    return experiment


def interleaved_experiment(owner, key, click: dict[str, float], users=300, days=3, seed=3):
    """An interleaving experiment of popularity (control) against the ranker in a whole
    layer: each user opens a merged closeup a day for `days` days, six pins with random
    team labels, and clicks a team's pin with that team's probability."""
    rng = random.Random(seed)
    layer = services.create_layer(key=f"layer-{key}", name=key)
    experiment = services.create_experiment(
        actor=owner, layer=layer, key=key, name=key, design="interleaving",
        variants=[{"key": "popularity", "weight": 50, "is_control": True, "recommender": {"name": "popularity"}},
                  {"key": "ranker", "weight": 50, "recommender": {"name": "ranker"}}])
    services.transition(experiment, "start", actor=owner)
    variants = list(experiment.variants.order_by("id"))
    start = datetime.now(UTC) - timedelta(days=days - 1, hours=1)
    exposures, rows = [], []
    for i in range(users):
        user = f"{key}-{i}"
        exposures.append((variants[i % 2], user, start, {}, False))
        for day in range(days):
            served, request = start + timedelta(days=day, minutes=10), uuid.uuid4()
            for position in range(6):
                team = variants[rng.random() < 0.5]
                rows.append((user, "impression", served, 100 + position, request, position, team.id))
                if rng.random() < click[team.key]:
                    rows.append((user, "click", served + timedelta(seconds=20), 100 + position, request, position,
                                 None))
    add_exposures("default", experiment, exposures)
    add_rows("default", rows)
    run_analysis(experiment)
    return experiment
