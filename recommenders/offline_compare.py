"""Each variant's offline numbers (from the version it serves) and the offline difference
of each treatment against the control: what the results page shows beside the online
lift. Pure: no Django; recommenders.selectors reads the rows and calls `compare`.

Where a number comes from decides whether two can be compared: NDCG on one held-out
day says nothing against NDCG on another day or on an offline dataset, so a difference
is given only between numbers from the same held-out window, or from the same dataset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

# The dataset a recommender's offline evaluation is read from when several were run:
# the synthetic one first, the closest to the pins served.
DATASET_ORDER = ("synthetic", "movielens100k")


@dataclass(frozen=True)
class Numbers:
    ndcg_at_10: float
    coverage: float | None
    users: int | None
    source: str  # in words: "held-out day 2026-12-07", "offline evaluation on synthetic"
    # Numbers are comparable only with numbers of the same key: ("holdout", start, end) or
    # ("evaluation", dataset).
    key: tuple
    note: str = ""  # how they were measured when it is not the obvious way
    evaluated: tuple = ()  # (recommender, params) of an offline evaluation row

    @property
    def described(self) -> str:
        return f"{self.source} ({self.note})" if self.note else self.source


@dataclass(frozen=True)
class Arm:
    """What the selector read for one variant."""

    variant: str
    is_control: bool
    recommender: str
    version: str | None
    offline: dict  # ModelVersion.offline; {} when never measured or the version is unknown
    gate: dict  # ModelVersion.gate


@dataclass(frozen=True)
class Evaluation:
    """A recommender's latest OfflineEvaluation (k=10) on one dataset."""

    dataset: str
    ndcg: float
    coverage: float
    users: int
    params: dict


@dataclass(frozen=True)
class VariantOffline:
    variant: str
    is_control: bool
    recommender: str
    version: str | None
    numbers: Numbers | None  # None: nothing measured this version or its recommender

    def to_json(self) -> dict:
        n = self.numbers
        return {"variant": self.variant, "is_control": self.is_control, "recommender": self.recommender,
                "version": self.version, "ndcg_at_10": n.ndcg_at_10 if n else None,
                "coverage": n.coverage if n else None, "users": n.users if n else None,
                "source": n.described if n else None}


@dataclass(frozen=True)
class OfflineDifference:
    """A treatment's offline NDCG@10 minus its control's, when the two can be compared."""

    variant: str
    baseline: str
    comparable: bool
    ndcg_change: float | None  # absolute; None unless comparable
    ndcg_relative_change: float | None  # fraction of the control's; None unless comparable and control > 0
    source: str | None  # the shared source, when comparable
    reason: str = ""  # why not comparable

    def to_json(self) -> dict:
        return {"variant": self.variant, "baseline": self.baseline, "comparable": self.comparable,
                "ndcg_change": self.ndcg_change, "ndcg_relative_change": self.ndcg_relative_change,
                "source": self.source, "reason": self.reason}


@dataclass(frozen=True)
class ExperimentOffline:
    variants: tuple[VariantOffline, ...]
    differences: tuple[OfflineDifference, ...]

    def difference(self, variant: str) -> OfflineDifference | None:
        return next((d for d in self.differences if d.variant == variant), None)

    def to_json(self) -> dict:
        return {"variants": [v.to_json() for v in self.variants],
                "comparisons": [d.to_json() for d in self.differences]}


def _finite(x) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return None
    return float(x)


def _count(x) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) and x >= 0 else None


def holdout_words(start: str, end: str) -> str:
    """"held-out day 2026-12-07" for a window of a day or less, else "held-out days
    2026-12-01 to 2026-12-06" (the end is exclusive)."""
    try:
        since, until = datetime.fromisoformat(start), datetime.fromisoformat(end)
    except (TypeError, ValueError):
        return "held-out data"
    if until - since <= timedelta(days=1):
        return f"held-out day {since.date().isoformat()}"
    last = (until - timedelta(microseconds=1)).date()
    return f"held-out days {since.date().isoformat()} to {last.isoformat()}"


def _holdout(measured: dict, start, end, note: str = "") -> Numbers | None:
    ndcg = _finite(measured.get("ndcg_at_10"))
    if ndcg is None or not isinstance(start, str) or not isinstance(end, str):
        return None
    return Numbers(ndcg, _finite(measured.get("coverage")), _count(measured.get("users")),
                   holdout_words(start, end), ("holdout", start, end), note)


def own_holdout(arm: Arm) -> Numbers | None:
    offline = arm.offline if isinstance(arm.offline, dict) else {}
    return _holdout(offline, offline.get("holdout_start"), offline.get("holdout_end"))


def _baseline_by_gate(control: Arm, treatments: list[Arm]) -> Numbers | None:
    """The control's version measured on a treatment's held-out window by that treatment's
    gate (a retrain measures the version in use beside the new one): the same data, so the
    two are comparable even when the control's own numbers are from an older window."""
    for t in treatments:
        gate = t.gate if isinstance(t.gate, dict) else {}
        mine = own_holdout(t)
        if (mine is None or t.recommender != control.recommender or control.version is None
                or gate.get("baseline_version") != control.version or not isinstance(gate.get("baseline"), dict)):
            continue
        found = _holdout(gate["baseline"], mine.key[1], mine.key[2], f"measured by {t.variant}'s gate")
        if found is not None:
            return found
    return None


def _evaluation(arm: Arm, evaluations: dict[str, dict[str, Evaluation]], dataset: str | None) -> Numbers | None:
    by_dataset = evaluations.get(arm.recommender) or {}
    row = by_dataset.get(dataset) if dataset else None
    if row is None:
        return None
    return Numbers(row.ndcg, row.coverage, row.users, f"offline evaluation on {row.dataset}",
                   ("evaluation", row.dataset), evaluated=(arm.recommender, repr(sorted(row.params.items()))))


def _shared_dataset(arms: list[Arm], evaluations: dict[str, dict[str, Evaluation]]) -> str | None:
    """The dataset every arm's recommender was evaluated on (DATASET_ORDER first); else
    the first any of them was, so each still shows a number."""
    sets = [set(evaluations.get(a.recommender) or {}) for a in arms]
    ranked = sorted(set().union(*sets), key=lambda d: (DATASET_ORDER.index(d) if d in DATASET_ORDER
                                                       else len(DATASET_ORDER), d))
    shared = [d for d in ranked if all(d in s for s in sets)]
    return (shared or ranked or [None])[0]


def compare(arms: list[Arm], evaluations: dict[str, dict[str, Evaluation]]) -> ExperimentOffline:
    """The numbers of each arm, and each treatment's difference from the control. An arm
    whose version has no held-out numbers shows its recommender's offline evaluation."""
    control = next((a for a in arms if a.is_control), arms[0] if arms else None)
    treatments = [a for a in arms if a is not control]
    numbers: dict[str, Numbers | None] = {a.variant: own_holdout(a) for a in arms}
    if control is not None:
        own = numbers[control.variant]
        windows = {numbers[t.variant].key for t in treatments if numbers[t.variant] is not None}
        if own is None or own.key not in windows:
            numbers[control.variant] = _baseline_by_gate(control, treatments) or own
    missing = [a for a in arms if numbers[a.variant] is None]
    dataset = _shared_dataset(missing, evaluations) if missing else None
    for a in missing:
        numbers[a.variant] = _evaluation(a, evaluations, dataset) or _evaluation(
            a, evaluations, _shared_dataset([a], evaluations))
    variants = tuple(VariantOffline(a.variant, a is control, a.recommender, a.version, numbers[a.variant])
                     for a in arms)
    differences = tuple(difference(t.variant, numbers[t.variant], control.variant, numbers[control.variant])
                        for t in treatments) if control is not None else ()
    return ExperimentOffline(variants, differences)


def difference(variant: str, treatment: Numbers | None, baseline: str, control: Numbers | None) -> OfflineDifference:
    """The comparability rule: both measured, on the same held-out window or the same
    dataset; and not one evaluation row read for both (same recommender and params,
    which cannot tell two versions apart)."""
    def no(reason: str) -> OfflineDifference:
        return OfflineDifference(variant, baseline, False, None, None, None, reason)

    if treatment is None and control is None:
        return no("no offline numbers for either variant")
    if treatment is None or control is None:
        return no(f"no offline numbers for {variant if treatment is None else baseline}")
    if treatment.key != control.key:
        return no(f"not comparable: {variant}'s numbers are from the {treatment.source}, {baseline}'s from the "
                  f"{control.source}")
    if treatment.evaluated and treatment.evaluated == control.evaluated:
        return no(f"not comparable: both read the same offline evaluation of {treatment.evaluated[0]}, which "
                  "scores the recommender, not its versions")
    change = treatment.ndcg_at_10 - control.ndcg_at_10
    relative = change / control.ndcg_at_10 if control.ndcg_at_10 > 0 else None
    return OfflineDifference(variant, baseline, True, change, relative, control.source)
