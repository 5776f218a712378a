"""The recommender interface and registry. Pure: numpy and scipy, no Django.

Every recommender answers one question: given weighted query pins (the opened pin,
and the user's recent pins as further, lighter queries, as Pixie does), which pins
go in the grid? `related()` is the closeup request; `for_user()` is the same with
the history alone, which the offline protocol needs.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from recommenders.data import InteractionData

Query = Sequence[tuple[int, float]]  # (pin index, weight)


@dataclass(frozen=True)
class Param:
    kind: type
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    help: str = ""

    def check(self, name: str, value) -> list[str]:
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.kind) or (self.kind is not bool and isinstance(value, bool)):
            return [f"{name} must be {self.kind.__name__}."]
        if self.minimum is not None and value < self.minimum:
            return [f"{name} must be at least {self.minimum}."]
        if self.maximum is not None and value > self.maximum:
            return [f"{name} must be at most {self.maximum}."]
        return []


class Recommender(ABC):
    name: ClassVar[str]
    description: ClassVar[str] = ""
    params: ClassVar[dict[str, Param]] = {}
    # The closeup stages it can serve: the whole list, the candidates (retrieval), or
    # the order of someone else's candidates (ranking, which needs `rank`).
    stages: ClassVar[tuple[str, ...]] = ("whole", "retrieval")
    HISTORY_WEIGHT: ClassVar[float] = 0.3  # the whole history counts this much against the opened pin
    HISTORY_LENGTH: ClassVar[int] = 20

    def __init__(self, **params):
        errors = validate_params(type(self), params)
        if errors:
            raise ValueError("; ".join(errors))
        self.config = {k: params.get(k, p.default) for k, p in self.params.items()}
        self.n_pins = 0

    # --- learning and persistence ---
    @abstractmethod
    def fit(self, data: InteractionData) -> Recommender: ...

    @abstractmethod
    def state(self) -> dict[str, np.ndarray]:
        """Arrays that, with the params, restore a fitted recommender."""

    @abstractmethod
    def restore(self, state: dict[str, np.ndarray]) -> None: ...

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / "state.npz", **self.state())
        (folder / "params.json").write_text(json.dumps({"name": self.name, "params": self.config}))

    @classmethod
    def load(cls, folder: Path) -> Recommender:
        meta = json.loads((folder / "params.json").read_text())
        instance = REGISTRY[meta["name"]](**meta["params"])
        with np.load(folder / "state.npz", allow_pickle=False) as npz:
            instance.restore({k: npz[k] for k in npz.files})
        return instance

    # --- serving ---
    @abstractmethod
    def score(self, query: Query, user_topics: np.ndarray | None) -> np.ndarray:
        """A score for every pin (higher is better); -inf or 0 where nothing is known."""

    def _ranked(self, query: Query, k: int, banned: Iterable[int], user_topics) -> list[tuple[int, float]]:
        scores = np.array(self.score(query, user_topics), dtype=np.float64)
        banned = np.fromiter(banned, dtype=np.int64)
        if banned.size:
            scores[banned] = -np.inf
        return top_k(scores, k)

    @classmethod
    def closeup_query(cls, pin: int, history: Query) -> list[tuple[int, float]]:
        """The opened pin, then the user's recent pins as lighter queries that together
        weigh HISTORY_WEIGHT of it."""
        recent = [(p, w) for p, w in history[-cls.HISTORY_LENGTH:] if p != pin]
        total = sum(w for _, w in recent) or 1.0
        return [(pin, 1.0), *((p, w * cls.HISTORY_WEIGHT / total) for p, w in recent)]

    def related(self, pin: int, history: Query, k: int, exclude: Iterable[int] = (), user_topics=None):
        """The closeup grid under `pin`. History pins are lighter queries, not
        exclusions: only the opened pin and the excluded (hidden) pins never show."""
        return self._ranked(self.closeup_query(pin, history), k, [pin, *exclude], user_topics)

    def for_user(self, history: Query, k: int, exclude: Iterable[int] = (), user_topics=None):
        """Pins for a user from their whole history; history pins are not repeated."""
        if not history:
            return []
        return self._ranked(list(history), k, [*(p for p, _ in history), *exclude], user_topics)


def with_recent(history: Query, recent: Query) -> list[tuple[int, float]]:
    """The history with `recent` engagements (newest first) at its end, newest last,
    each pin once: `closeup_query` reads the tail of a history as the user's recent
    pins, so the engagements of the last minutes must sit there, not ahead of a built
    history longer than HISTORY_LENGTH. A recent pin also in the history keeps its
    larger weight (the next build counts the same engagements again)."""
    if not recent:
        return list(history)
    weights: dict[int, float] = {}
    for pin, weight in recent:
        weights[pin] = weights.get(pin, 0.0) + weight
    built = dict(history)
    newest_last = list(dict.fromkeys(p for p, _ in recent))[::-1]
    return [*((p, w) for p, w in history if p not in weights),
            *((p, max(weights[p], built.get(p, 0.0))) for p in newest_last)]


def top_topics(pin_topic: np.ndarray, history: Query, top: int = 3) -> np.ndarray | None:
    """The user's `top` topics by engagement weight; None without a history."""
    if not history:
        return None
    pins = np.fromiter((p for p, _ in history), dtype=np.int64)
    weights = np.fromiter((w for _, w in history), dtype=np.float64)
    return np.argsort(-np.bincount(pin_topic[pins], weights=weights))[:top]


def top_k(scores: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The k best scores, best first. Only positive scores are candidates, so a
    retriever that knows little returns fewer than k pins rather than noise."""
    valid = np.isfinite(scores) & (scores > 0)
    n = int(valid.sum())
    if n == 0 or k <= 0:
        return []
    k = min(k, n)
    masked = np.where(valid, scores, -np.inf)
    idx = np.argpartition(-masked, k - 1)[:k]
    idx = idx[np.lexsort((idx, -masked[idx]))]  # by score, ties by index: deterministic
    return [(int(i), float(masked[i])) for i in idx]


REGISTRY: dict[str, type[Recommender]] = {}


def register(cls: type[Recommender]) -> type[Recommender]:
    REGISTRY[cls.name] = cls
    return cls


def validate_params(cls: type[Recommender], params: dict) -> list[str]:
    if not isinstance(params, dict):
        return ["params must be an object."]
    unknown = sorted(set(params) - set(cls.params))
    errors = [f"Unknown params for {cls.name}: {', '.join(unknown)}."] if unknown else []
    for key, value in params.items():
        if key in cls.params:
            errors += cls.params[key].check(key, value)
    return errors
