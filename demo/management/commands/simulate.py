import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from demo.processes import http_get
from demo.seed import saved_demo_key
from demo.simulator import Config, Simulator
from recommenders.synthetic import DEMO_WORLD, generate_world


def _lift(text: str) -> tuple[str, float]:
    key, _, factor = text.partition("=")
    try:
        value = float(factor)
    except ValueError:
        value = -1.0
    if not key or value <= 0:
        raise CommandError(f"--lift takes VARIANT=FACTOR with FACTOR > 0 (1.05 is +5%), not {text!r}")
    return key, value


class Command(BaseCommand):
    help = ("Drive Pinpoint over HTTP like a client app (assignment, closeup, clicks, saves, hides) with users of the "
            "synthetic world, whose engagement probabilities are known; optionally lift one variant, drop or "
            "duplicate events.")

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default=f"http://{settings.SERVE_HOST}:{settings.SERVE_PORT}")
        parser.add_argument("--api-key", help="default: the demo key in var/demo-api-key")
        parser.add_argument("--users", type=int, default=1000, help="visits (one person opening one pin each)")
        parser.add_argument("--rate", type=float, default=0.0, help="visits per second (0: as fast as it goes)")
        parser.add_argument("--duration", type=float, help="stop after this many seconds")
        parser.add_argument("--lift", action="append", default=[], metavar="VARIANT=FACTOR",
                            help="multiply the engagement of users served a variant (the known true effect); "
                                 "EXPERIMENT:VARIANT=FACTOR names the experiment too")
        parser.add_argument("--drop", type=float, default=0.0, help="share of engagement events not sent")
        parser.add_argument("--duplicate", type=float, default=0.0, help="share of events sent twice")
        parser.add_argument("--threads", type=int, default=4, help="visits in flight at once")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--quiet", action="store_true", help="no progress bar")

    def handle(self, *args, **o):
        if not 0 <= o["drop"] < 1 or not 0 <= o["duplicate"] < 1:
            raise CommandError("--drop and --duplicate are shares between 0 and 1")
        if o["users"] < 1 or o["threads"] < 1:
            raise CommandError("--users and --threads must be at least 1")
        key = o["api_key"]
        if not key:
            key = saved_demo_key()
            if not key:
                raise CommandError("no --api-key and no demo key (run `python manage.py seed_demo` first)")
        config = Config(base_url=o["base_url"], api_key=key, users=o["users"], rate=o["rate"],
                        duration=o["duration"], lift=dict(_lift(x) for x in o["lift"]), drop=o["drop"],
                        duplicate=o["duplicate"], threads=o["threads"], seed=o["seed"])
        simulator = Simulator(generate_world(**DEMO_WORLD), config)
        if http_get(f"{config.base_url}/healthz", timeout=5)[0] != 200:
            raise CommandError(f"cannot reach {config.base_url} (no answer from /healthz)")
        with tqdm(total=config.users, desc="simulating", unit="visit", file=sys.stderr,
                  disable=o["quiet"]) as bar:
            stats = simulator.run(progress=bar.update)
        s = stats.summary()
        self.stdout.write(f"visits {s['visits']:,}, errors {s['errors']}, events sent {s['events_sent']:,} "
                          f"(accepted {s['accepted']:,}, rejected {s['rejected']}, dropped on purpose "
                          f"{s['events_dropped']:,}, duplicated on purpose {s['duplicates_sent']:,})")
        for variant, v in sorted(s["by_variant"].items()):
            ctr = v["clicks"] / v["impressions"] if v["impressions"] else 0
            true = v["expected_clicks"] / v["impressions"] if v["impressions"] else 0
            self.stdout.write(f"  {variant:16s} users {v['users']:>7,}  impressions {v['impressions']:>9,}  "
                              f"CTR {ctr:.4f}  (true {true:.4f})")
        for team, v in sorted(s["by_team"].items()):
            ctr = v["clicks"] / v["impressions"] if v["impressions"] else 0
            self.stdout.write(f"  interleaved {team}: its pins shown {v['impressions']:,} times, clicked "
                              f"{v['clicks']:,} (CTR {ctr:.4f})")
