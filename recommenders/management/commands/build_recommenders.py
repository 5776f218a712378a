from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from recommenders import registry, services


class Command(BaseCommand):
    help = "Build the catalog and every registered recommender (or those named) into a new active version."

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", help=f"default: all of {', '.join(registry.names())}")

    def handle(self, *args, names, **options):
        todo = names or registry.names()
        bar = tqdm(total=len(todo) + 1, desc="building", unit="model", file=self.stderr)

        def step(name):
            bar.set_postfix_str(name)
            bar.update(1)

        try:
            rows = services.build_all(todo, progress=step)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            bar.close()
        for v in rows:
            self.stdout.write(f"{v.name:20s} {v.version}  {v.build_seconds:7.2f} s  {v.size_bytes / 1e6:8.2f} MB")
        self.stdout.write(f"Active version: {rows[0].version}")
