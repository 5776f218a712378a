"""What an experiment names but another app owns: recommenders (recommenders app) and
metrics (analysis app). Those apps sit above experiments, so each registers how to
check a name when it starts (its AppConfig.ready), and experiments imports neither.
A name nobody registered a check for is accepted as it is.

Model versions too: a variant may pin one, and starting an experiment freezes the
active version into variants that pin none, so the recommenders app registers how to
list a recommender's built versions."""

from collections.abc import Callable, Iterable

RecommenderCheck = Callable[[str, dict, str], list[str]]  # (name, params, stage) -> error messages
MetricLookup = Callable[[Iterable[str]], set[str]]  # metric keys -> those that exist
# name -> (active version, servable versions newest first, {version that failed its gate: why})
VersionLookup = Callable[[str], tuple[str | None, list[str], dict[str, str]]]

_recommender_check: RecommenderCheck | None = None
_metric_lookup: MetricLookup | None = None
_version_lookup: VersionLookup | None = None


def register_recommender_check(check: RecommenderCheck) -> None:
    global _recommender_check
    _recommender_check = check


def register_metric_lookup(lookup: MetricLookup) -> None:
    global _metric_lookup
    _metric_lookup = lookup


def register_version_lookup(lookup: VersionLookup) -> None:
    global _version_lookup
    _version_lookup = lookup


def recommender_errors(name: str, params: dict, stage: str = "whole") -> list[str]:
    return _recommender_check(name, params, stage) if _recommender_check else []


def known_metrics(keys: Iterable[str]) -> set[str]:
    keys = list(keys)
    return _metric_lookup(keys) if _metric_lookup else set(keys)


def active_version(name: str) -> str | None:
    """The version a variant that pins none serves now; None when none is built (or nobody registered)."""
    return _version_lookup(name)[0] if _version_lookup else None


def version_errors(name: str, version) -> list[str]:
    if not isinstance(version, str) or not version.strip():
        return ["version must be the name of a built version (a string)."]
    if _version_lookup is None:
        return []
    _, built, refused = _version_lookup(name)
    if version in built:
        return []
    if version in refused:
        return [f"{name}@{version} failed its offline gate and is never served: {refused[version]}."]
    newest = ", ".join(built[:5]) or "none yet"
    return [f"{name} has no version {version!r}; built (newest first): {newest}."]
