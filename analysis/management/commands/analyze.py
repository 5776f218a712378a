import json
import re

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from analysis import services
from analysis.exports import report_csv
from analysis.models import AnalysisReport
from analysis.report import Report
from experiments.models import Experiment


def _pct(x) -> str:
    return "—" if x is None else f"{x * 100:+.2f}%"


def _points(x) -> str:
    return "—" if x is None else f"{x * 100:+.1f} pp"


class Command(BaseCommand):
    help = "Analyse an experiment now, store the report and print its metrics (or the report as JSON or CSV)."

    def add_arguments(self, parser):
        parser.add_argument("key", help="the experiment's key")
        parser.add_argument("--segment-by", help="an exposure attribute to split results by (platform, country…)")
        parser.add_argument("--no-cuped", action="store_true", help="leave out the CUPED adjustment")
        parser.add_argument("--format", choices=["table", "json", "csv"], default="table")
        parser.add_argument("--backfill-series", action="store_true",
                            help="recompute every day of the daily series from the events")
        parser.add_argument("--phase", type=int, help="the phase to analyse (default: the current one)")

    def handle(self, *args, key, segment_by, no_cuped, format, backfill_series, phase=None, **options):
        experiment = Experiment.objects.filter(key=key).first()
        if experiment is None:
            raise CommandError(f"no experiment with key {key!r}")
        if segment_by and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", segment_by):
            raise CommandError("--segment-by takes an attribute name: letters, digits, _ . -")
        with tqdm(total=len(services.STEPS), desc=f"analysing {key}", unit="step", file=self.stderr) as bar:
            def progress(step):
                bar.set_postfix_str(step)
                bar.update(1)
            try:
                report = services.run_analysis(experiment, trigger=AnalysisReport.Trigger.MANUAL,
                                               segment_by=segment_by, cuped=not no_cuped, progress=progress,
                                               backfill_series=backfill_series, phase=phase)
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from exc
            except services.AnalysisBusy as exc:
                raise CommandError(f"{exc}; try again shortly") from exc
            except services.AnalysisFailed as exc:
                raise CommandError(f"analysis failed (report {exc.report.pk}): {exc.report.error}") from exc
        if format == "json":
            self.stdout.write(json.dumps(services.report_body(report), default=str, indent=2))
            return
        result = Report.from_json(report.results)
        if format == "csv":
            self.stdout.write(report_csv(result, report.pk, str(report.computed_at)), ending="")
            return
        self._table(key, report, result)

    def _table(self, key: str, report: AnalysisReport, result: Report):
        srm = result.srm
        self.stdout.write(f"{key}: report {report.pk}, {result.users:,} users, {report.duration_ms} ms")
        flag = "FLAGGED: sample ratio mismatch" if srm.flagged else "ok"
        self.stdout.write(f"SRM p = {srm.p_value if srm.p_value is not None else '—'} ({flag})")
        if (block := result.interleaving) is not None:
            verdict = (f"winner: {block.winner}" if block.winner else "no preference yet" if block.enough_data
                       else f"not enough data yet (about {block.more_users:,} more users with a click)")
            ci = f"[{_points(block.ci_low)}, {_points(block.ci_high)}]"
            p = "—" if block.p_value is None else f"{block.p_value:.4g}"
            self.stdout.write(f"interleaving: {block.users:,} users with a credited click or save; "
                              + ", ".join(f"{team} preferred by {n:,}" for team, n in block.wins.items())
                              + f", {block.ties:,} tied; delta {_points(block.delta)} {ci}, p = {p}; {verdict}")
        self.stdout.write(f"{'metric':20s} {'role':9s} {'variant':14s} {'users':>9s} {'mean':>10s} "
                          f"{'lift':>9s} {'95% CI':>20s} {'p':>8s}  significant")
        for block in result.metrics:
            comparisons = {c.variant: c for c in block.comparisons}
            for v in block.variants:
                c = comparisons.get(v.variant)
                mean = "—" if v.mean is None else f"{v.mean:.4f}"
                if c is None:
                    self.stdout.write(f"{block.metric:20s} {block.role:9s} {v.variant:14s} "
                                      f"{v.users:>9,} {mean:>10s}   (control)")
                    continue
                ci = f"[{_pct(c.ci_low)}, {_pct(c.ci_high)}]"
                p = "—" if c.p_value is None else f"{c.p_value:.4f}"
                self.stdout.write(f"{block.metric:20s} {block.role:9s} {v.variant:14s} {v.users:>9,} "
                                  f"{mean:>10s} {_pct(c.relative_lift):>9s} {ci:>20s} {p:>8s}  "
                                  f"{_verdict(c)}")


def _verdict(c) -> str:
    if c.enough_data:
        return "yes" if c.significant else "no"
    more = c.minimum_data.more_users if c.minimum_data else None
    return f"not enough data yet (about {more:,} more users)" if more else "not enough data yet"
