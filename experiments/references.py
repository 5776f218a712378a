"""What an experiment names but another app owns: recommenders (recommenders app) and
metrics (analysis app). Those apps sit above experiments, so each registers how to
check a name when it starts (its AppConfig.ready), and experiments imports neither.
A name nobody registered a check for is accepted as it is."""

from collections.abc import Callable, Iterable

RecommenderCheck = Callable[[str, dict, str], list[str]]  # (name, params, stage) -> error messages
MetricLookup = Callable[[Iterable[str]], set[str]]  # metric keys -> those that exist

_recommender_check: RecommenderCheck | None = None
_metric_lookup: MetricLookup | None = None


def register_recommender_check(check: RecommenderCheck) -> None:
    global _recommender_check
    _recommender_check = check


def register_metric_lookup(lookup: MetricLookup) -> None:
    global _metric_lookup
    _metric_lookup = lookup


def recommender_errors(name: str, params: dict, stage: str = "whole") -> list[str]:
    return _recommender_check(name, params, stage) if _recommender_check else []


def known_metrics(keys: Iterable[str]) -> set[str]:
    keys = list(keys)
    return _metric_lookup(keys) if _metric_lookup else set(keys)
