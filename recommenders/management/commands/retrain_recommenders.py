from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from recommenders import jobs, registry
from recommenders.models import BuildJob
from recommenders.retraining import RetrainError


class Command(BaseCommand):
    help = ("Retrain now, as the daily beat job does: build from the last RETRAIN_WINDOW_DAYS, gate each new "
            "version on the held-out last day against the version in use, start an experiment if the surface's "
            "retrain policy says so.")

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*",
                            help=f"default: RETRAIN_RECOMMENDERS, else all of {', '.join(registry.names())}")

    def handle(self, *args, names, **options):
        unknown = sorted(set(names) - set(registry.names()))
        if unknown:
            raise CommandError(f"unknown recommenders: {', '.join(unknown)}")
        job = BuildJob.objects.create(kind=BuildJob.Kind.RETRAIN, names=names)
        bar = tqdm(total=1, desc="retraining", unit="step", file=self.stderr)

        def echo(progress_job):
            bar.total = max(progress_job.steps_total, 1)
            bar.n = progress_job.steps_done
            bar.set_postfix_str(progress_job.step[:60])

        try:
            done = jobs.run(job.pk, echo=echo)
        except RetrainError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            bar.close()
        summary = done.summary
        window = summary["window"]
        self.stdout.write(f"Version {summary['version']}: trained on {summary['training_engagements']:,} engagements "
                          f"of {summary['training_users']:,} users ({window['train_start'][:16]} to "
                          f"{window['holdout_start'][:16]} UTC); gated on {summary['holdout_users']:,} held-out users")
        self.stdout.write(f"{'recommender':20s} {'NDCG@10':>8s} {'in use':>8s} {'cover':>7s}  verdict")
        for name, verdict in summary["gate"].items():
            baseline = verdict["baseline_ndcg_at_10"]
            self.stdout.write(f"{name:20s} {verdict['ndcg_at_10']:8.4f} "
                              f"{(f'{baseline:.4f}' if baseline is not None else '—'):>8s} {verdict['coverage']:7.1%}  "
                              + ("passed" if verdict["passed"] else "FAILED: " + "; ".join(verdict["reasons"])))
        self.stdout.write(summary["experiment_note"])
        if not settings.RETRAIN_ENABLED:
            self.stdout.write("(RETRAIN_ENABLED is off: the daily beat job does not run.)")
