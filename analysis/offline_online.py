"""Offline beside online: a treatment's offline NDCG@10 change against its online result
(the primary metric's relative lift for an A/B test, the preference Δ for interleaving),
whether the two point the same way, and across experiments how often they do and how
well one ranks the other (Spearman). Pure: no Django; analysis.selectors reads the rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats

from analysis.report import Report
from recommenders.offline_compare import ExperimentOffline, OfflineDifference

MIN_FOR_CORRELATION = 3  # below it a rank correlation is ±1 or undefined: no information


@dataclass(frozen=True)
class OnlineReading:
    """What the results page reads first for one treatment: fixed horizon, no CUPED."""

    kind: str  # "relative_lift" (A/B) or "preference_delta" (interleaving)
    metric: str  # the primary metric's name, or "preference" for interleaving
    value: float | None
    ci_low: float | None
    ci_high: float | None
    significant: bool
    higher_is_better: bool = True
    enough_data: bool = True

    @property
    def improvement(self) -> float | None:
        """The value signed so that + is better (a lower-is-better metric's fall is +)."""
        if self.value is None:
            return None
        return self.value if self.higher_is_better else -self.value

    def to_json(self) -> dict:
        return {"kind": self.kind, "metric": self.metric, "value": self.value, "ci_low": self.ci_low,
                "ci_high": self.ci_high, "significant": self.significant,
                "higher_is_better": self.higher_is_better, "enough_data": self.enough_data}


def online_reading(report: Report | None, variant: str) -> OnlineReading | None:
    """A treatment's online result in its report; None without one."""
    if report is None:
        return None
    block = report.interleaving
    if block is not None:
        if block.treatment != variant:
            return None
        return OnlineReading("preference_delta", "preference", block.delta, block.ci_low, block.ci_high,
                             bool(block.significant), True, block.enough_data)
    primary = report.primary
    c = next((c for c in primary.comparisons if c.variant == variant), None) if primary else None
    if c is None:
        return None
    if not c.enough_data:  # no interval and no verdict below the minimum data, as on the results page
        return OnlineReading("relative_lift", primary.name, c.relative_lift, None, None, False,
                             primary.direction != "lower", False)
    return OnlineReading("relative_lift", primary.name, c.relative_lift, c.ci_low, c.ci_high, bool(c.significant),
                         primary.direction != "lower", True)


def _sign(x: float | None) -> int | None:
    if x is None or not math.isfinite(x):
        return None
    return (x > 0) - (x < 0)


def agreement(offline: OfflineDifference | None, online: OnlineReading | None) -> bool | None:
    """Do offline NDCG and the online result move the same way (better both, or worse
    both)? None when either is missing, not comparable, or exactly no change."""
    if offline is None or not offline.comparable or online is None:
        return None
    a, b = _sign(offline.ndcg_change), _sign(online.improvement)
    if not a or not b:
        return None
    return a == b


@dataclass(frozen=True)
class Row:
    """One treatment of one experiment against its control."""

    experiment: str  # key
    name: str
    status: str
    design: str
    variant: str
    baseline: str
    variant_label: str  # "pixie@20261207T0300"
    baseline_label: str
    offline: OfflineDifference | None
    online: OnlineReading | None

    @property
    def agrees(self) -> bool | None:
        return agreement(self.offline, self.online)

    @property
    def paired(self) -> bool:
        """Both numbers exist: the row counts in the summary."""
        return (self.offline is not None and self.offline.comparable and self.offline.ndcg_relative_change is not None
                and self.online is not None and self.online.improvement is not None)

    def to_json(self) -> dict:
        return {"experiment": self.experiment, "name": self.name, "status": self.status, "design": self.design,
                "variant": self.variant, "baseline": self.baseline, "variant_recommender": self.variant_label,
                "baseline_recommender": self.baseline_label,
                "offline": self.offline.to_json() if self.offline else None,
                "online": self.online.to_json() if self.online else None, "agree": self.agrees}


def rows_of(key: str, name: str, status: str, design: str, offline: ExperimentOffline,
            report: Report | None) -> list[Row]:
    def label(v) -> str:
        return f"{v.recommender}@{v.version}" if v.version else f"{v.recommender} (no version)"

    arms = {v.variant: v for v in offline.variants}
    out = []
    for d in offline.differences:
        out.append(Row(key, name, status, design, d.variant, d.baseline, label(arms[d.variant]),
                       label(arms[d.baseline]), d, online_reading(report, d.variant)))
    return out


@dataclass(frozen=True)
class Summary:
    rows: int  # treatments listed
    paired: int  # with a comparable offline change and an online result
    agree: int  # of those that point somewhere, the ones that point the same way
    directed: int  # paired rows where neither number is exactly 0
    spearman: float | None  # offline relative NDCG change against online improvement; None below 3 pairs
    spearman_p: float | None

    def to_json(self) -> dict:
        return {"rows": self.rows, "paired": self.paired, "directed": self.directed, "agree": self.agree,
                "spearman": self.spearman, "spearman_p": self.spearman_p}


def spearman(x: list[float], y: list[float]) -> tuple[float | None, float | None]:
    """scipy's Spearman ρ and its p-value; None for fewer than three pairs or a constant side."""
    if len(x) < MIN_FOR_CORRELATION or len(set(x)) < 2 or len(set(y)) < 2:
        return None, None
    result = stats.spearmanr(x, y)
    rho, p = float(result.statistic), float(result.pvalue)
    return (rho if math.isfinite(rho) else None), (p if math.isfinite(p) else None)


def summarize(rows: list[Row]) -> Summary:
    paired = [r for r in rows if r.paired]
    directed = [r for r in paired if r.agrees is not None]
    rho, p = spearman([r.offline.ndcg_relative_change for r in paired], [r.online.improvement for r in paired])
    return Summary(len(rows), len(paired), sum(1 for r in directed if r.agrees), len(directed), rho, p)
