import time

from django.conf import settings
from django.core.management.base import BaseCommand
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from demo import seed
from recommenders.services import CATALOG


class Command(BaseCommand):
    help = "Create the demo users, API key, catalog, recommenders and experiment (idempotent), with progress."

    def handle(self, *args, **options):
        console = Console(file=self.stdout, highlight=False)
        steps = 4

        def step(number: int, what: str, work):
            started = time.perf_counter()
            console.print(f"[{number}/{steps}] {what}…")
            result = work()
            console.print(f"      done in {time.perf_counter() - started:.1f} s")
            return result

        key = step(1, "Demo users and API key", lambda: seed.users_and_key(settings.DEMO_PASSWORD))
        step(2, "Synthetic catalog (pins, boards, saves)", seed.catalog)
        names = seed.recommenders_to_build()
        if names:
            step(3, f"Building {len(names)} recommenders (a minute or so on two cores)",
                 lambda: self._build(console, names))
        else:
            console.print(f"[3/{steps}] Recommenders already built")
        step(4, "Demo experiment and its 30-second analysis schedule", seed.experiment)
        self.stdout.write(f"Demo login: admin / {settings.DEMO_PASSWORD} (also experimenter, viewer)")
        self.stdout.write(f"Demo API key: {key}")

    def _build(self, console, names):
        order = [CATALOG, *names]  # build_all reports each as it finishes
        columns = (TextColumn("      {task.description:<20}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as progress:
            task = progress.add_task(order[0], total=len(order))

            def built(name):
                following = order.index(name) + 1
                progress.update(task, advance=1,
                                description=order[following] if following < len(order) else "activating")

            seed.build_recommenders(built)
