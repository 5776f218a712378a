from django.core.management.base import BaseCommand, CommandError

from recommenders import services
from recommenders.synthetic import generate_world


class Command(BaseCommand):
    help = "Replace the catalog with a seeded synthetic Pinterest-like world."

    def add_arguments(self, parser):
        parser.add_argument("--pins", type=int, default=2000)
        parser.add_argument("--users", type=int, default=500)
        parser.add_argument("--topics", type=int, default=12)
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, pins, users, topics, seed, **options):
        if pins < 10 or users < 1 or topics < 1:
            raise CommandError("need at least 10 pins, 1 user and 1 topic")
        counts = services.import_world(generate_world(n_pins=pins, n_users=users, n_topics=topics, seed=seed))
        self.stdout.write(", ".join(f"{v:,} {k}" for k, v in counts.items()))
