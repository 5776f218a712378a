"""Live history benchmark: what the per-user recent history costs where it is written
(the ingestion worker's store_batch) and where it is read (the closeup), each beside a
baseline with LIVE_HISTORY off measured in the same run, rounds alternating the modes.

    python bench/live_history.py ingest [--rounds 5 --batches 20 --batch 1000]
    python bench/live_history.py closeup [--rounds 5 --requests 400 --pins 20000]

`ingest` stores freshly accepted inbox batches (a quarter of the events clicks and saves,
100,000 users) with store_batch, as a worker does, and reports events/s. `closeup` times
serve_closeup in process (the endpoint's work without HTTP, which live history does not
change) for users with a full live history, with Redis refusing connections, and with
a Redis that accepts and never answers (each round starts by paying its timeout once).

Needs DATABASE_URL (PostgreSQL; the bench makes a database of its own) and a Redis for
the history: LIVE_HISTORY_REDIS_URL, else REDIS_CACHE_URL, else redis://127.0.0.1:6379/0.
"""

import argparse
import os
import random
import socket
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime

from common import ROOT, bench_env, median, processes, setup_django, table

TYPES = ("impression", "impression", "impression", "impression", "click", "save", "closeup", "hide")


def _env() -> dict:
    env = bench_env("live-history")
    if not env.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("bench/live_history.py measures PostgreSQL: set DATABASE_URL=postgres://…")
    env["LIVE_HISTORY_REDIS_URL"] = (os.environ.get("LIVE_HISTORY_REDIS_URL") or os.environ.get("REDIS_CACHE_URL")
                                     or "redis://127.0.0.1:6379/0")
    env["RECOMMENDER_MODELS_DIR"] = str(ROOT / "var" / "bench-live-history" / "models")
    return env


def _modes(redis_url: str) -> dict[str, dict]:
    return {"off (baseline)": {"LIVE_HISTORY": False, "LIVE_HISTORY_REDIS_URL": redis_url},
            "on, Redis": {"LIVE_HISTORY": True, "LIVE_HISTORY_REDIS_URL": redis_url},
            "on, process memory": {"LIVE_HISTORY": True, "LIVE_HISTORY_REDIS_URL": ""}}


def _apply(mode: dict) -> None:
    from django.conf import settings

    for name, value in mode.items():
        setattr(settings, name, value)


def _inbox_batches(n: int, size: int, run: int) -> list[int]:
    from events import ingestion

    now = datetime.now(UTC).isoformat()
    ids = []
    for b in range(n):
        events = [{"event_id": str(uuid.uuid4()), "user_id": f"user-{(run * 7919 + b * size + i) % 100_000}",
                   "type": TYPES[i % len(TYPES)], "pin_id": (run + b + i) % 50_000, "position": i % 25,
                   "timestamp": now} for i in range(size)]
        ids.append(ingestion.accept(events, source="bench").batch_id)
    return ids


def ingest(args) -> None:
    env = _env()
    setup_django(env)
    from events import ingestion, live_history

    # The bench calls store_batch itself: no task is sent to a broker nobody consumes.
    ingestion.enqueue = lambda batch_id: None
    modes = _modes(env["LIVE_HISTORY_REDIS_URL"])
    _apply(modes["off (baseline)"])
    ingestion.store_batch(_inbox_batches(2, args.batch, 0)[0])  # partitions made, connections warm
    rates: dict[str, list[float]] = {m: [] for m in modes}
    run = 1
    for r in range(args.rounds):
        order = list(modes)[r % len(modes):] + list(modes)[: r % len(modes)]
        for name in order:
            _apply(modes[name])
            ids = _inbox_batches(args.batches, args.batch, run)
            run += 1
            started = time.perf_counter()
            for batch_id in ids:
                ingestion.store_batch(batch_id)
            rates[name].append(args.batches * args.batch / (time.perf_counter() - started))
    failures = live_history.counters.write_failures
    _apply(modes["on, Redis"])
    live_history.store().clear()
    base = median(rates["off (baseline)"])
    print(f"\nstore_batch with the live history write beside without: {args.rounds} rounds of {args.batches} "
          f"batches x {args.batch} events (a quarter clicks and saves), modes alternating; history write "
          f"failures: {failures}")
    print(table(["mode", "events/s (median)", "min", "max", "vs off"],
                [[m, f"{median(v):,.0f}", f"{min(v):,.0f}", f"{max(v):,.0f}", f"{median(v) / base:.1%}"]
                 for m, v in rates.items()]))
    worst = min(median(v) / base for v in rates.values())
    print(f"\nGoal: within 10% of the baseline: {'met' if worst >= 0.9 else 'NOT met'} (worst {worst:.1%})")


def closeup(args) -> None:
    env = _env()
    env["RECOMMENDER_TIMEOUT_MS"] = "30000"  # time the work, not the fallback
    setup_django(env)
    import numpy as np
    from django.conf import settings

    from events import live_history
    from recommenders import services
    from recommenders.serving import current_models
    from recommenders.synthetic import generate_world
    from serving import closeup as serving_closeup
    from serving.closeup import serve_closeup

    world = generate_world(n_pins=args.pins, n_users=int(args.pins * 0.2), seed=7)
    services.build_all(["popularity", "pixie"], data=world.data)
    data = world.data
    rng = random.Random(7)
    users = [data.user_ids[i] for i in rng.sample(range(len(data.user_ids)), args.users)]
    opened = {u: int(data.pin_ids[data.history(u)[0][0]]) if data.history(u) else 1 for u in users}
    redis_url = env["LIVE_HISTORY_REDIS_URL"]
    hung = socket.socket()  # accepts connections and never answers: a hung Redis
    hung.bind(("127.0.0.1", 0))
    hung.listen(64)
    modes = {"off (baseline)": {"LIVE_HISTORY": False, "LIVE_HISTORY_REDIS_URL": redis_url},
             "on, Redis, 20 live pins a user": {"LIVE_HISTORY": True, "LIVE_HISTORY_REDIS_URL": redis_url},
             "on, Redis refusing connections": {"LIVE_HISTORY": True,
                                                "LIVE_HISTORY_REDIS_URL": f"redis://127.0.0.1:{processes.free_port()}/0"},
             "on, Redis hung (50 ms timeout)": {"LIVE_HISTORY": True,
                                                "LIVE_HISTORY_REDIS_URL": f"redis://127.0.0.1:{hung.getsockname()[1]}/0"}}
    _apply(modes["on, Redis, 20 live pins a user"])
    live_history.store().clear()
    pins = data.pin_ids
    live_history.store().append({u: [(int(pins[rng.randrange(len(pins))]), 1.0)
                                      for _ in range(settings.LIVE_HISTORY_LENGTH)] for u in users})
    results = {}
    for recommender in ("popularity", "pixie"):
        settings.DEFAULT_RECOMMENDER = recommender
        current_models()
        for u in users[:50]:  # restores and caches warm
            serve_closeup(opened[u], u, 25, {})
        timings: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
        for r in range(args.rounds):
            order = list(modes)[r % len(modes):] + list(modes)[: r % len(modes)]
            for name in order:
                _apply(modes[name])
                serving_closeup._live_history.reset()
                ms = []
                for i in range(args.requests):
                    u = users[i % len(users)]
                    started = time.perf_counter()
                    serve_closeup(opened[u], u, 25, {})
                    ms.append((time.perf_counter() - started) * 1000)
                timings[name].append((float(np.percentile(ms, 50)), float(np.percentile(ms, 99))))
        results[recommender] = timings
    hung.close()
    _apply(modes["on, Redis, 20 live pins a user"])
    live_history.store().clear()
    print(f"\nserve_closeup in process, k=25, {args.pins:,} pins, {args.rounds} rounds of {args.requests} requests "
          f"per mode ({args.users} users), modes alternating; medians over rounds")
    rows = []
    for recommender, timings in results.items():
        base50 = statistics.median(p50 for p50, _ in timings["off (baseline)"])
        base99 = statistics.median(p99 for _, p99 in timings["off (baseline)"])
        for name, values in timings.items():
            p50 = statistics.median(v for v, _ in values)
            p99 = statistics.median(v for _, v in values)
            rows.append([recommender, name, f"{p50:.2f}", f"{p99:.2f}", f"{p50 / base50:.2f}x", f"{p99 / base99:.2f}x"])
    print(table(["recommender", "mode", "p50 ms", "p99 ms", "p50 vs off", "p99 vs off"], rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="part", required=True)
    p = sub.add_parser("ingest")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--batches", type=int, default=20, help="inbox batches per mode and round")
    p.add_argument("--batch", type=int, default=1000, help="events per batch")
    c = sub.add_parser("closeup")
    c.add_argument("--rounds", type=int, default=5)
    c.add_argument("--requests", type=int, default=400, help="closeups per mode and round")
    c.add_argument("--pins", type=int, default=20_000)
    c.add_argument("--users", type=int, default=200)
    args = parser.parse_args()
    ingest(args) if args.part == "ingest" else closeup(args)


if __name__ == "__main__":
    main()
