"""The offline gate a retrained version must pass before it may be served: on held-out
recent data, no worse than the version in use by more than a set margin on NDCG@10
and on catalog coverage, over enough users to tell. Pure: no Django."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OfflineMetrics:
    ndcg_at_10: float
    coverage: float  # share of the catalog that appears in some user's top 10
    users: int  # held-out users the numbers average over

    def as_dict(self) -> dict:
        return {"ndcg_at_10": self.ndcg_at_10, "coverage": self.coverage, "users": self.users}


@dataclass(frozen=True)
class GateRule:
    max_ndcg_drop: float
    max_coverage_drop: float
    min_users: int


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reasons: tuple[str, ...]  # why it failed; empty when it passed
    ndcg_change: float | None  # candidate minus baseline; None without a baseline
    coverage_change: float | None

    def as_dict(self) -> dict:
        return {"passed": self.passed, "reasons": list(self.reasons), "ndcg_change": self.ndcg_change,
                "coverage_change": self.coverage_change}


def decide(candidate: OfflineMetrics, baseline: OfflineMetrics | None, rule: GateRule) -> GateResult:
    """Fails closed: too few held-out users is a failure, not a pass, since a version
    nobody could measure must not reach users. Without a baseline (the first version
    of a recommender) only the number of users is checked."""
    reasons = []
    if candidate.users < rule.min_users:
        reasons.append(f"only {candidate.users} held-out users with an engagement (the gate needs "
                       f"{rule.min_users})")
    if baseline is None:
        return GateResult(not reasons, tuple(reasons), None, None)
    ndcg_change = candidate.ndcg_at_10 - baseline.ndcg_at_10
    coverage_change = candidate.coverage - baseline.coverage
    if ndcg_change < -rule.max_ndcg_drop:
        reasons.append(f"NDCG@10 {candidate.ndcg_at_10:.4f} is {-ndcg_change:.4f} below the version in use's "
                       f"{baseline.ndcg_at_10:.4f} (at most {rule.max_ndcg_drop:.4f} allowed)")
    if coverage_change < -rule.max_coverage_drop:
        reasons.append(f"coverage {candidate.coverage:.1%} is {-coverage_change * 100:.1f} pp below the version "
                       f"in use's {baseline.coverage:.1%} (at most {rule.max_coverage_drop * 100:.1f} pp allowed)")
    return GateResult(not reasons, tuple(reasons), ndcg_change, coverage_change)
