"""`with_recent`: the live engagements join the built history where the recommenders
read a user's recent pins (the tail), each pin once."""

from recommenders.base import Recommender, with_recent


def test_recent_pins_go_last_newest_last_each_once():
    built = [(1, 1.0), (2, 2.0), (3, 1.0)]
    recent = [(9, 1.0), (8, 2.0), (9, 1.0)]  # newest first: 9 was engaged twice, the last time most recently
    assert with_recent(built, recent) == [(1, 1.0), (2, 2.0), (3, 1.0), (8, 2.0), (9, 2.0)]


def test_a_recent_pin_of_the_built_history_moves_to_the_end_with_the_larger_weight():
    assert with_recent([(1, 1.0), (2, 3.0), (3, 1.0)], [(2, 1.0), (1, 2.0)]) == [(3, 1.0), (1, 2.0), (2, 3.0)]


def test_without_recent_pins_the_built_history_is_unchanged():
    built = [(1, 1.0), (2, 2.0)]
    assert with_recent(built, []) == built
    assert with_recent([], [(5, 1.0), (4, 1.0)]) == [(4, 1.0), (5, 1.0)]


def test_the_closeup_query_sees_recent_pins_behind_a_long_built_history():
    built = [(p, 1.0) for p in range(100, 100 + 3 * Recommender.HISTORY_LENGTH)]
    query = Recommender.closeup_query(7, with_recent(built, [(42, 1.0), (41, 1.0)]))
    assert [p for p, _ in query][-2:] == [41, 42]
