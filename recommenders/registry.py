"""Registered recommenders by name; the experiments app validates variant configs here."""

from recommenders import learned, ranker, retrievers  # noqa: F401  (registers them)
from recommenders.base import REGISTRY, Recommender, validate_params


def names() -> list[str]:
    return sorted(REGISTRY)


def get(name: str) -> type[Recommender]:
    return REGISTRY[name]


def validate_config(name: str, params: dict) -> list[str]:
    """Messages for a variant's {"name", "params"}; empty when it is valid."""
    if name not in REGISTRY:
        return [f"Unknown recommender {name!r}; registered: {', '.join(names())}."]
    return validate_params(REGISTRY[name], params)


def create(name: str, params: dict | None = None) -> Recommender:
    return REGISTRY[name](**(params or {}))
