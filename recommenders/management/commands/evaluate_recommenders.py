from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from recommenders import movielens, offline, registry
from recommenders.models import OfflineEvaluation

# Microsoft Recommenders' README, "Algorithm Comparison", MovieLens 100k, k = 10.
PUBLISHED = {"BiVAE": 0.475, "BPR": 0.442, "SAR": 0.382}


class Command(BaseCommand):
    help = "Evaluate every registered recommender offline (NDCG@10, P@10, R@10, MAP, coverage) and store the table."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", choices=["synthetic", "movielens100k"], default="synthetic")
        parser.add_argument("names", nargs="*", help=f"default: all of {', '.join(registry.names())}")

    def handle(self, *args, dataset, names, **options):
        unknown = set(names) - set(registry.names())
        if unknown:
            raise CommandError(f"unknown recommenders: {', '.join(sorted(unknown))}")
        try:
            split = (offline.movielens_split(Path(settings.VAR_DIR) / "datasets") if dataset == "movielens100k"
                     else offline.synthetic_split())
        except movielens.DatasetUnavailable as exc:
            raise CommandError(str(exc)) from exc
        todo = names or registry.names()
        with tqdm(total=len(todo), desc=f"evaluating on {dataset}", unit="model", file=self.stderr) as bar:
            results = offline.evaluate_all(split, todo, progress=lambda n: (bar.set_postfix_str(n), bar.update(1)))
        header = f"{'recommender':20s} {'NDCG@10':>8s} {'P@10':>7s} {'R@10':>7s} {'MAP':>7s} {'cover':>6s} " \
                 f"{'build s':>8s} {'p99 ms':>7s}  params"
        self.stdout.write(f"{dataset}: {split.train.n_pins:,} items, {len(split.relevant):,} test users")
        self.stdout.write(header)
        for r in results:
            m = r.metrics
            OfflineEvaluation.objects.create(
                dataset=dataset, recommender=r.recommender, params=r.params, k=offline.K, ndcg=m.ndcg,
                precision=m.precision, recall=m.recall, map=m.map, coverage=m.coverage, users=m.users,
                build_seconds=r.build_seconds, p99_ms=r.p99_ms)
            self.stdout.write(f"{r.recommender:20s} {m.ndcg:8.3f} {m.precision:7.3f} {m.recall:7.3f} {m.map:7.3f} "
                              f"{m.coverage:6.3f} {r.build_seconds:8.2f} {r.p99_ms:7.2f}  {r.params}")
        if dataset == "movielens100k":
            self.stdout.write("Published (Microsoft Recommenders, same protocol): "
                              + ", ".join(f"{k} {v}" for k, v in PUBLISHED.items()))
