"""A learned ranker (LightGBM LambdaRank) over the union of the retrievers' candidates,
as in Pinterest's Related Pins: retrieval from several sources, then one model that
orders what they found.

Training: each user's interactions are split 80/20; the retrievers are fitted on the
80%, and for sampled users a query is built as the closeup would build it (one of
their pins, plus the rest of their history as lighter queries); the label of a
candidate is whether it is in the user's held-out 20%. The retrievers are then
refitted on all the data for serving, and the ranker keeps their states in its own.
"""

from __future__ import annotations

import numpy as np

from recommenders import evaluation
from recommenders.base import REGISTRY, Param, Query, Recommender, register, top_k, top_topics
from recommenders.data import InteractionData, from_edges

SOURCES = {
    "popularity": {},
    "board_cooccurrence": {},
    "pixie": {"steps": 5000},
    "embedding": {"factors": 32},
    "ease": {"max_items": 3000},
}


@register
class Ranker(Recommender):
    name = "ranker"
    stages = ("whole", "ranking")
    description = "LightGBM LambdaRank over candidates from popularity, board co-occurrence, Pixie, embedding, EASE."
    params = {
        "candidates_per_source": Param(int, 100, 5, 2000),
        "training_queries": Param(int, 2000, 10, 1_000_000, "users sampled to train on"),
        "n_estimators": Param(int, 150, 10, 5000),
        "learning_rate": Param(float, 0.05, 0.001, 1.0),
        "num_leaves": Param(int, 31, 2, 1024),
        "seed": Param(int, 42, 0, 2**31 - 1),
    }
    FEATURES = [*(f"{s}_{f}" for s in SOURCES for f in ("score", "rank")), "log_popularity",
                "same_topic_as_pin", "in_user_topics", "age_days", "history_length", "history_only"]

    # --- features ---
    def _sources_fit(self, data: InteractionData) -> dict[str, Recommender]:
        return {name: REGISTRY[name](**params).fit(data) for name, params in SOURCES.items()}

    def _features(self, query: Query, user_topics, n_history: int, history_only: bool = False,
                  given: np.ndarray | None = None):
        """(candidates, feature rows): the union of each source's top pins, or the `given`
        candidates of another stage's retrieval."""
        n = self.config["candidates_per_source"]
        banned = np.fromiter((p for p, _ in query), dtype=np.int64)
        per_source, candidates = {}, []
        for name, source in self.sources.items():
            scores = np.array(source.score(query, user_topics), dtype=np.float64)
            scores[banned] = 0.0
            top = evaluation_top(scores, n)
            per_source[name] = (scores, top)
            candidates.append(top)
        if given is not None:
            cand = given
        else:
            cand = np.unique(np.concatenate(candidates)) if candidates else np.zeros(0, dtype=np.int64)
        if cand.size == 0:
            return cand, np.zeros((0, len(self.FEATURES)))
        columns = []
        for name in self.sources:
            scores, top = per_source[name]
            rank = np.full(self.n_pins, n + 1.0)
            rank[top] = np.arange(1, len(top) + 1)
            columns += [scores[cand], rank[cand]]
        query_topic = self.topic[query[0][0]] if query else -1
        in_user = np.isin(self.topic[cand], user_topics) if user_topics is not None else np.zeros(cand.size, bool)
        columns += [np.log1p(self.popularity[cand]), (self.topic[cand] == query_topic).astype(float),
                    in_user.astype(float), self.age[cand], np.full(cand.size, float(n_history)),
                    np.full(cand.size, float(history_only))]
        return cand, np.column_stack(columns)

    # --- learning ---
    def fit(self, data: InteractionData) -> Ranker:
        import lightgbm as lgb

        self.n_pins = data.n_pins
        self.topic = data.pin_topic.astype(np.int32)
        self.age = data.pin_age_days.astype(np.float32)
        self.popularity = data.popularity()
        up = data.user_pin.tocoo()
        train = evaluation.stratified_split(up.row.astype(np.int64), up.col.astype(np.int64), ratio=0.8,
                                            seed=self.config["seed"])
        bp = data.board_pin.tocoo()
        fit_data = from_edges(data.pin_ids, data.pin_topic, data.pin_age_days, list(zip(bp.row, bp.col, strict=True)),
                              data.board_pin.shape[0],
                              list(zip(up.row[train], up.col[train], up.data[train], strict=True)), data.user_ids)
        self.sources = self._sources_fit(fit_data)
        held: dict[int, set[int]] = {}
        for u, p in zip(up.row[~train], up.col[~train], strict=True):
            held.setdefault(int(u), set()).add(int(p))
        rng = np.random.default_rng(self.config["seed"])
        users = [u for u in held if fit_data.user_pin[u].nnz >= 1]
        rng.shuffle(users)
        xs, ys, groups = [], [], []
        for i, u in enumerate(users[: self.config["training_queries"]]):
            history = fit_data.history(fit_data.user_ids[u])
            # Half the queries as the closeup asks (an opened pin plus lighter history),
            # half as for_user does (the history alone), so both are learned.
            history_only = i % 2 == 1
            if history_only:
                query = history
            else:
                query = self.closeup_query(history[int(rng.integers(len(history)))][0], history)
            cand, x = self._features(query, top_topics(self.topic, history), len(history), history_only)
            labels = np.isin(cand, list(held[u])).astype(int)
            if cand.size and labels.any() and not labels.all():
                xs.append(x)
                ys.append(labels)
                groups.append(cand.size)
        if not groups:
            raise ValueError("not enough interactions to train the ranker")
        params = {"objective": "lambdarank", "learning_rate": self.config["learning_rate"],
                  "num_leaves": self.config["num_leaves"], "seed": self.config["seed"], "num_threads": 1,
                  "verbose": -1, "min_data_in_leaf": 20}
        dataset = lgb.Dataset(np.vstack(xs), np.concatenate(ys), group=groups, feature_name=self.FEATURES)
        self.booster = lgb.train(params, dataset, num_boost_round=self.config["n_estimators"])
        self.training = {"queries": len(groups), "rows": int(sum(groups)), "positives": int(sum(y.sum() for y in ys))}
        self.sources = self._sources_fit(data)  # serve from everything
        return self

    # --- persistence ---
    def state(self):
        state = {"topic": self.topic, "age": self.age, "popularity": self.popularity,
                 "booster": np.frombuffer(self.booster.model_to_string().encode(), dtype=np.uint8)}
        for name, source in self.sources.items():
            state.update({f"src.{name}.{k}": v for k, v in source.state().items()})
        return state

    def restore(self, state):
        import lightgbm as lgb

        self.topic, self.age, self.popularity = state["topic"], state["age"], state["popularity"]
        self.n_pins = len(self.topic)
        self.booster = lgb.Booster(model_str=bytes(state["booster"]).decode())
        self.sources = {}
        for name, params in SOURCES.items():
            source = REGISTRY[name](**params)
            prefix = f"src.{name}."
            source.restore({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
            self.sources[name] = source

    # --- serving ---
    def for_user(self, history, k, exclude=(), user_topics=None):
        if not history:
            return []
        scores = self._predict(list(history), user_topics, len(history), history_only=True)
        scores[np.fromiter((*(p for p, _ in history), *exclude), dtype=np.int64)] = -np.inf
        return top_k(scores, k)

    def rank(self, candidates, pin: int, history: Query, k: int, user_topics=None) -> list[tuple[int, float]]:
        """The ranking stage: order another stage's candidates (pin indices) for a
        closeup of `pin`; the best k, best first, ties by index."""
        cand = np.asarray(list(candidates), dtype=np.int64)
        if cand.size == 0 or k <= 0:
            return []
        query = self.closeup_query(pin, history)
        _, x = self._features(query, user_topics, max(len(query) - 1, 0), given=cand)
        predicted = self.booster.predict(x, num_threads=1)
        order = np.lexsort((cand, -predicted))[:k]
        low = float(predicted.min())
        return [(int(cand[i]), float(predicted[i]) - low + 1e-6) for i in order]

    def score(self, query: Query, user_topics=None) -> np.ndarray:
        return self._predict(list(query), user_topics, max(len(query) - 1, 0), history_only=False)

    def _predict(self, query, user_topics, n_history, history_only) -> np.ndarray:
        scores = np.zeros(self.n_pins)
        cand, x = self._features(query, user_topics, n_history, history_only)
        if cand.size:
            predicted = self.booster.predict(x, num_threads=1)
            scores[cand] = predicted - predicted.min() + 1e-6
        return scores


def evaluation_top(scores: np.ndarray, n: int) -> np.ndarray:
    positive = np.flatnonzero(scores > 0)
    if positive.size <= n:
        return positive[np.argsort(-scores[positive], kind="stable")]
    top = positive[np.argpartition(-scores[positive], n - 1)[:n]]
    return top[np.argsort(-scores[top], kind="stable")]
