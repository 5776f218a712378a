"""A learned ranker (LightGBM LambdaRank) over the union of the retrievers' candidates,
as in Pinterest's Related Pins: retrieval from several sources, then one model that
orders what they found.

Training never sees anything the evaluation holds out: the training data is split again
(90/10 per user, twice, with two seeds), the sources and the popularity are fitted on the
90%, and a candidate's label is whether it is in the user's 10%. Each user asks two
queries per split, as for_user asks (the history alone) and as the closeup asks (one of
their pins, plus the rest of their history as lighter queries). Logged impressions the
user never engaged with join their queries as label-0 candidates: shown, not taken.

The init score is a blend of the sources' scores, standardized within the query, with
weights chosen on the training users' queries (one blend per query kind). The trees
learn corrections to it; their number is chosen by early stopping on the queries of
users held out of the training groups, and they are kept only when they beat the blend
there. The sources are then refitted on all the data for serving, and the ranker keeps
their states in its own.
"""

from __future__ import annotations

import numpy as np

from recommenders import evaluation
from recommenders.base import REGISTRY, Param, Query, Recommender, register, top_k, top_topics
from recommenders.data import InteractionData, from_edges

SOURCES = {
    "popularity": {},
    "board_cooccurrence": {},
    "pixie": {"steps": 20_000},
    "embedding": {"factors": 32, "num_threads": 1},
    "ease": {"max_items": 3000},
}
# A source's weight in the init score, tried against none. None outweighs the best single
# source: the inner splits are sparser than the data served from, and a source that
# catches up with the best there (ALS does, on MovieLens) falls behind again with more data.
BLEND_WEIGHTS = (0.25, 0.5, 1.0)
SPLIT_SEEDS = 2  # inner 80/20 splits, each with its own seed: twice the training queries
# Each inner split keeps 90% of a user's pins: the sources see nearly the data they will
# serve from, so the blend weighs them as they will be at serving time.
INNER_TRAIN_SHARE = 0.9


@register
class Ranker(Recommender):
    name = "ranker"
    stages = ("whole", "ranking")
    description = ("LightGBM LambdaRank over candidates from popularity, board co-occurrence, Pixie, embedding, "
                   "EASE, correcting a blend of their scores.")
    params = {
        "candidates_per_source": Param(int, 100, 5, 2000),
        "training_queries": Param(int, 1000, 10, 1_000_000, "users sampled per inner split to train on"),
        "n_estimators": Param(int, 500, 10, 5000, "most trees; early stopping usually keeps fewer"),
        "early_stopping_rounds": Param(int, 30, 1, 1000),
        "validation_share": Param(float, 0.2, 0.05, 0.5, "users whose queries choose the number of trees"),
        "learning_rate": Param(float, 0.02, 0.001, 1.0),
        "num_leaves": Param(int, 7, 2, 1024),
        "seed": Param(int, 42, 0, 2**31 - 1),
    }
    FEATURES = [*(f"{s}_{f}" for s in SOURCES for f in ("score", "rank")), "n_sources",
                "log_popularity", "same_topic_as_pin", "in_user_topics", "age_days", "history_length",
                "history_only", "history_log_popularity"]

    # --- features ---
    def _sources_fit(self, data: InteractionData) -> dict[str, Recommender]:
        return {name: REGISTRY[name](**params).fit(data) for name, params in SOURCES.items()}

    def _features(self, query: Query, user_topics, n_history: int, history_only: bool = False,
                  given: np.ndarray | None = None, extra: np.ndarray | None = None):
        """(candidates, feature rows, init scores): the union of each source's top pins
        (and the `extra` pins), or the `given` candidates of another stage's retrieval;
        the init score is the blend of the sources' standardized scores."""
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
            if extra is not None and extra.size:
                candidates.append(np.setdiff1d(extra, banned))
            cand = np.unique(np.concatenate(candidates)) if candidates else np.zeros(0, dtype=np.int64)
        if cand.size == 0:
            return cand, np.zeros((0, len(self.FEATURES))), np.zeros(0)
        columns = []
        n_sources = np.zeros(cand.size)
        for name in self.sources:
            scores, top = per_source[name]
            rank = np.full(self.n_pins, n + 1.0)
            rank[top] = np.arange(1, len(top) + 1)
            # Scores grow with the data and the history (the serving sources see more than
            # the training ones did): only their shares of the query's best carry over.
            best = scores[cand].max()
            columns += [scores[cand] / best if best > 0 else np.zeros(cand.size), rank[cand]]
            n_sources += rank[cand] <= n
        log_pop = np.log1p(self.popularity) - np.log1p(self.popularity.max())
        query_topic = self.topic[query[0][0]] if query else -1
        in_user = np.isin(self.topic[cand], user_topics) if user_topics is not None else np.zeros(cand.size, bool)
        history_pop = float(log_pop[banned].mean()) if banned.size else 0.0
        columns += [n_sources, log_pop[cand], (self.topic[cand] == query_topic).astype(float),
                    in_user.astype(float), self.age[cand], np.full(cand.size, float(n_history)),
                    np.full(cand.size, float(history_only)), np.full(cand.size, history_pop)]
        x = np.column_stack(columns)
        return cand, x, blend(x, self.blend_weights)

    # --- learning ---
    def training_groups(self, data: InteractionData, seed: int):
        """One inner split's query groups: (user, candidates, feature rows, init scores,
        labels, impression negatives) per query. The sources and the popularity are those
        of the split's 90%, so no feature has seen a label."""
        up = data.user_pin.tocoo()
        train = evaluation.stratified_split(up.row.astype(np.int64), up.col.astype(np.int64),
                                            ratio=INNER_TRAIN_SHARE, seed=seed)
        bp = data.board_pin.tocoo()
        fit_data = from_edges(data.pin_ids, data.pin_topic, data.pin_age_days, list(zip(bp.row, bp.col, strict=True)),
                              data.board_pin.shape[0],
                              list(zip(up.row[train], up.col[train], up.data[train], strict=True)), data.user_ids,
                              data.board_topic if len(data.board_topic) == data.board_pin.shape[0] else None)
        self.popularity = fit_data.popularity()
        self.sources = self._sources_fit(fit_data)
        held: dict[int, set[int]] = {}
        for u, p in zip(up.row[~train], up.col[~train], strict=True):
            held.setdefault(int(u), set()).add(int(p))
        impressions = data.impressions.tocsr() if data.impressions is not None else None
        rng = np.random.default_rng(seed)
        users = sorted(u for u in held if fit_data.user_pin[u].nnz >= 1)
        rng.shuffle(users)
        groups = []
        for u in users[: self.config["training_queries"]]:
            history = fit_data.history(fit_data.user_ids[u])
            shown = impressions.indices[impressions.indptr[u]:impressions.indptr[u + 1]].astype(np.int64) \
                if impressions is not None and u < impressions.shape[0] else None
            positives = np.fromiter(held[u], dtype=np.int64)
            topics = top_topics(self.topic, history)
            opened = history[int(rng.integers(len(history)))][0]
            for history_only in (True, False):
                query = history if history_only else self.closeup_query(opened, history)
                cand, x, init = self._features(query, topics, len(history), history_only, extra=shown)
                labels = np.isin(cand, positives).astype(int)
                if cand.size and labels.any() and not labels.all():
                    shown_negatives = int((np.isin(cand, shown) & (labels == 0)).sum()) if shown is not None else 0
                    groups.append((u, cand, x, init, labels, shown_negatives))
        return groups

    def fit(self, data: InteractionData) -> Ranker:
        import lightgbm as lgb

        self.n_pins = data.n_pins
        self.topic = data.pin_topic.astype(np.int32)
        self.age = data.pin_age_days.astype(np.float32)
        self.blend_weights = np.zeros((2, len(SOURCES)))
        groups = [g for i in range(SPLIT_SEEDS) for g in self.training_groups(data, self.config["seed"] + i)]
        if not groups:
            raise ValueError("not enough interactions to train the ranker")
        # Early stopping watches users none of whose queries are trained on.
        users = np.unique([g[0] for g in groups])
        rng = np.random.default_rng(self.config["seed"])
        held_out = set(rng.choice(users, size=int(len(users) * self.config["validation_share"]), replace=False)
                       .tolist()) if len(users) >= 10 else set()
        fit_groups = [g for g in groups if g[0] not in held_out]
        valid_groups = [g for g in groups if g[0] in held_out]
        # for_user's queries (the history alone) and the closeup's (an opened pin) weigh
        # the sources differently: each kind gets its own blend.
        blending = fit_groups or groups
        self.blend_weights = np.vstack([choose_blend([g for g in blending if g[2][0, HISTORY_ONLY] == kind])
                                        for kind in (0, 1)])
        groups = [(u, cand, x, blend(x, self.blend_weights), labels, shown)
                  for u, cand, x, _, labels, shown in groups]
        fit_groups = [g for g in groups if g[0] not in held_out]
        valid_groups = [g for g in groups if g[0] in held_out]

        def dataset(gs, reference=None):
            return lgb.Dataset(np.vstack([g[2] for g in gs]), np.concatenate([g[4] for g in gs]),
                               group=[g[1].size for g in gs], init_score=np.concatenate([g[3] for g in gs]),
                               feature_name=self.FEATURES, reference=reference, free_raw_data=True)

        params = {"objective": "lambdarank", "learning_rate": self.config["learning_rate"],
                  "num_leaves": self.config["num_leaves"], "seed": self.config["seed"], "num_threads": 1,
                  "deterministic": True, "force_row_wise": True, "verbose": -1, "min_data_in_leaf": 100,
                  "metric": "ndcg", "eval_at": [10]}
        train_set = dataset(fit_groups)
        callbacks, valid_sets = [], []
        if valid_groups:
            valid_sets = [dataset(valid_groups, train_set)]
            callbacks = [lgb.early_stopping(self.config["early_stopping_rounds"], verbose=False)]
        self.booster = lgb.train(params, train_set, num_boost_round=self.config["n_estimators"],
                                 valid_sets=valid_sets, callbacks=callbacks)
        self.use_trees = True
        gain = (0.0, 0.0)
        if valid_groups:
            self.booster = lgb.Booster(model_str=self.booster.model_to_string(
                num_iteration=self.booster.best_iteration))
            # The best round on the validation users is chosen on them, so it flatters the
            # trees: they are kept only when they beat the blend alone there by more than
            # two standard errors (of the paired per-query difference).
            blended = query_ndcgs(valid_groups, lambda x, init: init)
            boosted = query_ndcgs(valid_groups, lambda x, init: init + self.booster.predict(x, num_threads=1))
            diff = boosted - blended
            gain = (float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(diff.size)) if diff.size > 1 else 0.0)
            self.use_trees = gain[0] > 2 * gain[1]
        self.training = {"queries": len(groups), "rows": int(sum(g[1].size for g in groups)),
                         "positives": int(sum(g[4].sum() for g in groups)),
                         "impression_negatives": int(sum(g[5] for g in groups)),
                         "validation_queries": len(valid_groups), "trees": self.booster.num_trees(),
                         "trees_gain": gain, "uses_trees": self.use_trees,
                         "blend": {kind: dict(zip(SOURCES, w, strict=True)) for kind, w
                                   in zip(("closeup", "history"), self.blend_weights.tolist(), strict=True)}}
        self.popularity = data.popularity()  # serve from everything
        self.sources = self._sources_fit(data)
        return self

    # --- persistence ---
    def state(self):
        state = {"topic": self.topic, "age": self.age, "popularity": self.popularity, "blend": self.blend_weights,
                 "use_trees": np.asarray([self.use_trees]),
                 "booster": np.frombuffer(self.booster.model_to_string().encode(), dtype=np.uint8)}
        for name, source in self.sources.items():
            state.update({f"src.{name}.{k}": v for k, v in source.state().items()})
        return state

    def restore(self, state):
        import lightgbm as lgb

        self.topic, self.age, self.popularity = state["topic"], state["age"], state["popularity"]
        self.blend_weights = np.asarray(state["blend"], dtype=np.float64)
        self.use_trees = bool(state["use_trees"][0])
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
        if user_topics is None:  # as in training: the user's topics come from the history
            user_topics = top_topics(self.topic, history)
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
        _, x, init = self._features(query, user_topics, max(len(query) - 1, 0), given=cand)
        predicted = self._boosted(x, init)
        order = np.lexsort((cand, -predicted))[:k]
        low = float(predicted.min())
        return [(int(cand[i]), float(predicted[i]) - low + 1e-6) for i in order]

    def score(self, query: Query, user_topics=None) -> np.ndarray:
        return self._predict(list(query), user_topics, max(len(query) - 1, 0), history_only=False)

    def _boosted(self, x, init) -> np.ndarray:
        return init + self.booster.predict(x, num_threads=1) if self.use_trees else init

    def _predict(self, query, user_topics, n_history, history_only) -> np.ndarray:
        scores = np.zeros(self.n_pins)
        cand, x, init = self._features(query, user_topics, n_history, history_only)
        if cand.size:
            predicted = self._boosted(x, init)
            scores[cand] = predicted - predicted.min() + 1e-6
        return scores


SCORE_COLUMNS = [2 * i for i in range(len(SOURCES))]  # each source's score in the feature rows
HISTORY_ONLY = Ranker.FEATURES.index("history_only")


def blend(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The init score: the sources' scores standardized within the query (their scales
    differ, and grow with the data), weighted."""
    if x.shape[0] == 0:
        return np.zeros(0)
    scores = x[:, SCORE_COLUMNS]
    z = (scores - scores.mean(axis=0)) / np.maximum(scores.std(axis=0), 1e-9)
    return z @ (weights[int(x[0, HISTORY_ONLY])] if weights.ndim == 2 else weights)


def query_ndcgs(groups, predict, k: int = 10) -> np.ndarray:
    """NDCG@k per query group of predict(feature rows, init scores) (labels among the candidates)."""
    discount = 1 / np.log2(np.arange(2, k + 2))
    out = np.zeros(len(groups))
    for i, (_, cand, x, init, labels, _) in enumerate(groups):
        order = np.lexsort((cand, -predict(x, init)))[:k]
        out[i] = (labels[order] * discount[: order.size]).sum() / discount[: min(int(labels.sum()), k)].sum()
    return out


def query_ndcg(groups, weights: np.ndarray, k: int = 10) -> float:
    """Mean NDCG@k of the blend with `weights` over query groups."""
    return float(query_ndcgs(groups, lambda x, _: blend(x, weights), k).mean())


def choose_blend(groups) -> np.ndarray:
    """Weights of the init score, on training queries only: the best single source, then
    each other source's weight from BLEND_WEIGHTS (or none) in turn, kept when it helps."""
    if not groups:
        return np.eye(len(SOURCES))[list(SOURCES).index("ease")]
    singles = [query_ndcg(groups, np.eye(len(SOURCES))[i]) for i in range(len(SOURCES))]
    anchor = int(np.argmax(singles))
    weights, best = np.eye(len(SOURCES))[anchor], max(singles)
    for _ in range(2):
        for i in range(len(SOURCES)):
            if i == anchor:
                continue
            for w in (0.0, *BLEND_WEIGHTS):
                trial = weights.copy()
                trial[i] = w
                if trial.any() and (score := query_ndcg(groups, trial)) > best + 1e-6:
                    weights, best = trial, score
    return weights


def evaluation_top(scores: np.ndarray, n: int) -> np.ndarray:
    positive = np.flatnonzero(scores > 0)
    if positive.size <= n:
        return positive[np.argsort(-scores[positive], kind="stable")]
    top = positive[np.argpartition(-scores[positive], n - 1)[:n]]
    return top[np.argsort(-scores[top], kind="stable")]
