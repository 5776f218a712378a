from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from analysis import validation


class Command(BaseCommand):
    help = ("Measure the false positive rate, CI coverage, power, peeking, SRM, CUPED and interleaving by simulation "
            "with the production analysis code; write docs/validation.md and its PNG plots.")

    def add_arguments(self, parser):
        parser.add_argument("--runs", type=int, default=1000, help="simulated experiments per check (A/A: 4×)")
        parser.add_argument("--seed", type=int, default=20261126)
        parser.add_argument("--out", default=str(Path(settings.BASE_DIR) / "docs" / "validation.md"))

    def handle(self, *args, runs, seed, out, **options):
        if runs < 10:
            raise CommandError("--runs must be at least 10")
        out = Path(out)
        images = out.parent / "images"
        try:
            images.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CommandError(f"cannot write to {out.parent}: {exc}") from exc

        def bar(total, desc):
            return tqdm(total=total, desc=desc, unit="run", file=self.stderr, leave=False)

        sections = validation.run(runs=runs, seed=seed, out_dir=images, progress_factory=bar)
        out.write_text(validation.markdown(sections, runs, seed, "images/"))
        for section in sections:
            for line in section.summary:
                self.stdout.write(line)
        failed = [s.title for s in sections if not all(s.passed)]
        self.stdout.write(f"wrote {out} ({'all targets met' if not failed else 'not met: ' + '; '.join(failed)})")
