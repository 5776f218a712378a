import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.conf import settings
from django.db import connections

from experiments.models import Experiment, Exposure, Layer, Variant

# Every database the analysis SQL must work on in this run: PostgreSQL and SQLite in CI.
ALIASES = ["default"] + (["sqlite"] if "sqlite" in settings.DATABASES else [])
EVENT_COLUMNS = "event_id, occurred_at, user_id, type, pin_id, request_id, position, batch_id, received_at"


def make_experiment(alias, key, weights=(50, 50), names=None, status="running", started_at=None):
    layer = Layer.objects.using(alias).create(key=f"layer-{key}", name=f"Layer {key}")
    exp = Experiment.objects.using(alias).create(
        key=key, name=key, layer=layer, bucket_start=0, bucket_end=10_000, status=status,
        started_at=started_at or datetime.now(UTC) - timedelta(days=3),
    )
    names = names or ["control"] + [f"treatment{i}" for i in range(1, len(weights))]
    variants = [
        Variant.objects.using(alias).create(experiment=exp, key=k, weight=w, is_control=i == 0,
                                            recommender={"name": "popularity"})
        for i, (k, w) in enumerate(zip(names, weights, strict=True))
    ]
    return exp, variants


def add_exposures(alias, exp, rows):
    """rows: (variant, user_id, first_exposed_at, attributes, forced)"""
    Exposure.objects.using(alias).bulk_create([
        Exposure(experiment=exp, variant=v, user_id=u, first_exposed_at=t, attributes=a or {}, forced=f)
        for v, u, t, a, f in rows
    ])


def add_events(alias, events):
    """events: (user_id, type, occurred_at); written the way ingestion writes them."""
    conn = connections[alias]
    if conn.vendor == "postgresql":
        from events import storage

        storage.forget_known_partitions()  # a rolled-back test may have made (and lost) some
        storage.ensure_partitions({t.astimezone(UTC).date() for _, _, t in events})
    adapt = conn.ops.adapt_datetimefield_value
    now = datetime.now(UTC)
    with conn.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO experiments_event ({EVENT_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(uuid.uuid4().hex, adapt(t), u, typ, 1, None, None, None, adapt(now)) for u, typ, t in events],
        )


ROW_COLUMNS = "event_id, occurred_at, user_id, type, pin_id, request_id, position, team, batch_id, received_at"


def add_rows(alias, rows):
    """rows: (user_id, type, occurred_at, pin_id, request_id, position, team), as ingestion stores them."""
    conn = connections[alias]
    if conn.vendor == "postgresql":
        from events import storage

        storage.forget_known_partitions()
        storage.ensure_partitions({r[2].astimezone(UTC).date() for r in rows})
    adapt = conn.ops.adapt_datetimefield_value
    now = datetime.now(UTC)
    hexed = (lambda r: r.hex) if conn.vendor != "postgresql" else (lambda r: r)
    with conn.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO experiments_event ({ROW_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(hexed(uuid.uuid4()), adapt(t), u, typ, pin, hexed(req) if req else None, pos, team, None, adapt(now))
             for u, typ, t, pin, req, pos, team in rows],
        )


def clear_events(alias):
    with connections[alias].cursor() as cursor:
        cursor.execute("DELETE FROM experiments_event")


@pytest.fixture
def rng():
    return np.random.default_rng(20261125)
