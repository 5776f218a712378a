"""The events table: vendor-specific DDL, day partitions, and the bulk write.

PostgreSQL: `experiments_event` is partitioned by RANGE (occurred_at), one partition
per UTC day, named experiments_event_pYYYYMMDD. The primary key (event_id,
occurred_at) carries the partition key, as PostgreSQL requires of every unique
constraint on a partitioned table. A batch is written with COPY into a temporary
staging table and one INSERT … SELECT … ON CONFLICT DO NOTHING, whose row count is
the number of new events (the rest were duplicates).

SQLite (`make run` only): a plain table with the same key, written with one
executemany of INSERT … ON CONFLICT DO NOTHING.
"""

import json
import logging
import threading
import uuid
from datetime import UTC, date, datetime, timedelta

from django.db import DatabaseError, connection, transaction

logger = logging.getLogger(__name__)

TABLE = "experiments_event"
COLUMNS = ("event_id", "occurred_at", "user_id", "type", "pin_id", "request_id", "position", "team", "value",
           "properties", "batch_id", "received_at")
STAGING = f"event_staging_{len(COLUMNS)}"

# The table as experiments' migration 0002 made it; later columns come by migration
# (events 0003: `team`, an interleaved impression's variant; 0004: `value` and
# `properties`), so this text stays as run.
_POSTGRES_DDL = f"""
CREATE TABLE {TABLE} (
    event_id uuid NOT NULL,
    occurred_at timestamptz NOT NULL,
    user_id varchar(255) NOT NULL,
    type varchar(16) NOT NULL,
    pin_id bigint NOT NULL,
    request_id uuid NULL,
    position integer NULL,
    batch_id bigint NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (event_id, occurred_at)
) PARTITION BY RANGE (occurred_at);
CREATE INDEX {TABLE}_user_time ON {TABLE} (user_id, occurred_at);
CREATE INDEX {TABLE}_request ON {TABLE} (request_id) WHERE request_id IS NOT NULL;
"""

_SQLITE_DDL = f"""
CREATE TABLE {TABLE} (
    event_id char(32) NOT NULL,
    occurred_at datetime NOT NULL,
    user_id varchar(255) NOT NULL,
    type varchar(16) NOT NULL,
    pin_id bigint NOT NULL,
    request_id char(32) NULL,
    position integer NULL,
    batch_id bigint NULL,
    received_at datetime NOT NULL,
    PRIMARY KEY (event_id, occurred_at)
);
CREATE INDEX {TABLE}_user_time ON {TABLE} (user_id, occurred_at);
"""


def is_postgres(conn=None) -> bool:
    return (conn or connection).vendor == "postgresql"


def create_table(schema_editor) -> None:
    ddl = _POSTGRES_DDL if schema_editor.connection.vendor == "postgresql" else _SQLITE_DDL
    for statement in filter(None, (s.strip() for s in ddl.split(";"))):
        schema_editor.execute(statement)


def drop_table(schema_editor) -> None:
    schema_editor.execute(f"DROP TABLE IF EXISTS {TABLE}")


# --- Partitions ---------------------------------------------------------------------

_known_days: set[date] = set()
_known_lock = threading.Lock()


def partition_name(day: date) -> str:
    return f"{TABLE}_p{day:%Y%m%d}"


def ensure_partitions(days) -> list[str]:
    """Create the day partitions that do not exist yet; returns the names created.

    Call it outside the transaction that writes events: creating a partition locks
    the parent table until its transaction ends, so it gets a short one of its own.
    """
    if not is_postgres():
        return []
    created = []
    for day in sorted(set(days) - _known_days):
        name = partition_name(day)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s)", [name])
            if cursor.fetchone()[0] is None:
                try:
                    with transaction.atomic():
                        cursor.execute(
                            f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {TABLE} FOR VALUES FROM (%s) TO (%s)",
                            [start, start + timedelta(days=1)],
                        )
                    created.append(name)
                except DatabaseError:  # another worker made it between our check and create
                    cursor.execute("SELECT to_regclass(%s)", [name])
                    if cursor.fetchone()[0] is None:
                        raise
        with _known_lock:
            _known_days.add(day)
    return created


def missing_partitions(days) -> set[date]:
    """The days among these whose partition this process has not seen yet (and may
    have to create with ensure_partitions, outside the writing transaction)."""
    if not is_postgres():
        return set()
    with _known_lock:
        return set(days) - _known_days


def existing_partitions() -> list[tuple[str, date]]:
    if not is_postgres():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s ORDER BY 1", [TABLE]
        )
        names = [r[0] for r in cursor.fetchall()]
    return [(n, datetime.strptime(n.rsplit("_p", 1)[1], "%Y%m%d").date()) for n in names]


def drop_partitions_before(day: date) -> list[str]:
    """Retention: drop whole days older than `day` (a DELETE on SQLite)."""
    if not is_postgres():
        with connection.cursor() as cursor:
            cutoff = datetime(day.year, day.month, day.day, tzinfo=UTC)
            cursor.execute(f"DELETE FROM {TABLE} WHERE occurred_at < %s",
                           [connection.ops.adapt_datetimefield_value(cutoff)])
        return []
    dropped = []
    with connection.cursor() as cursor:
        for name, d in existing_partitions():
            if d < day:
                cursor.execute(f"DROP TABLE IF EXISTS {name}")
                dropped.append(name)
    with _known_lock:
        _known_days.difference_update({d for d in _known_days if d < day})
    return dropped


def forget_known_partitions() -> None:
    with _known_lock:
        _known_days.clear()


# --- Writing ------------------------------------------------------------------------


def insert_events(rows: list[list], batch_id: int | None) -> int:
    """Store events (rows as produced by events.validate_events); returns how many
    were new. Runs inside the caller's transaction; call ensure_partitions(days_of(rows))
    before it."""
    if not rows:
        return 0
    received = datetime.now(UTC)
    if is_postgres():
        return _insert_postgres(rows, batch_id, received)
    return _insert_sqlite(rows, batch_id, received)


def days_of(rows) -> set[date]:
    days = set()
    for r in rows:
        try:
            days.add(datetime.fromisoformat(r[1]).astimezone(UTC).date())
        except (TypeError, ValueError):
            pass  # a bad row fails on insert and is dead-lettered there
    return days


def _extras(row) -> tuple:
    """(team, value, properties as JSON text): the columns after the seventh, where a
    row has them (events/validation.py)."""
    properties = row[9] if len(row) > 9 else None
    return (row[7] if len(row) > 7 else None, row[8] if len(row) > 8 else None,
            None if properties is None else json.dumps(properties, separators=(",", ":")))


def _insert_postgres(rows, batch_id, received) -> int:
    raw = connection.connection
    # The raw psycopg cursor (for COPY) raises psycopg's errors: wrap them into
    # Django's, so callers tell bad data (DataError) from a lost server (OperationalError).
    with connection.wrap_database_errors, raw.cursor() as cur:
        # Named for its columns: a connection that made the staging table before a
        # migration added columns must not COPY the new ones into the old shape.
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {STAGING} (LIKE {TABLE} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        with cur.copy(f"COPY {STAGING} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row((*r[:7], *_extras(r), batch_id, received))
        cur.execute(
            f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) SELECT {', '.join(COLUMNS)} FROM {STAGING} "
            "ON CONFLICT DO NOTHING"
        )
        inserted = cur.rowcount
        cur.execute(f"TRUNCATE {STAGING}")
    return inserted


def _insert_sqlite(rows, batch_id, received) -> int:
    adapt = connection.ops.adapt_datetimefield_value
    values = [
        (uuid.UUID(r[0]).hex, adapt(datetime.fromisoformat(r[1])), r[2], r[3], r[4],
         uuid.UUID(r[5]).hex if r[5] else None, r[6], *_extras(r), batch_id, adapt(received))
        for r in rows
    ]
    placeholders = ", ".join(["%s"] * len(COLUMNS))
    with connection.cursor() as cursor:
        before = connection.connection.total_changes
        cursor.executemany(
            f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({placeholders}) ON CONFLICT DO NOTHING", values
        )
        return connection.connection.total_changes - before
