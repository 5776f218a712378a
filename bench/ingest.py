"""Ingestion benchmark: events per second end to end (HTTP batches in, rows committed
in PostgreSQL) beside a raw COPY of the same rows into the same table, and worker
memory after a million events.

    python bench/ingest.py          (or: make bench-ingest)

Needs DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis); the bench makes a
database of its own on that server. 2 gunicorn workers, 2 Celery worker processes.
"""

import argparse
import sys
import time
import uuid
from datetime import UTC, datetime

from common import (
    bench_env,
    celery_worker,
    gunicorn,
    median,
    process_family,
    processes,
    rss_mb,
    setup_django,
    table,
    wrk,
)

LUA = r"""
local key = "{KEY}"
local ts = "{TS}"
local types = {"impression", "impression", "impression", "impression", "click", "save", "closeup", "hide"}
local counter = 0
accepted = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Api-Key " .. key
request = function()
  counter = counter + 1
  local parts = {}
  for i = 1, {BATCH} do
    parts[i] = string.format(
      '{"event_id":"%08x-%04x-4000-8000-%012x","user_id":"user-%d","type":"%s","pin_id":%d,"position":%d,"timestamp":"%s"{EXTRA}}',
      counter, {RUN}, i, (counter * 7919 + i) % 100000, types[(i % 8) + 1], (counter + i) % 50000, i % 25, ts)
  end
  return wrk.format(nil, "/api/v1/events", nil, '{"events":[' .. table.concat(parts, ",") .. ']}')
end
"""


# --values: every event carries a value and two properties, as a client measuring dwell time would send.
WITH_VALUES = ',"value":5230.5,"properties":{"platform":"ios","app_version":"12.3.1"}'


def lua(key: str, ts: str, batch: int, run: int, extra: str = "") -> str:
    return (LUA.replace("{KEY}", key).replace("{TS}", ts).replace("{BATCH}", str(batch)).replace("{RUN}", str(run))
            .replace("{EXTRA}", extra))






def event_count() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM experiments_event")
        return cursor.fetchone()[0]


def accepted_total() -> int:
    from django.db.models import Sum

    from events.models import EventBatch

    return EventBatch.objects.aggregate(n=Sum("n_accepted"))["n"] or 0


def raw_copy_rate(n: int) -> float:
    """COPY n fresh rows straight into the partitioned events table: the ceiling."""
    from django.db import connection

    now = datetime.now(UTC)
    rows = [(str(uuid.uuid4()), now, f"user-{i % 100000}", "impression", i % 50000, None, i % 25, None, now)
            for i in range(n)]
    raw = connection.connection
    started = time.perf_counter()
    with raw.cursor() as cur, cur.copy(
        "COPY experiments_event (event_id, occurred_at, user_id, type, pin_id, request_id, position, batch_id, "
        "received_at) FROM STDIN"
    ) as copy:
        for r in rows:
            copy.write_row(r)
    raw.commit()
    return n / (time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=35, help="load duration (about 1M events at 30k/s)")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--copy-rows", type=int, default=200_000)
    parser.add_argument("--copy-repeats", type=int, default=3)
    parser.add_argument("--values", action="store_true",
                        help="every event with a value and two properties (the cost of issue 20's event fields)")
    args = parser.parse_args()
    extra = WITH_VALUES if args.values else ""

    env = bench_env("ingest")
    if not env.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("bench/ingest.py measures PostgreSQL: set DATABASE_URL=postgres://… and CELERY_BROKER_URL=redis://…")
    setup_django(env)
    from accounts.services import create_api_key
    from config.celery_app import app

    app.control.purge()
    key = create_api_key("bench").key
    worker = celery_worker(env, 2)
    try:
        with gunicorn(env, workers=2) as base:
            ts = datetime.now(UTC).isoformat()
            warm = lua(key, ts, args.batch, 1, extra)
            wrk(base, warm, seconds=2, connections=2)
            from events.models import EventBatch

            deadline = time.monotonic() + 120
            while EventBatch.objects.filter(status="pending").exists() and time.monotonic() < deadline:
                time.sleep(0.2)  # the warm-up fully stored before the measured run starts
            rss_start = rss_mb(process_family(worker.pid))
            before = event_count()
            accepted_before = accepted_total()
            started = time.monotonic()
            result = wrk(base, lua(key, ts, args.batch, 2, extra),
                         seconds=args.seconds, connections=args.connections)
            http_done = time.monotonic()
            # From the inbox, not from wrk: wrk does not count the requests in flight when it stops.
            time.sleep(1)  # let the requests wrk left in flight finish
            sent = accepted_total() - accepted_before
            while event_count() - before < sent and time.monotonic() - http_done < 300:
                time.sleep(0.2)
            stored = event_count() - before
            elapsed = time.monotonic() - started
            rss_end = rss_mb(process_family(worker.pid))
    finally:
        processes.stop(worker, timeout=30)

    copy_rates = [raw_copy_rate(args.copy_rows) for _ in range(args.copy_repeats)]
    copy_rate = median(copy_rates)
    e2e = stored / elapsed
    http_rate = sent / (http_done - started)
    print(f"\nIngestion on PostgreSQL: {args.seconds} s of wrk ({args.connections} connections, "
          f"{args.batch} events per request{', each with a value and 2 properties' if args.values else ''}), "
          "gunicorn 2 workers, Celery 2 processes")
    print(table(
        ["measure", "events/s", "vs raw COPY", "notes"],
        [
            ["HTTP accepted (202)", f"{http_rate:,.0f}", f"{http_rate / copy_rate:.0%}",
             f"p50 {result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms per request, "
             f"{result['errors'] + result['non2xx']} errors"],
            ["end to end (sent -> committed)", f"{e2e:,.0f}", f"{e2e / copy_rate:.0%}",
             f"{stored:,} of {sent:,} accepted events stored in {elapsed:.1f} s"],
            [f"raw COPY (median of {args.copy_repeats})", f"{copy_rate:,.0f}", "100%",
             f"{args.copy_rows:,} rows into the same partitioned table"],
        ],
    ))
    print(table(["worker memory (main + 2 pool processes)", "MB"],
                [["after warm-up", f"{rss_start:.0f}"], [f"after {stored:,} more events", f"{rss_end:.0f}"]]))
    print(f"\nGoal: >= 30,000 events/s end to end: {'met' if e2e >= 30_000 else 'NOT met'} ({e2e:,.0f}/s)")
    app.control.purge()


if __name__ == "__main__":
    main()
