"""Registered recommenders by name; the experiments app validates variant configs here."""

from recommenders import learned, ranker, retrievers  # noqa: F401  (registers them)
from recommenders.base import REGISTRY, Recommender, validate_params


def names() -> list[str]:
    return sorted(REGISTRY)


def get(name: str) -> type[Recommender]:
    return REGISTRY[name]


def validate_config(name: str, params: dict, stage: str = "whole") -> list[str]:
    """Messages for a variant's {"name", "params"} in a layer of `stage`; empty when it is valid."""
    if name not in REGISTRY:
        return [f"Unknown recommender {name!r}; registered: {', '.join(names())}."]
    cls = REGISTRY[name]
    if stage not in cls.stages:
        fits = [n for n in names() if stage in REGISTRY[n].stages]
        return [f"{name} cannot serve the {stage} stage; recommenders that can: {', '.join(fits)}."]
    return validate_params(cls, params)


def create(name: str, params: dict | None = None) -> Recommender:
    return REGISTRY[name](**(params or {}))
