"""Assignment benchmark: in-process against the GrowthBook SDK, and over HTTP.

    python bench/assignment.py            (or: make bench-assignment)

Uses DATABASE_URL / CELERY_BROKER_URL when set (PostgreSQL, Redis), else SQLite and
the filesystem broker under var/bench-assignment/. Prints two tables.
"""

import argparse
import time

from common import bench_env, gunicorn, median, setup_django, table, wrk

N_USERS = 100_000
LAYERS = 4
PER_LAYER = 5


def pinpoint_config():
    from experiments import assignment as a

    layers = []
    for li in range(LAYERS):
        experiments = []
        for ei in range(PER_LAYER):
            width = 10_000 // PER_LAYER
            experiments.append(a.ExperimentConfig(
                id=li * PER_LAYER + ei, key=f"exp-{li}-{ei}", layer=f"layer-{li}", salt=f"salt-{li}-{ei}",
                bucket_start=ei * width, bucket_end=(ei + 1) * width, traffic_percent=100,
                allocation=a.initial_allocation({"control": 50, "treatment": 50}),
                variants={k: a.VariantConfig(id=i, key=k, recommender={"name": "popularity"}, is_control=i == 0)
                          for i, k in enumerate(("control", "treatment"))},
            ))
        layers.append((f"layer-{li}", f"layer-salt-{li}", experiments))
    return a.AssignmentConfig(version=1, surfaces={"closeup": a.build_surface(layers)})


def growthbook_experiments():
    from growthbook import Experiment

    width = 1 / PER_LAYER
    return [
        Experiment(key=f"exp-{li}-{ei}", variations=[0, 1], weights=[0.5, 0.5], coverage=1.0,
                   namespace=(f"layer-{li}", ei * width, (ei + 1) * width), seed=f"salt-{li}-{ei}", hashVersion=2)
        for li in range(LAYERS) for ei in range(PER_LAYER)
    ]


def time_pinpoint(users):
    from experiments.assignment import assign

    config = pinpoint_config()
    started = time.perf_counter()
    total = 0
    for user in users:
        total += len(assign(config, "closeup", user, {}))
    return time.perf_counter() - started, total / len(users)


def time_growthbook(users):
    from growthbook import GrowthBook

    experiments = growthbook_experiments()
    gb = GrowthBook(attributes={"id": ""})
    started = time.perf_counter()
    total = 0
    for user in users:
        gb.set_attributes({"id": user})
        total += sum(1 for e in experiments if gb.run(e).inExperiment)
    return time.perf_counter() - started, total / len(users)


def in_process(repeats: int):
    users = [f"user-{i}" for i in range(N_USERS)]
    pp, gb = [], []
    for _ in range(repeats):
        pp.append(time_pinpoint(users))
        gb.append(time_growthbook(users))
    pp_rate = N_USERS / median([t for t, _ in pp])
    gb_rate = N_USERS / median([t for t, _ in gb])
    rows = [
        ["pinpoint assign()", f"{pp_rate:,.0f}", f"{1e6 / pp_rate:.1f}", f"{pp[0][1]:.2f}",
         f"{pp_rate / gb_rate:.1f}x"],
        ["growthbook SDK run() x20", f"{gb_rate:,.0f}", f"{1e6 / gb_rate:.1f}", f"{gb[0][1]:.2f}", "1.0x"],
    ]
    print(f"\nIn-process: {N_USERS:,} users x {LAYERS * PER_LAYER} running experiments in {LAYERS} layers "
          f"(median of {repeats})")
    print(table(["evaluator", "users/s", "us/user", "experiments/user", "vs growthbook"], rows))
    return pp_rate / gb_rate


def http(seconds: int, rounds: int):
    env = bench_env("assignment")
    setup_django(env)
    from accounts.services import create_api_key
    from experiments import services
    from experiments.models import Experiment

    actor = None
    for li in range(LAYERS):
        layer = services.create_layer(key=f"layer-{li}", name=f"Layer {li}")
        for ei in range(PER_LAYER):
            width = 10_000 // PER_LAYER
            exp = services.create_experiment(
                actor=actor, layer=layer, key=f"exp-{li}-{ei}", name=f"Experiment {li}.{ei}",
                layer_buckets=(ei * width, (ei + 1) * width),
                variants=[{"key": "control", "weight": 50, "is_control": True, "recommender": {"name": "popularity"}},
                          {"key": "treatment", "weight": 50, "recommender": {"name": "board_cooccurrence"}}],
            )
            services.transition(exp, "start", actor=actor)
    assert Experiment.objects.filter(status="running").count() == LAYERS * PER_LAYER
    key = create_api_key("bench").key
    headers = f'wrk.headers["Authorization"] = "Api-Key {key}"\n'
    ping = headers + 'wrk.method = "GET"\nwrk.path = "/api/v1/ping"\n'
    assign = headers + (
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        "request = function()\n"
        '  return wrk.format(nil, "/api/v1/assignments", nil,'
        ' \'{"user_id":"user-\' .. math.random(1, 100000) .. \'","surface":"closeup"}\')\n'
        "end\n"
    )
    paced = assign + "delay = function() return 9 end\n"  # 10 connections x ~110/s = ~1,000 requests/s
    results = {"ping": [], "assign": []}
    with gunicorn(env, workers=2) as base:
        wrk(base, ping, seconds=2)
        wrk(base, assign, seconds=2)  # warm-up: config loaded, exposures of the first users sent
        for _ in range(rounds):
            results["ping"].append(wrk(base, ping, seconds=seconds))
            results["assign"].append(wrk(base, assign, seconds=seconds))
        paced_result = wrk(base, paced, seconds=seconds, connections=10)
    from config.celery_app import app

    app.control.purge()  # the exposures this bench enqueued: nobody consumes its queue

    def summary(runs):
        return (median([r["rps"] for r in runs]), median([r["p50_ms"] for r in runs]),
                median([r["p99_ms"] for r in runs]), sum(r["errors"] + r["non2xx"] for r in runs))

    ping_s, assign_s = summary(results["ping"]), summary(results["assign"])
    rows = [
        ["GET /api/v1/ping (baseline)", f"{ping_s[0]:,.0f}", f"{ping_s[1]:.2f}", f"{ping_s[2]:.2f}", ping_s[3], "100%"],
        ["POST /api/v1/assignments", f"{assign_s[0]:,.0f}", f"{assign_s[1]:.2f}", f"{assign_s[2]:.2f}", assign_s[3],
         f"{100 * assign_s[0] / ping_s[0]:.0f}%"],
        ["POST /api/v1/assignments paced", f"{paced_result['rps']:,.0f}", f"{paced_result['p50_ms']:.2f}",
         f"{paced_result['p99_ms']:.2f}", paced_result["errors"] + paced_result["non2xx"], "-"],
    ]
    print(f"\nHTTP: gunicorn, 2 workers, loopback, wrk 16 connections, median of {rounds} x {seconds} s "
          f"(paced: 10 connections, 9 ms between requests)")
    print(table(["endpoint", "requests/s", "p50 ms", "p99 ms", "errors", "vs baseline"], rows))
    return assign_s[0] / ping_s[0], paced_result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args()
    speedup = in_process(args.repeats)
    print(f"\nGoal: faster than the GrowthBook SDK in process: {'met' if speedup > 1 else 'NOT met'} ({speedup:.1f}x)")
    if not args.skip_http:
        ratio, paced = http(args.seconds, args.rounds)
        print(f"Goal: assignment throughput >= 70% of the baseline: {'met' if ratio >= 0.7 else 'NOT met'} "
              f"({100 * ratio:.0f}%)")
        print(f"Goal: p99 < 10 ms at ~1,000 requests/s: {'met' if paced['p99_ms'] < 10 else 'NOT met'} "
              f"({paced['p99_ms']:.2f} ms at {paced['rps']:,.0f}/s)")


if __name__ == "__main__":
    main()
