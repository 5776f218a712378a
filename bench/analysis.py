"""Analysis benchmark: one full analysis of an experiment (3 variants, the 6 built-in
metrics with CUPED, the daily series) beside one `SELECT count(*)` over the events
table, at 100,000, 1,000,000 and 10,000,000 events (10 per user: 10,000 to 1,000,000
users), all generated here and loaded with COPY.

    python bench/analysis.py          (or: make bench-analysis)
    python bench/analysis.py --sizes 100000,1000000   (smaller)

Needs DATABASE_URL (PostgreSQL); the bench makes a database of its own on that server.
Goal at 10M events: under 10 s, and within 5× the count(*).
"""

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta

import numpy as np
from common import bench_env, median, setup_django, table
from tqdm import tqdm

TYPES = np.array(["impression", "click", "save", "closeup", "hide"])
TYPE_P = [0.70, 0.12, 0.06, 0.08, 0.04]
CHUNK = 500_000
HEADERS = ["events", "users", "count(*) s", "GROUP BY user s", "analysis s", "× count(*)", "× GROUP BY user",
           "of it: moments s",
           "first analysis s", "of it: series backfill s", "bench RSS MB"]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def load(experiment, variants, n_events: int, now: datetime, rng) -> None:
    """n_events/10 exposed users over the last 10 days; each event of a random user,
    from 3 days before that user's exposure (the CUPED pre-period) to now."""
    from django.db import connection

    from events import storage

    n_users = n_events // 10
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE experiments_event")
        cursor.execute("DELETE FROM experiments_exposure")
    horizon = 10 * 86400
    t0 = now.timestamp() - rng.uniform(0, horizon, size=n_users)
    variant_ids = np.array([v.id for v in variants])[rng.integers(0, len(variants), size=n_users)]
    platforms = np.array(['{"platform": "ios"}', '{"platform": "android"}', '{"platform": "web"}'])
    attrs = platforms[rng.integers(0, 3, size=n_users)]
    storage.ensure_partitions({(now - timedelta(days=d)).date() for d in range(0, 15)})
    raw = connection.connection
    with connection.wrap_database_errors, raw.cursor() as cur:
        with cur.copy("COPY experiments_exposure (experiment_id, variant_id, user_id, first_exposed_at, attributes, "
                      "forced) FROM STDIN") as copy:
            stamps = np.datetime_as_string((t0 * 1e6).astype("datetime64[us]"), unit="us")
            for i in range(n_users):
                copy.write(f"{experiment.id}\t{variant_ids[i]}\tu{i}\t{stamps[i]}Z\t{attrs[i]}\tf\n")
        with tqdm(total=n_events, desc=f"COPY {n_events:,} events", unit="ev", file=sys.stderr) as bar:
            done = 0
            while done < n_events:
                n = min(CHUNK, n_events - done)
                users = rng.integers(0, n_users, size=n)
                start = t0[users] - 3 * 86400
                t = start + rng.uniform(0, 1, size=n) * (now.timestamp() - start)
                stamps = np.datetime_as_string((t * 1e6).astype("datetime64[us]"), unit="us")
                types = TYPES[rng.choice(len(TYPES), size=n, p=TYPE_P)]
                ids = rng.integers(0, 2**63, size=(n, 2), dtype=np.int64)
                received = now.isoformat()
                with cur.copy("COPY experiments_event (event_id, occurred_at, user_id, type, pin_id, received_at) "
                              "FROM STDIN") as copy:
                    lines = [f"{a:016x}{b:016x}\t{s}Z\tu{u}\t{ty}\t{u % 5000}\t{received}\n"
                             for a, b, s, u, ty in zip(ids[:, 0], ids[:, 1], stamps, users, types, strict=True)]
                    copy.write("".join(lines))
                done += n
                bar.update(n)
    raw.commit()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE experiments_event")
        cursor.execute("VACUUM ANALYZE experiments_exposure")


def timed(fn, repeat: int):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return median(times), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        sys.exit("bench/analysis.py needs DATABASE_URL=postgres://… (it makes a database of its own there)")
    env = bench_env("analysis")
    setup_django(env)
    from django.db import connection

    from analysis import services
    from experiments.models import Experiment, Layer, Variant

    now = datetime.now(UTC).replace(microsecond=0)
    layer = Layer.objects.create(key="bench", name="Bench")
    experiment = Experiment.objects.create(key="bench", name="Bench", layer=layer, bucket_start=0, bucket_end=10_000,
                                           status="running", started_at=now - timedelta(days=10))
    variants = [Variant.objects.create(experiment=experiment, key=k, weight=w, is_control=k == "control",
                                       recommender={"name": "popularity"})
                for k, w in (("control", 34), ("board", 33), ("ranker", 33))]
    rng = np.random.default_rng(1)
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        load(experiment, variants, size, now, rng)

        def count():
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM experiments_event")
                return cursor.fetchone()[0]

        assert count() == size

        def per_user():
            # The least any per-user analysis must do: group every event by its user.
            with connection.cursor() as cursor:
                cursor.execute("SET work_mem = '256MB'")
                cursor.execute("SELECT count(*) FROM (SELECT user_id, count(*) FROM experiments_event "
                               "GROUP BY user_id) s")
                return cursor.fetchone()[0]
        steps: dict[str, list[float]] = {}

        def analyse(steps=steps, backfill=False):
            last = [time.perf_counter()]

            def progress(step):
                steps.setdefault(step, []).append(time.perf_counter() - last[0])
                last[0] = time.perf_counter()
            services.run_analysis(experiment, trigger="manual", as_of=now, progress=progress,
                                  backfill_series=backfill)

        count()  # warm the cache for both, the same way
        # The first analysis of an experiment computes every day of the series from the
        # events; the scheduled ones after it carry past days over.
        first, _ = timed(lambda: analyse(backfill=True), 1)
        backfill_s = steps["daily series"][0]
        steps.clear()
        scan, _ = timed(count, args.repeat)
        grouped, _ = timed(per_user, args.repeat)
        full, _ = timed(analyse, args.repeat)
        rows.append([f"{size:,}", f"{size // 10:,}", scan, grouped, full, full / scan, full / grouped,
                     median(steps["per-variant statistics"]), first, backfill_s, rss_mb()])
        print(table(HEADERS, [rows[-1]]), file=sys.stderr)
    print()
    print(f"Analysis of 3 variants × 6 metrics (CUPED, daily series), median of {args.repeat}; the first "
          f"analysis (series backfilled from the events) once; PostgreSQL, {os.cpu_count()} cores")
    print(table(HEADERS, rows))
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        growth = last[4] / first[4]
        scale = int(last[0].replace(",", "")) / int(first[0].replace(",", ""))
        print(f"\n{scale:,.0f}× the events took {growth:,.1f}× the time (linear would be {scale:,.0f}×)")


if __name__ == "__main__":
    main()
