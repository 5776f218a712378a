"""The recommenders, hit directly on worlds small enough to know the answer."""

import dataclasses

import numpy as np
import pytest
from scipy import sparse

from recommenders import registry
from recommenders.base import Recommender
from recommenders.data import from_edges
from recommenders.ranker import Ranker
from recommenders.retrievers import BoardCooccurrence, Pixie, Popularity
from recommenders.synthetic import generate_world

# Boards: 0 = {0, 1, 2}, 1 = {2, 3}, 2 = {1, 2}, 3 = {4, 5} (a separate island).
TINY_BOARDS = [(0, 0), (0, 1), (0, 2), (1, 2), (1, 3), (2, 1), (2, 2), (3, 4), (3, 5)]
TINY_TOPICS = [0, 0, 0, 1, 2, 2]


def tiny():
    users = [(0, 3, 1.0), (0, 3, 1.0), (1, 5, 1.0), (1, 1, 1.0)]
    return from_edges(np.arange(10, 16), TINY_TOPICS, np.zeros(6), TINY_BOARDS, 4, users, ["u0", "u1"])


@pytest.fixture(scope="module")
def world():
    return generate_world(n_pins=2000, n_users=400, seed=11)


def pins(result):
    return [p for p, _ in result]


def test_board_cooccurrence_ranks_pins_sharing_more_boards_first():
    rec = BoardCooccurrence(board_size_penalty=0.0).fit(tiny())
    # Pin 0 shares board 0 with 1 and 2; 1 and 2 also share board 2, but 0 is not on it.
    assert pins(rec.related(0, [], k=10)) == [1, 2]
    # Pin 2 shares two boards with 1 (0 and 2), one with 0 and one with 3.
    assert pins(rec.related(2, [], k=10)) == [1, 0, 3]


def test_fewer_candidates_than_k_gives_fewer_items_and_never_the_query_or_hidden_pins():
    rec = BoardCooccurrence().fit(tiny())
    assert pins(rec.related(4, [], k=25)) == [5]
    # Pin 3 shares a board of 2 with pin 2, pin 0 a board of 3: the smaller board says more.
    assert pins(rec.related(2, [], k=25, exclude=[1])) == [3, 0]
    for cls in (Popularity, Pixie):
        result = pins(cls().fit(tiny()).related(2, [], k=25, exclude=[1]))
        assert 2 not in result and 1 not in result


def test_popularity_counts_engagements_and_saves_and_can_stay_in_topic():
    data = tiny()
    # Engagements + saves: pins 1, 2, 3 have 3 each (ties go by index), pin 5 has 2, pin 4 has 1.
    assert pins(Popularity().fit(data).related(0, [], k=4)) == [1, 2, 3, 5]
    assert pins(Popularity(same_topic=True).fit(data).related(0, [], k=10)) == [1, 2]


def test_pixie_never_reaches_a_disconnected_island_and_favours_close_pins():
    rec = Pixie(steps=5000).fit(tiny())
    scores = rec.score([(0, 1.0)], None)
    assert scores[4] == scores[5] == 0
    assert scores[1] > scores[3] and scores[2] > scores[3]


def test_pixie_with_certain_restart_only_takes_one_hop():
    rec = Pixie(steps=3000, restart_probability=1.0).fit(tiny())
    visited = set(np.flatnonzero(rec.score([(0, 1.0)], None)))
    assert visited == {1, 2}  # the pins on pin 0's only board


def test_pixie_is_deterministic_per_query():
    rec = Pixie(steps=4000)
    world_data = generate_world(n_pins=500, n_users=100, seed=3).data
    rec.fit(world_data)
    assert rec.related(7, [], 20) == rec.related(7, [], 20)


def test_pixie_stops_early_once_enough_pins_are_visited_enough(world):
    patient = Pixie(steps=200_000, n_p=100_000).fit(world.data)
    eager = Pixie(steps=200_000, n_p=20, n_v=3).fit(world.data)
    rng = np.random.default_rng(0)
    full = patient.walk(5, 200_000, rng, None).sum()
    early = eager.walk(5, 200_000, np.random.default_rng(0), None)
    assert full >= 150_000  # the walk ran (almost) to its budget
    assert early.sum() < full / 4
    assert (early >= 3).sum() >= 20


def test_pixie_bias_pulls_the_walk_towards_the_users_topics(world):
    data = world.data
    query = int(np.flatnonzero(data.pin_topic == 0)[0])
    other_topic = np.array([1])
    unbiased = Pixie(steps=20_000, bias_strength=0.0).fit(data).score([(query, 1.0)], other_topic)
    biased = Pixie(steps=20_000, bias_strength=1.0).fit(data).score([(query, 1.0)], other_topic)

    def share(scores):
        return scores[data.pin_topic == 1].sum() / scores.sum()

    assert share(biased) > share(unbiased) * 1.2


def test_multiple_query_pins_boost_pins_reached_from_several():
    rec = Pixie(steps=6000, restart_probability=0.9).fit(tiny())
    single = rec.score([(0, 1.0)], None)
    both = rec.score([(0, 0.5), (3, 0.5)], None)
    # Pin 2 is a neighbour of both 0 and 3, so it gains most from the second query.
    assert np.argmax(both) == 2
    assert both[2] / both.sum() > single[2] / single.sum()


@pytest.mark.parametrize("cls", [Popularity, BoardCooccurrence, Pixie])
def test_related_pins_share_the_query_topic_far_more_than_chance(world, cls):
    rec = cls().fit(world.data)
    topic = world.data.pin_topic
    matches = []
    for q in range(0, 2000, 50):
        got = pins(rec.related(q, [], 10))
        if got:
            matches.append(np.mean(topic[got] == topic[q]))
    chance = 1 / world.n_topics
    if cls is Popularity:
        assert np.mean(matches) < 3 * chance  # popularity ignores the query: a baseline
    else:
        assert np.mean(matches) > 0.8


@pytest.mark.parametrize("name, params", [
    ("popularity", {}), ("board_cooccurrence", {}), ("pixie", {}), ("embedding", {}), ("ease", {}),
    ("ranker", {"training_queries": 200, "n_estimators": 20}),
])
def test_save_and_load_give_the_same_recommendations(tmp_path, world, name, params):
    rec = registry.create(name, params).fit(world.data)
    rec.save(tmp_path / name)
    loaded = Recommender.load(tmp_path / name)
    history = world.data.history("user-3")
    assert loaded.related(11, history, 15) == rec.related(11, history, 15)


def test_for_user_does_not_repeat_the_history(world):
    history = world.data.history("user-5")
    got = pins(BoardCooccurrence().fit(world.data).for_user(history, 20))
    assert got and not set(got) & {p for p, _ in history}


@pytest.mark.parametrize(
    "name, params, message",
    [
        ("nope", {}, "Unknown recommender 'nope'"),
        ("pixie", {"steps": 0}, "steps must be at least 100"),
        ("pixie", {"restart_probability": 2}, "at most 1.0"),
        ("pixie", {"steps": 1.5}, "steps must be int"),
        ("popularity", {"same_topic": 1}, "same_topic must be bool"),
        ("board_cooccurrence", {"other": 1}, "Unknown params"),
    ],
)
def test_registry_validates_configs(name, params, message):
    errors = registry.validate_config(name, params)
    assert errors and message in errors[0]
    if name in registry.names():
        with pytest.raises(ValueError):
            registry.create(name, params)


def test_registry_accepts_defaults_and_valid_params():
    assert registry.validate_config("pixie", {"steps": 1000, "restart_probability": 0.3}) == []
    assert set(registry.names()) >= {"popularity", "board_cooccurrence", "pixie"}


def test_the_ranker_trains_on_impressions_never_engaged_as_label_0_candidates(world):
    """Served and not taken: a user's unengaged impressions join their training queries as
    negatives, even the least popular pins, which no source would retrieve."""
    data = world.data
    cold = np.argsort(data.popularity(), kind="stable")[:5]
    n_users = len(data.user_ids)
    shown = sparse.csr_matrix((np.ones(n_users * 5), (np.repeat(np.arange(n_users), 5), np.tile(cold, n_users))),
                              shape=(n_users, data.n_pins))
    logged = dataclasses.replace(data, impressions=shown)
    rec = Ranker(training_queries=40, n_estimators=10).fit(logged)
    assert rec.training["impression_negatives"] > 0
    groups = rec.training_groups(logged, seed=1)
    assert groups
    for user, candidates, _, _, labels, negatives in groups:
        never_taken = np.setdiff1d(cold, data.user_pin[user].indices)
        at = np.flatnonzero(np.isin(candidates, never_taken))
        assert at.size == never_taken.size == negatives and not labels[at].any()
    assert Ranker(training_queries=40, n_estimators=10).fit(data).training["impression_negatives"] == 0


def test_impressions_are_one_negative_per_user_and_pin():
    data = from_edges(np.arange(10, 16), TINY_TOPICS, np.zeros(6), TINY_BOARDS, 4, [(0, 3, 1.0)], ["u0", "u1"],
                      impression_edges=[(0, 4), (0, 4), (1, 2)])
    assert data.impressions.toarray().tolist() == [[0, 0, 0, 0, 1, 0], [0, 0, 1, 0, 0, 0]]
    assert tiny().impressions is None
